"""Slack messages for ticket alerts and rules-reload failures: plain values in, payload out.

Every message carries a ``text`` fallback (what push notifications and old
clients show) and Block Kit ``blocks``. Anything that came from a mail or a
rule file is escaped for mrkdwn (``&``, ``<``, ``>``), so a customer cannot
inject ``<!channel>`` pings or fake links into the alert, and is cut to fit
Slack's limits (header 150 chars, section text 3000, fields 2000) with the cut
made before escaping and never inside an entity. Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

HEADER_LIMIT = 150  # Block Kit: header plain_text
SECTION_LIMIT = 3000  # Block Kit: section text
FIELD_LIMIT = 2000  # Block Kit: one section field
EXCERPT_CHARS = 500
TEXT_LIMIT = 600  # the fallback text: one readable notification line
MAX_RULES_SHOWN = 5
MAX_ERRORS_SHOWN = 20
ERROR_LINE_CHARS = 300
ELLIPSIS = "…"

_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
# a Slack user group's id (``S0123ABC``): the only ping inboxd writes itself
SUBTEAM_ID = re.compile(r"^S[A-Z0-9]{2,20}$")
_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,4}$")
_BLANK_RUNS = re.compile(r"\n\s*\n(\s*\n)+")
_SPACES = re.compile(r"[ \t\r\f\v]+")


def escape(text: str) -> str:
    """Slack's three control characters as entities (all that mrkdwn requires)."""
    return text.translate(_ESCAPES)


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` chars, at a word boundary when one is near."""
    if limit < 1:
        return ""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit * 3 // 4:
        cut = cut[:space]
    return cut.rstrip() + ELLIPSIS


def fit(escaped: str, limit: int) -> str:
    """An already escaped string cut to ``limit`` without leaving half an entity."""
    if len(escaped) <= limit:
        return escaped
    cut = _PARTIAL_ENTITY.sub("", escaped[: limit - 1])
    return cut + ELLIPSIS


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The start of a mail's new text: blank-line runs collapsed, spaces squeezed, cut."""
    lines = [_SPACES.sub(" ", line).strip() for line in text.strip().splitlines()]
    squeezed = _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()
    return truncate(squeezed, limit)


def _quote(text: str) -> str:
    """mrkdwn blockquote of already escaped text (our own ``>`` is the markup)."""
    return "\n".join(f">{line}" if line else ">" for line in text.splitlines())


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": False}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """A chat.postMessage payload (minus the channel)."""

    text: str
    blocks: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class FiredRule:
    """A rule that fired, and why (``RuleHit.reasons``)."""

    name: str
    reasons: tuple[str, ...] = ()
    file: str = ""
    line: int = 0


@dataclass(frozen=True, slots=True)
class TicketAlert:
    ticket_id: int
    subject: str
    requester: str
    requester_name: str = ""
    priority: str = "normal"
    vip: bool = False
    team: str | None = None
    assignee: str | None = None
    status: str = ""
    new_ticket: bool = True
    rules: tuple[FiredRule, ...] = ()
    text: str = ""  # the new text of the mail (quotes already removed); cut here
    ticket_label: str = ""  # e.g. "[#42]"; defaults to "#<id>"


def _who(alert: TicketAlert) -> str:
    if alert.requester_name and alert.requester:
        return f"{alert.requester_name} <{alert.requester}>"
    return alert.requester or alert.requester_name or "unknown sender"


def _rule_line(rule: FiredRule, budget: int) -> str:
    """One rule as a bullet, at most ``budget`` chars however much escaping grows it."""
    why = "; ".join(rule.reasons) or "matched"
    head = f"• `{escape(truncate(rule.name, 100))}`: "
    return head + fit(escape(truncate(why, 200)), max(budget - len(head), 10))


def ticket_alert(alert: TicketAlert) -> SlackMessage:
    """The alert a ``slack:`` rule action posts about a ticket."""
    label = alert.ticket_label or f"#{alert.ticket_id}"
    subject = alert.subject.strip() or "(no subject)"
    vip = " VIP" if alert.vip else ""
    event = "New ticket" if alert.new_ticket else "Customer reply"
    rule_names = ", ".join(r.name for r in alert.rules[:MAX_RULES_SHOWN])

    fallback = f"{event} {label} [{alert.priority}{vip}] {subject} (from {_who(alert)})"
    if rule_names:
        fallback += f"; rule: {rule_names}"
    text = escape(truncate(fallback, TEXT_LIMIT))

    header = truncate(f"{label} {subject}", HEADER_LIMIT)
    fields = [
        _mrkdwn(fit(f"*Requester*\n{escape(_who(alert))}", FIELD_LIMIT)),
        _mrkdwn(f"*Priority*\n{escape(alert.priority)}{' :star: VIP' if alert.vip else ''}"),
        _mrkdwn(fit(f"*Team*\n{escape(alert.team or '—')}", FIELD_LIMIT)),
        _mrkdwn(fit(f"*Assignee*\n{escape(alert.assignee or '—')}", FIELD_LIMIT)),
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(header)},
        {"type": "section", "fields": fields},
    ]
    if alert.rules:
        shown = alert.rules[:MAX_RULES_SHOWN]
        budget = (SECTION_LIMIT - 100) // len(shown)  # room left for title and "more"
        lines = [_rule_line(r, budget) for r in shown]
        hidden = len(alert.rules) - MAX_RULES_SHOWN
        if hidden > 0:
            lines.append(f"… and {hidden} more")
        title = "*Rule that fired*" if len(alert.rules) == 1 else "*Rules that fired*"
        body = fit(title + "\n" + "\n".join(lines), SECTION_LIMIT)
        blocks.append({"type": "section", "text": _mrkdwn(body)})
    cut = excerpt(alert.text)
    if cut:
        blocks.append({"type": "section", "text": _mrkdwn(fit(_quote(escape(cut)), SECTION_LIMIT))})
    context = f"{event} · ticket {escape(label)}"
    if alert.status:
        context += f" · status {escape(alert.status)}"
    blocks.append({"type": "context", "elements": [_mrkdwn(context)]})
    return SlackMessage(text, blocks)


def rules_error_message(
    errors: Sequence[str],
    *,
    directory: str = "",
    trigger: str = "",
    max_errors: int = MAX_ERRORS_SHOWN,
) -> SlackMessage:
    """The ops alert for a rejected rules reload; ``errors`` read ``file:line:col: message``."""
    count = len(errors)
    noun = "error" if count == 1 else "errors"
    where = f" in {directory}" if directory else ""
    text = escape(
        f"inboxd rules reload rejected: {count} {noun}{where}; the previous rules stay in force"
    )
    summary = f"*{count} {noun}*{escape(where)}"
    if trigger:
        summary += f" (trigger: {escape(trigger)})"
    summary += ". The previous rule set stays in force until the files check clean."

    shown = [escape(truncate(e.replace("```", "'''"), ERROR_LINE_CHARS)) for e in errors]
    hidden = max(count - max_errors, 0)
    shown = shown[:max_errors]
    tail = "Run `inboxd rules check` for the full list."
    # Fill the code block line by line so a cut never splits an error.
    budget = SECTION_LIMIT - len("```\n\n```") - 40
    lines: list[str] = []
    used = 0
    for line in shown:
        if used + len(line) + 1 > budget:
            break
        lines.append(line)
        used += len(line) + 1
    hidden += len(shown) - len(lines)
    code = "```\n" + "\n".join(lines) + "\n```" if lines else ""
    if hidden:
        code += f"\n… and {hidden} more"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain("Rules reload rejected")},
        {"type": "section", "text": _mrkdwn(summary)},
    ]
    if code:
        blocks.append({"type": "section", "text": _mrkdwn(code)})
    blocks.append({"type": "context", "elements": [_mrkdwn(tail)]})
    return SlackMessage(text, blocks)


def human_duration(delta: timedelta) -> str:
    """``2 h 5 min``, ``3 d 4 h``, ``45 s``: a span for people, to the minute past an hour."""
    seconds = max(int(delta.total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else ""]
    parts.append(f"{minutes} min" if minutes and not days else "")
    if not (days or hours or minutes):
        parts.append(f"{secs} s")
    return " ".join(p for p in parts if p)


def mention(subteam: str) -> str:
    """``<!subteam^S0123ABC>``: pings the user group; ``ValueError`` for anything but a
    user group id (what goes between the brackets is never from a mail)."""
    if not SUBTEAM_ID.match(subteam):
        raise ValueError(f"not a Slack user group id: {subteam!r} (expected e.g. S0123ABC)")
    return f"<!subteam^{subteam}>"


def sla_message(
    *,
    label: str,
    subject: str,
    target: str,
    policy: str,
    due_at: datetime,
    now: datetime,
    assignee: str | None,
    team: str | None,
    mentions: Sequence[str] = (),
) -> SlackMessage:
    """An SLA stage in Slack: overdue (at or after the due time) or a warning.
    ``mentions``: user group ids pinged at the start of the text and of the section."""
    overdue = now >= due_at
    head = (
        f"SLA breached: {target} of {label} is {human_duration(now - due_at)} overdue"
        if overdue
        else f"SLA warning: {target} of {label} is due in {human_duration(due_at - now)}"
    )
    who = f"assignee {assignee}" if assignee else f"team {team}" if team else "unassigned"
    detail = (
        f"*{escape(truncate(subject, 200))}*\npolicy `{escape(policy)}`, due"
        f" {due_at.strftime('%Y-%m-%d %H:%M')} UTC, {escape(who)}"
    )
    pings = " ".join(mention(m) for m in dict.fromkeys(mentions))
    if pings:
        detail = f"{pings}\n{detail}"
    blocks = [
        {"type": "header", "text": _plain(truncate(head, 150))},
        {"type": "section", "text": _mrkdwn(detail)},
    ]
    return SlackMessage(f"{pings} {escape(head)}" if pings else escape(head), blocks)


def _number(value: float) -> str:
    """3, 0.5, 12.3: a usual count as people say it."""
    return f"{value:.1f}".rstrip("0").rstrip(".") if value < 10 else str(round(value))


def _section(text: str, context: str) -> list[dict[str, Any]]:
    return [
        {"type": "section", "text": _mrkdwn(fit(text, SECTION_LIMIT))},
        {"type": "context", "elements": [_mrkdwn(fit(context, SECTION_LIMIT))]},
    ]


def spike_message(
    *,
    tag: str,
    count: int,
    usual: float,
    window: timedelta,
    started_at: datetime,
    ended_at: datetime | None = None,
    grouped: bool = True,
) -> SlackMessage:
    """A tag's spike while it is on, and (``ended_at``) the same message once it is over:
    ``refund spike over: 42 mails in 1 h against 3 usual``. ``grouped``: the tickets'
    alerts go into its thread (not through an incoming webhook, which has none)."""
    span = human_duration(window)
    name = escape(truncate(tag, 100))
    since = started_at.strftime("%Y-%m-%d %H:%M")
    if ended_at is None:
        head = f"{name} spike: {count} mails in {span} against {_number(usual)} usual"
        context = (
            f"since {since} UTC · alerts about tickets tagged {name} go into this thread"
            " until it is over"
            if grouped
            else f"since {since} UTC · another message says when it is over"
        )
    else:
        head = f"{name} spike over: {count} mails in {span} against {_number(usual)} usual"
        context = (
            f"{since} to {ended_at.strftime('%H:%M')} UTC"
            f" ({human_duration(ended_at - started_at)}); the peak is shown"
        )
    icon = ":chart_with_upwards_trend: " if ended_at is None else ":white_check_mark: "
    return SlackMessage(head, _section(f"{icon}*{head}*", context))


def outage_message(
    *,
    mailbox: str,
    down_since: datetime,
    now: datetime,
    error: str = "",
    back: bool = False,
) -> SlackMessage:
    """A mailbox that cannot be fetched, and (``back``) the update once it can again:
    ``mailbox support reachable again after 14 min``."""
    name = escape(truncate(mailbox, 100))
    gone = human_duration(now - down_since)
    since = down_since.strftime("%Y-%m-%d %H:%M")
    if back:
        head = f"mailbox {name} reachable again after {gone}"
        context = f"unreachable from {since} to {now.strftime('%H:%M')} UTC"
    else:
        head = f"mailbox {name} unreachable for {gone}"
        context = f"since {since} UTC; no mail is fetched from it meanwhile"
        if error:
            context += f" · last error: {escape(truncate(error, 300))}"
    return SlackMessage(head, _section(f"*{head}*", context))


__all__ = [
    "FiredRule",
    "SlackMessage",
    "TicketAlert",
    "escape",
    "excerpt",
    "fit",
    "human_duration",
    "mention",
    "outage_message",
    "rules_error_message",
    "sla_message",
    "spike_message",
    "ticket_alert",
    "truncate",
]
