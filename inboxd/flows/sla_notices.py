"""What a fired SLA stage does: a reminder or breach mail to people, a Slack alert.

The sweep (``inboxd.sched.sla_sweep``) decides that a stage came and claims it
once; this carries it out inside the sweep's transaction, only writing rows
(outbox mail, Slack notices). Recipients by the stage's ``to``: ``assignee``
(the team when nobody is assigned), ``team`` and ``lead`` (of the ticket's
team, or of the team the stage names), ``slack:CHANNEL`` (into the ticket's living
thread there, ``flows.slack_threads``). A reminder's mail is
``sla_reminder``; an alert's is ``sla_breach``. A Slack alert pings the user groups
the stage names (``mention:S0123ABC``); a breach without one pings the ticket's
team's group or the default one (``[slack] breach_mentions`` / ``breach_mention``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Connection

from inboxd.core.compose import ComposeError, OutboundKind
from inboxd.core.desk import Ticket
from inboxd.core.quiet_hours import sla_alert_kind
from inboxd.core.rules import RuleSet
from inboxd.core.rules.model import Agent, SlaPolicy
from inboxd.core.sla.model import Recipient
from inboxd.core.sla.targets import StageTime, TargetClock
from inboxd.core.slack_text import human_duration, sla_message
from inboxd.flows.mailflow import Flow, FlowView, person
from inboxd.flows.render import TemplateError
from inboxd.flows.slack_threads import LivingMessages

log = logging.getLogger("inboxd.sla")


def _team_agents(rules: RuleSet, team: str | None) -> list[Agent]:
    found = rules.teams.get(team or "")
    return list(found.agents) if found is not None else []


def _lead(rules: RuleSet, team: str | None) -> list[Agent]:
    found = rules.teams.get(team or "")
    if found is None or not found.lead:
        return []
    lead = rules.agents.get(found.lead) or rules.agent_by_email(found.lead)
    return [lead] if lead is not None else []


def people_for(rules: RuleSet, ticket: Ticket, to: Recipient) -> list[Agent]:
    """The agents a stage's recipient names for this ticket (none for Slack)."""
    if to.kind == "assignee":
        assignee = rules.agents.get(ticket.assignee or "")
        return [assignee] if assignee is not None else _team_agents(rules, ticket.team)
    if to.kind == "team":
        return _team_agents(rules, to.name or ticket.team)
    if to.kind == "lead":
        return _lead(rules, to.name or ticket.team)
    return []


class SlaStageActions:
    """The daemon hands this to the sweep (``sched.sla_sweep.StageActions``)."""

    def __init__(
        self,
        flow: Flow,
        *,
        tag_format: str = "[#{id}]",
        living: LivingMessages | None = None,
        breach_mention: str | None = None,
        team_mentions: Mapping[str, str] | None = None,
    ) -> None:
        self.flow = flow
        self.tag_format = tag_format
        self.living = living or LivingMessages(tag_format=tag_format)
        self.breach_mention = breach_mention
        self.team_mentions = dict(team_mentions or {})

    def mentions(self, ticket: Ticket, stage: StageTime, overdue: bool) -> tuple[str, ...]:
        """The user groups this stage's Slack alerts ping: the stage's own, else on a
        breach the ticket's team's or the default one."""
        own = tuple(to.name for to in stage.stage.to if to.kind == "mention" and to.name)
        if own or not overdue:
            return own
        group = self.team_mentions.get(ticket.team or "") or self.breach_mention
        return (group,) if group else ()

    def fire(
        self,
        conn: Connection,
        rules: RuleSet,
        ticket: Ticket,
        policy: SlaPolicy,
        stage: StageTime,
        clock: TargetClock,
        now: datetime,
    ) -> None:
        due = clock.due_at or stage.at
        view = self.flow.view(rules)
        agents: dict[str, Agent] = {}
        for to in stage.stage.to:
            if to.kind == "slack" and to.name:
                self._slack(conn, rules, ticket, policy, stage, due, to.name, now)
            for agent in people_for(rules, ticket, to):
                agents.setdefault(agent.email, agent)
        for agent in agents.values():
            self._mail(conn, view, ticket, policy, stage, due, agent, now)

    def _mail(
        self,
        conn: Connection,
        view: FlowView,
        ticket: Ticket,
        policy: SlaPolicy,
        stage: StageTime,
        due: datetime,
        agent: Agent,
        now: datetime,
    ) -> None:
        overdue = now >= due
        kind = OutboundKind.SLA_BREACH if overdue else OutboundKind.SLA_REMINDER
        sla = {
            "name": stage.target.replace("_", " "),
            "policy": policy.name,
            "due_at": due,
            "remaining": human_duration(due - now),
            "overdue": human_duration(now - due),
        }
        try:
            rendered = view.render(kind.value, ticket, sla=sla, agent=person(agent))
            view.to_agent(conn, kind, ticket, agent, rendered, now=now)
        except (TemplateError, ComposeError) as exc:
            log.error("sla %s to %s failed ticket=%s: %s", kind.value, agent.name, ticket.id, exc)

    def _slack(
        self,
        conn: Connection,
        rules: RuleSet,
        ticket: Ticket,
        policy: SlaPolicy,
        stage: StageTime,
        due: datetime,
        channel: str,
        now: datetime,
    ) -> None:
        message = sla_message(
            label=self.tag_format.replace("{id}", str(ticket.id)),
            subject=ticket.subject,
            target=stage.target.replace("_", " "),
            policy=policy.name,
            due_at=due,
            now=now,
            assignee=ticket.assignee,
            team=ticket.team,
            mentions=self.mentions(ticket, stage, now >= due),
        )
        key = f"sla:{ticket.id}:{stage.key}"
        kind = sla_alert_kind(now=now, due_at=due)
        self.living.alert(conn, rules, ticket, channel, message, now, dedupe_key=key, kind=kind)
