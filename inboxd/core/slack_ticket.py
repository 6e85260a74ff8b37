"""The living Slack message of a ticket: its current state as one Block Kit root.

The root is rebuilt from the ticket whenever something may have changed; its
``digest`` says whether Slack already shows that state, so an unchanged ticket
costs no ``chat.update``. Nothing in it is relative to the clock ("due in 2 h"
would change every minute): due and breach times are absolute. Pure.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from inboxd.core.sla.targets import TargetClock
from inboxd.core.slack_text import (
    FIELD_LIMIT,
    HEADER_LIMIT,
    SECTION_LIMIT,
    TEXT_LIMIT,
    SlackMessage,
    escape,
    excerpt,
    fit,
    truncate,
)

# action_id of each button; the value of every button is the ticket id
TAKE, SNOOZE, PENDING, ACK = "inboxd_take", "inboxd_snooze", "inboxd_pending", "inboxd_ack"
ACTIONS = (TAKE, SNOOZE, PENDING, ACK)
LAST_MAIL_CHARS = 300
_LIVE = frozenset({"new", "open", "pending"})


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True, slots=True)
class SlaLine:
    """What the root says about the SLA: one line, and whether it is breached."""

    text: str = ""
    breached: bool = False


def sla_line(
    clocks: Sequence[TargetClock],
    *,
    snoozed_until: datetime | None = None,
    acknowledged: bool = False,
) -> SlaLine:
    """The most pressing target: a breach first, else the earliest due time."""
    breached = [c for c in clocks if c.state == "breached" and c.met_at is None]
    active = sorted(
        (c for c in clocks if c.state == "active" and c.due_at is not None),
        key=lambda c: c.due_at or datetime.max,
    )
    paused = [c for c in clocks if c.state == "paused"]
    if breached:
        first = min(breached, key=lambda c: c.breached_at or datetime.max)
        since = f" since {_when(first.breached_at)}" if first.breached_at else ""
        text = f":rotating_light: {first.target.replace('_', ' ')} breached{since}"
        if acknowledged:
            text += " (acknowledged)"
    elif active:
        first = active[0]
        assert first.due_at is not None
        text = f"{first.target.replace('_', ' ')} due {_when(first.due_at)}"
    elif paused:
        text = "paused (" + ", ".join(c.target.replace("_", " ") for c in paused) + ")"
    else:
        return SlaLine()
    if snoozed_until is not None:
        text += f"; stages snoozed until {_when(snoozed_until)}"
    return SlaLine(text, bool(breached))


@dataclass(frozen=True, slots=True)
class TicketCard:
    """What the root message shows about one ticket."""

    ticket_id: int
    label: str  # e.g. "[#42]"
    subject: str
    requester: str
    status: str
    requester_name: str = ""
    priority: str = "normal"
    vip: bool = False
    tags: tuple[str, ...] = ()
    team: str | None = None
    assignee: str | None = None
    sla: SlaLine = SlaLine()
    last_mail: str = ""  # the new text of the customer's last mail
    merged_into: int | None = None
    buttons: bool = False  # Socket Mode is on: the root carries the action buttons


def _who(card: TicketCard) -> str:
    if card.requester_name and card.requester:
        return f"{card.requester_name} <{card.requester}>"
    return card.requester or card.requester_name or "unknown sender"


def _field(title: str, value: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": fit(f"*{title}*\n{escape(value)}", FIELD_LIMIT)}


def _button(action: str, label: str, ticket_id: int, style: str = "") -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "action_id": action,
        "text": {"type": "plain_text", "text": label, "emoji": False},
        "value": str(ticket_id),
    }
    if style:
        button["style"] = style
    return button


def root_message(card: TicketCard) -> SlackMessage:
    """The root: header, the ticket's fields, SLA, last customer mail, buttons."""
    subject = card.subject.strip() or "(no subject)"
    status = card.status if card.merged_into is None else f"merged into #{card.merged_into}"
    fallback = f"{card.label} {subject} [{card.priority}] {status}"
    if card.sla.text:
        fallback += f"; SLA {card.sla.text}"
    priority = card.priority + (" (VIP)" if card.vip else "")
    fields = [
        _field("Requester", _who(card)),
        _field("Priority", priority),
        _field("Status", status),
        _field("Team / assignee", f"{card.team or '—'} / {card.assignee or '—'}"),
        _field("Tags", ", ".join(card.tags) or "—"),
        _field("SLA", card.sla.text.replace(":rotating_light: ", "") or "—"),
    ]
    header = truncate(f"{'🚨 ' if card.sla.breached else ''}{card.label} {subject}", HEADER_LIMIT)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
        {"type": "section", "fields": fields},
    ]
    cut = excerpt(card.last_mail, LAST_MAIL_CHARS)
    if cut:
        quoted = "\n".join(f">{line}" if line else ">" for line in escape(cut).splitlines())
        text = fit("*Last customer mail*\n" + quoted, SECTION_LIMIT)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    if card.buttons and card.status in _LIVE and card.merged_into is None:
        blocks.append(
            {
                "type": "actions",
                "block_id": f"inboxd_ticket_{card.ticket_id}",
                "elements": [
                    _button(TAKE, "Take it", card.ticket_id, "primary"),
                    _button(SNOOZE, "Snooze 1h", card.ticket_id),
                    _button(PENDING, "Mark pending", card.ticket_id),
                    _button(ACK, "Acknowledge", card.ticket_id, "danger"),
                ],
            }
        )
    context = f"ticket {escape(card.label)} · updated by inboxd whenever the ticket changes"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return SlackMessage(escape(truncate(fallback, TEXT_LIMIT)), blocks)


def digest(message: SlackMessage) -> str:
    """A short stable fingerprint of what a message shows."""
    raw = json.dumps([message.text, message.blocks], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


__all__ = [
    "ACK",
    "ACTIONS",
    "PENDING",
    "SNOOZE",
    "TAKE",
    "SlaLine",
    "TicketCard",
    "digest",
    "root_message",
    "sla_line",
]
