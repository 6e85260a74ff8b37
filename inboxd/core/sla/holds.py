"""What people asked of a ticket's SLA stages: a snooze, an acknowledged breach.

Both are events on the ticket (``SlaSnoozed``, ``SlaAcknowledged``), set from
Slack buttons; the sweep reads them through these two functions. A snooze holds
every stage until it ends (they fire then, late). An acknowledgement silences
the remaining stages of each target that had breached when it was given; a
target that breaches later (a new reply cycle, another target) alerts again.
The clocks themselves never move: reports still see the breach. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from inboxd.core.desk import events as ev
from inboxd.core.sla.targets import TargetClock


def snoozed_until(events: Sequence[ev.Event], now: datetime) -> datetime | None:
    """The end of the latest snooze, when it is still in force at ``now``."""
    until: datetime | None = None
    for event in events:
        if isinstance(event, ev.SlaSnoozed) and event.at <= now:
            try:
                until = datetime.fromisoformat(event.until)
            except ValueError:
                continue
    return until if until is not None and until > now else None


def acknowledged(events: Sequence[ev.Event], clock: TargetClock) -> bool:
    """Whether the breach of ``clock`` (its current cycle) was acknowledged."""
    if clock.breached_at is None:
        return False
    return any(isinstance(e, ev.SlaAcknowledged) and e.at >= clock.breached_at for e in events)


__all__ = ["acknowledged", "snoozed_until"]
