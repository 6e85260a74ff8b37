"""The weekly digest mail: render the ``digest`` templates and queue one mail per team.

The figures are computed by the digest job (``sched.digest``); this only turns
them into a mail (HTML from the Jinja template, plus its text part) to the
team's lead and the configured ``cc``, queued in the job's transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from inboxd.core.compose import OutboundKind
from inboxd.core.model import Address
from inboxd.core.rules import RuleSet
from inboxd.flows.mailflow import Flow

log = logging.getLogger("inboxd.digest")


class DigestMail:
    def __init__(self, flow: Flow, *, cc: Sequence[str] = ()) -> None:
        self.flow = flow
        self.cc = tuple(cc)

    def recipients(self, rules: RuleSet, team: str) -> tuple[Address, ...]:
        """The team's lead (when it has one the rules know) and the ``cc`` addresses."""
        found = rules.teams.get(team)
        out: dict[str, Address] = {}
        if found is not None and found.lead:
            lead = rules.agents.get(found.lead) or rules.agent_by_email(found.lead)
            if lead is not None:
                out[lead.email] = Address(lead.email, lead.display_name or lead.name)
        for email in self.cc:
            out.setdefault(email.lower(), Address(email.lower()))
        return tuple(out.values())

    def send(
        self,
        conn: Connection,
        rules: RuleSet,
        team: str,
        digest: Mapping[str, Any],
        now: datetime,
    ) -> str | None:
        """Queue the team's digest; its Message-ID, or None when nobody is to get it."""
        to = self.recipients(rules, team)
        if not to:
            return None
        name, address = self.flow.config.helpdesk_name, self.flow.support_address("")
        renderer = self.flow.config.renderer()
        rendered = renderer.render(
            "digest", helpdesk={"name": name, "address": address}, digest=digest
        )
        kind = OutboundKind.DIGEST
        return self.flow.queue_plain(conn, kind=kind, rendered=rendered, to=to, now=now)
