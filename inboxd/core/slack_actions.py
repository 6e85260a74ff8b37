"""Slack button presses as values: parsed from a Socket Mode ``block_actions`` payload,
answered with a reply (an ephemeral line to the presser, or nothing). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from inboxd.core.slack_ticket import ACTIONS


@dataclass(frozen=True, slots=True)
class ButtonPress:
    """One press of one of our buttons on a ticket's root message."""

    action: str  # one of core.slack_ticket.ACTIONS
    ticket_id: int
    user_id: str
    user_name: str
    channel: str  # the channel id the message is in
    action_ts: str
    envelope_id: str = ""
    email: str = ""  # of the presser's Slack profile (users.info), filled in by the edge

    @property
    def key(self) -> str:
        """Stable across redeliveries of the same press: the exactly-once key."""
        return f"{self.user_id}:{self.action}:{self.ticket_id}:{self.action_ts}"

    @property
    def actor(self) -> str:
        """The event actor: ``slack:U123 (alice)``."""
        return (
            f"slack:{self.user_id} ({self.user_name})"
            if self.user_name
            else f"slack:{self.user_id}"
        )


@dataclass(frozen=True, slots=True)
class ButtonReply:
    """What the presser is told, only them (chat.postEphemeral); empty: nothing."""

    text: str = ""


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def presses(payload: Mapping[str, Any], envelope_id: str = "") -> list[ButtonPress]:
    """Our button presses in an interactive payload; anything else is ignored."""
    if payload.get("type") != "block_actions":
        return []
    user = payload.get("user") or {}
    channel = payload.get("channel") or {}
    container = payload.get("container") or {}
    channel_id = _str(channel.get("id")) or _str(container.get("channel_id"))
    out: list[ButtonPress] = []
    for action in payload.get("actions") or []:
        if not isinstance(action, Mapping) or action.get("action_id") not in ACTIONS:
            continue
        try:
            ticket_id = int(_str(action.get("value")))
        except ValueError:
            continue
        out.append(
            ButtonPress(
                action=str(action["action_id"]),
                ticket_id=ticket_id,
                user_id=_str(user.get("id")),
                user_name=_str(user.get("username")) or _str(user.get("name")),
                channel=channel_id,
                action_ts=_str(action.get("action_ts")),
                envelope_id=envelope_id,
            )
        )
    return out


__all__ = ["ButtonPress", "ButtonReply", "presses"]
