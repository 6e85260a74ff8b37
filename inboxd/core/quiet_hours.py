"""Quiet hours: which Slack alerts wait for the team's next opening, and the summary
that carries them then.

An alert has a kind (``rule_alert_kind``, ``sla_alert_kind``). The kinds an admin
lists may wait while the team's calendar is closed (``defer_until``: the start of
its next open window, or None to send now); a breach or an urgent ticket never
waits, whatever the list says. ``summary_message`` is the one post per channel at
the opening. Pure: calendars and ``now`` in, values out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from inboxd.core.calendar import Calendar, NoOpenHours, is_business_time, open_windows
from inboxd.core.slack_text import SECTION_LIMIT, SlackMessage, fit

NEW_VIP, NEW_TICKET, CUSTOMER_REPLY, SLA_WARNING = (
    "new_vip",
    "new_ticket",
    "customer_reply",
    "sla_warning",
)
URGENT, SLA_BREACH = "urgent", "sla_breach"
DEFERRABLE = frozenset({NEW_VIP, NEW_TICKET, CUSTOMER_REPLY, SLA_WARNING})
LABELS = {
    NEW_VIP: ("new VIP ticket", "new VIP tickets"),
    NEW_TICKET: ("new ticket", "new tickets"),
    CUSTOMER_REPLY: ("customer reply", "customer replies"),
    SLA_WARNING: ("SLA warning", "SLA warnings"),
}
MAX_LINES = 50  # alerts listed one by one; the rest are counted


def rule_alert_kind(*, priority: str, vip: bool, new_ticket: bool) -> str:
    """A rule's ``slack:`` alert: an urgent ticket always goes at once."""
    if priority == "urgent":
        return URGENT
    if not new_ticket:
        return CUSTOMER_REPLY
    return NEW_VIP if vip else NEW_TICKET


def sla_alert_kind(*, now: datetime, due_at: datetime) -> str:
    """An SLA stage's alert: a warning before the due time, a breach from it on."""
    return SLA_BREACH if now >= due_at else SLA_WARNING


@dataclass(frozen=True, slots=True)
class QuietHours:
    """The kinds that wait, and the calendar (by name) each team's alerts wait on."""

    kinds: frozenset[str] = frozenset()
    calendar: str = ""  # the default: a calendar of the rule files
    teams: Mapping[str, str] = field(default_factory=dict)

    def calendar_of(self, team: str | None) -> str:
        return self.teams.get(team or "") or self.calendar


def next_opening(calendar: Calendar, now: datetime) -> datetime | None:
    """When ``calendar`` opens next, or None when it is open at ``now`` (or never opens)."""
    if calendar.always or is_business_time(calendar, now):
        return None
    try:
        start, _end = next(open_windows(calendar, now))
    except NoOpenHours:
        return None
    return start if start > now else None


def defer_until(
    quiet: QuietHours,
    kind: str,
    team: str | None,
    calendars: Mapping[str, Calendar],
    now: datetime,
) -> datetime | None:
    """The opening an alert of ``kind`` about ``team``'s ticket waits for, or None to
    send it now: not a waiting kind, a breach, no such calendar, or open now."""
    if kind not in DEFERRABLE or kind not in quiet.kinds:
        return None
    calendar = calendars.get(quiet.calendar_of(team))
    if calendar is None:
        return None
    return next_opening(calendar, now)


@dataclass(frozen=True, slots=True)
class Deferred:
    """An alert that waited: when it came, its kind, its text (escaped mrkdwn already)."""

    at: datetime
    kind: str
    text: str


def _count(kind: str, n: int) -> str:
    one, many = LABELS.get(kind, (kind, kind))
    return f"{n} {one if n == 1 else many}"


def summary_message(items: Sequence[Deferred], *, now: datetime) -> SlackMessage:
    """The post at the opening: how many of each kind, then each alert with its time
    (``MAX_LINES`` of them, the rest counted), oldest first."""
    ordered = sorted(items, key=lambda d: d.at)
    counts = Counter(d.kind for d in ordered)
    parts = ", ".join(_count(k, counts[k]) for k in sorted(counts, key=lambda k: -counts[k]))
    noun = "alert" if len(ordered) == 1 else "alerts"
    head = f"While the team was away: {len(ordered)} {noun} ({parts})"
    shown = ordered[:MAX_LINES]
    lines = [f"• {d.at.strftime('%a %H:%M')} UTC · {d.text}" for d in shown]
    body, used = [], 0
    for line in lines:
        line = fit(line, 500)
        if used + len(line) + 1 > SECTION_LIMIT - 60:
            break
        body.append(line)
        used += len(line) + 1
    hidden = len(ordered) - len(body)
    if hidden:
        body.append(f"… and {hidden} more")
    first, last = ordered[0].at, ordered[-1].at
    context = (
        f"collected {first.strftime('%Y-%m-%d %H:%M')} to {last.strftime('%Y-%m-%d %H:%M')}"
        f" UTC while the calendar was closed, posted at the opening"
        f" {now.strftime('%Y-%m-%d %H:%M')} UTC; breaches went out at once"
    )
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f":crescent_moon: *{head}*"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(body)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
    ]
    return SlackMessage(head, blocks)


__all__ = [
    "CUSTOMER_REPLY",
    "DEFERRABLE",
    "NEW_TICKET",
    "NEW_VIP",
    "SLA_BREACH",
    "SLA_WARNING",
    "URGENT",
    "Deferred",
    "QuietHours",
    "defer_until",
    "next_opening",
    "rule_alert_kind",
    "sla_alert_kind",
    "summary_message",
]
