"""The ticket domain: the ticket value, its vocabularies, its events, its transitions.

Pure: values and ``now`` in, a :class:`Change` out. ``db.tickets`` loads a
:class:`Ticket` and saves a :class:`Change`; every path that changes a ticket
(mail, agent commands, Slack buttons, schedulers) goes through a transition
here, so the SLA clocks and reports can trust the event log.
"""

from inboxd.core.desk import events
from inboxd.core.desk.ticket import STORED_FIELDS, Change, Ticket, unchanged
from inboxd.core.desk.transitions import TransitionError
from inboxd.core.desk.vocab import (
    OPEN_STATUSES,
    PRIORITIES,
    QUIET_STATUSES,
    SETTABLE_STATUSES,
    Priority,
    Status,
    may_transition,
    priority_rank,
)

__all__ = [
    "OPEN_STATUSES",
    "PRIORITIES",
    "QUIET_STATUSES",
    "SETTABLE_STATUSES",
    "STORED_FIELDS",
    "Change",
    "Priority",
    "Status",
    "Ticket",
    "TransitionError",
    "events",
    "may_transition",
    "priority_rank",
    "unchanged",
]
