"""Satisfaction surveys: the survey mail, and the answers that come back.

``Surveys.send`` is what the survey job (``sched.csat_surveys``) does for a solved
ticket whose delay has passed: check it may be surveyed (``core.csat``), claim
its one survey (``db.csat.claim``), queue the ``csat`` mail and record
``survey_sent``. The mail carries no web link and no image: its answers are
``mailto:`` links to signed token addresses, and its Reply-To is the survey's
own token address, so a reply with a rating word counts too.

``SurveyInterceptor`` takes mail to a survey address before threading. With a
verified token of an existing survey and a rating (from the address, else the
first word of the text) it is stored on the ticket with a ``csat`` event and
opens, reopens and notifies nothing; a bad one may reopen the ticket and tell
the team lead (``[csat] on_bad``). A forged or foreign token, or a reply
without a rating word, goes the normal way, as customer mail.
"""

from __future__ import annotations

import logging
from datetime import datetime
from urllib.parse import quote

from sqlalchemy import Connection
from sqlmodel import Session

from inboxd.core import csat
from inboxd.core.compose import ComposeError, OutboundKind
from inboxd.core.desk import Ticket
from inboxd.core.desk import events as ev
from inboxd.core.desk import transitions as tr
from inboxd.core.inbound import Arrival, Outcome
from inboxd.core.model import Address, Direction, MessageKind, ParsedMessage
from inboxd.core.rules import RuleSet
from inboxd.core.rules.model import Agent
from inboxd.core.tokens import SurveyToken, make_survey_token, verify_survey_token
from inboxd.db import csat as surveys_db
from inboxd.db import messages, tickets
from inboxd.flows.mailflow import Flow, FlowView, connection, person
from inboxd.flows.render import TemplateError

log = logging.getLogger("inboxd.flow")

_REASON = "satisfaction survey answer"


def _agent_addresses(rules: RuleSet | None) -> set[str]:
    if rules is None:
        return set()
    people = list(rules.agents.values())
    people += [a for team in rules.teams.values() for a in team.agents]
    return {a.email.lower() for a in people}


class Surveys:
    """The survey mail and what a rating does; the daemon builds one from ``[csat]``."""

    def __init__(self, flow: Flow, *, reopen_on_bad: bool = False, alert_lead: bool = True):
        self.flow = flow
        self.reopen_on_bad = reopen_on_bad
        self.alert_lead = alert_lead

    # --- out --------------------------------------------------------------------------

    def send(self, conn: Connection, rules: RuleSet | None, ticket: Ticket, now: datetime) -> str:
        """Survey ``ticket``'s requester now, if allowed; returns ``sent`` or why not."""
        refusal = csat.survey_refusal(
            ticket,
            our_addresses=self.flow.support_addresses,
            agent_addresses=_agent_addresses(rules),
        )
        if refusal is not None:
            return refusal
        survey_id = surveys_db.claim(conn, ticket.id, ticket.requester, now)
        if survey_id is None:
            return "surveyed before"
        view = self.flow.view(rules)
        token = make_survey_token(self.flow.config.secret, ticket.id, survey_id)
        support = self.flow.support_address(ticket.mailbox)
        answers = {
            "good": csat.answer_address(support, token, csat.GOOD),
            "bad": csat.answer_address(support, token, csat.BAD),
            "good_subject": quote("Rating: good"),
            "bad_subject": quote("Rating: bad"),
            "change_days": csat.CHANGE_WINDOW.days,
        }
        customer = {"name": ticket.requester_name, "email": ticket.requester}
        rendered = view.render("csat", ticket, customer=customer, survey=answers)
        thread = self.flow.thread_info(conn, ticket)
        message_id = view.to_customer(
            conn,
            OutboundKind.CSAT,
            ticket,
            rendered,
            to=(Address(ticket.requester, ticket.requester_name),),
            now=now,
            sender_name=self.flow.config.helpdesk_name,
            in_reply_to=thread.last_customer_id,
            references=thread.references,
            thread=thread,
            reply_to=csat.answer_address(support, token),
        )
        surveys_db.set_message_id(conn, survey_id, message_id)
        change = tr.survey_sent(
            ticket, survey=survey_id, to=ticket.requester, message_id=message_id, now=now
        )
        tickets.save(conn, change)
        return "sent"

    # --- in ---------------------------------------------------------------------------

    def token_of(self, parsed: ParsedMessage) -> tuple[SurveyToken, str | None] | None:
        """The verified survey token a recipient carries, and the link's rating."""
        for addr in parsed.recipients:
            found = csat.parse_answer_address(addr.email, self.flow.support_locals)
            if found is None:
                continue
            token = verify_survey_token(self.flow.config.secret, found.token)
            if token is not None:
                return token, found.rating
        return None

    def answer(self, session: Session, arrival: Arrival) -> Outcome | None:
        parsed, now = arrival.parsed, arrival.now
        found = self.token_of(parsed)
        if found is None or parsed.kind is not MessageKind.NORMAL:
            return None
        token, link_rating = found
        survey = surveys_db.get(session, token.survey_id)
        if survey is None or survey.ticket_id != token.ticket_id:
            log.warning("survey token of no survey msgid=%s: normal mail", parsed.message_id)
            return None
        text = parsed.new_text.strip()
        if link_rating is not None:
            rating, comment, via = link_rating, text, "link"
        else:
            read = csat.rating_in_text(text)
            if read is None:
                return None  # words, not a rating: the customer wrote to us
            (rating, comment), via = read, "reply"
        ticket = tickets.resolve(session, survey.ticket_id)
        if ticket is None:
            return None
        row_id = messages.store_mail(
            session,
            arrival,
            ticket_id=ticket.id,
            direction=Direction.INBOUND.value,
            matched_by="token",
            reason=_REASON,
        )
        sender = parsed.from_.email if parsed.from_ else ""
        if now - survey.sent_at > csat.CHANGE_WINDOW:
            refused = ev.SurveyAnswerRefused(
                at=now,
                actor=ev.customer(sender) if sender else ev.SYSTEM,
                survey=survey.id,
                message=row_id,
                reason=f"more than {csat.CHANGE_WINDOW.days} days after the survey",
            )
            tickets.record(session, ticket.id, refused)
            return Outcome("stored", ticket.id, row_id, "token", f"{_REASON}, too late")
        change = tr.rated(
            ticket,
            survey=survey.id,
            rating=rating,
            via=via,
            message=row_id,
            sender=sender,
            comment=comment,
            now=now,
            reopen_on_bad=self.reopen_on_bad,
        )
        tickets.save(session, change)
        log.info("survey rated ticket=%s rating=%s via=%s", ticket.id, rating, via)
        if rating == csat.BAD and self.alert_lead:
            reopened = change.after.status != ticket.status
            self._alert(session, arrival, change.after, comment, reopened)
        return Outcome("stored", ticket.id, row_id, "token", _REASON)

    def _alert(
        self, session: Session, arrival: Arrival, ticket: Ticket, comment: str, reopened: bool
    ) -> None:
        """Mail the lead of the ticket's team (no team or lead: nobody, logged)."""
        view = self.flow.view(arrival.rules)
        lead = _lead(view, ticket)
        if lead is None:
            log.info("bad rating ticket=%s: no team lead to tell", ticket.id)
            return
        sender = arrival.parsed.from_
        try:
            rendered = view.render(
                OutboundKind.CSAT_ALERT.value,
                ticket,
                customer={"name": sender.name if sender else "", "email": ticket.requester},
                rating={"rating": csat.BAD, "comment": comment, "reopened": reopened},
                agent=person(lead),
            )
            conn = connection(session)
            view.to_agent(conn, OutboundKind.CSAT_ALERT, ticket, lead, rendered, now=arrival.now)
        except (TemplateError, ComposeError) as exc:
            log.error("bad rating alert failed ticket=%s: %s", ticket.id, exc)


def _lead(view: FlowView, ticket: Ticket) -> Agent | None:
    rules = view.rules
    team = rules.teams.get(ticket.team or "") if rules is not None else None
    if team is None or not team.lead:
        return None
    return view.agent(team.lead)


class SurveyInterceptor:
    """The pipeline's side of ``Surveys``: answers before threading."""

    def __init__(self, surveys: Surveys) -> None:
        self.surveys = surveys

    def intercept(self, session: Session, arrival: Arrival) -> Outcome | None:
        return self.surveys.answer(session, arrival)
