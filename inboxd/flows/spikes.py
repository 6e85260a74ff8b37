"""Count arrivals for spike detection: a pipeline reactor that records one row per
watched tag of the ticket a customer mail was stored on (``db.spikes``).

Only tags the rule files watch (``spikes:``) are recorded, and only customer
mail (no auto-replies, bounces or lists: a mail loop is not a spike of the
customers' problem), so a helpdesk without a ``spikes:`` section writes nothing.
"""

from __future__ import annotations

import logging

from sqlmodel import Session

from inboxd.core.inbound import StoredMail
from inboxd.core.model import MessageKind
from inboxd.db import spikes
from inboxd.flows.mailflow import connection

log = logging.getLogger("inboxd.spikes")


class TagArrivals:
    def on_stored(self, session: Session, mail: StoredMail) -> None:
        rules = mail.rules
        if rules is None or not rules.spikes.tags or mail.parsed.kind is not MessageKind.NORMAL:
            return
        tags = rules.spikes.watched.intersection(mail.ticket.tags)
        if tags:
            spikes.record(connection(session), tags, mail.now, mail.ticket_id)


__all__ = ["TagArrivals"]
