"""Builders for rule tests: a ParsedMessage from a few fields, rule text -> RuleSet."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

from inboxd.core.model import Address, Attachment, AutoFlags, MessageKind, ParsedMessage
from inboxd.core.rules import LoadResult, RuleContext, RuleSet, load_rules

NOW = datetime(2025, 3, 5, 10, 0, tzinfo=UTC)  # a Wednesday, 11:00 in Berlin

TEAMS = """
teams:
  frontline:
    agents:
      - {name: alice, email: alice@example.com}
  billing:
    agents:
      - {name: dana, email: Dana@Example.com, display_name: Dana W}
  sre:
    agents: [alice]
sla_policies:
  standard: {first_response: 4h}
  vip: {first_response: 30m}
"""


def msg(
    *,
    sender: str | None = "bob@customer.example",
    subject: str = "hello",
    text: str = "",
    to: tuple[str, ...] = ("support@example.com",),
    cc: tuple[str, ...] = (),
    headers: tuple[tuple[str, str], ...] = (),
    attachments: tuple[Attachment, ...] = (),
) -> ParsedMessage:
    return ParsedMessage(
        message_id="m1@customer.example",
        message_id_synthesized=False,
        in_reply_to=(),
        references=(),
        from_=Address(sender) if sender else None,
        reply_to=(),
        to=tuple(Address(a) for a in to),
        cc=tuple(Address(a) for a in cc),
        date=NOW,
        subject=subject,
        normalized_subject=subject.casefold(),
        text=text,
        html="",
        new_text=text,
        attachments=attachments,
        headers=tuple((k.lower(), v) for k, v in headers),
        auto=AutoFlags(),
        kind=MessageKind.NORMAL,
        bounce=None,
        defects=(),
        raw_sha256="0" * 64,
        content_digest="0" * 64,
        size=len(text),
    )


def ctx(
    *, is_new: bool = True, now: datetime = NOW, ticket_vip: bool = False, mailbox: str = "support"
) -> RuleContext:
    return RuleContext(
        is_new=is_new,
        mailbox=mailbox,
        mailbox_address=f"{mailbox}@example.com",
        now=now,
        ticket_vip=ticket_vip,
    )


def load(*texts: str, **kw: object) -> LoadResult:
    files = [(f"rules/{i + 10}-t.yaml", textwrap.dedent(t)) for i, t in enumerate(texts)]
    return load_rules(files, **kw)  # type: ignore[arg-type]


def ruleset(*texts: str, teams: bool = True, **kw: object) -> RuleSet:
    result = load(*((TEAMS,) if teams else ()), *texts, **kw)
    assert result.errors == [], [str(e) for e in result.errors]
    assert result.ruleset is not None
    return result.ruleset


def errors(*texts: str, **kw: object) -> list[str]:
    return [str(e) for e in load(*texts, **kw).errors]
