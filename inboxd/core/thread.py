"""Threading: which ticket a mail belongs to, and why.

Two pure steps around one database lookup:

1. ``thread_keys(msg, ...)`` lists what to look up (cited Message-IDs, tickets
   named by our own signed Message-IDs, reply tokens in recipient addresses,
   the subject tag);
2. the storage edge fetches a ``ThreadLookup`` for those keys;
3. ``choose(msg, keys, lookup, ...)`` decides, in the documented order:
   headers, then reply token, then subject tag (only for a sender already on the
   ticket), then a new ticket.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from inboxd.core.desk.vocab import REOPENABLE, Status
from inboxd.core.model import MatchedBy, ParsedMessage
from inboxd.core.tokens import (
    TicketToken,
    ticket_from_message_id,
    token_from_address,
    verify_reply_token,
)

DEFAULT_TAG_PATTERN = re.compile(r"\[#(\d{1,12})\]")
_MAX_MERGE_HOPS = 16


def tag_pattern(tag_format: str) -> re.Pattern[str]:
    """Regex finding the ticket number in a subject written with ``tag_format``."""
    before, _, after = tag_format.partition("{id}")
    return re.compile(re.escape(before) + r"(\d{1,12})" + re.escape(after))


@dataclass(frozen=True, slots=True)
class ThreadKeys:
    own_id: str
    cited_ids: tuple[str, ...]  # In-Reply-To first, then References newest first
    signed_tickets: tuple[int, ...]  # tickets named by our own Message-IDs among cited ids
    tokens: tuple[TicketToken, ...]  # valid reply tokens found in recipient addresses
    tag: int | None

    @property
    def lookup_ids(self) -> tuple[str, ...]:
        return (self.own_id, *self.cited_ids)

    @property
    def candidate_tickets(self) -> tuple[int, ...]:
        found = list(self.signed_tickets) + [t.ticket_id for t in self.tokens]
        if self.tag is not None:
            found.append(self.tag)
        return tuple(dict.fromkeys(found))


@dataclass(frozen=True, slots=True)
class KnownKey:
    ticket_id: int
    origin: str  # "self": a stored mail's own Message-ID; "ref": only cited so far


@dataclass(frozen=True, slots=True)
class TicketSnapshot:
    id: int
    status: str
    status_changed_at: datetime
    participants: frozenset[str]
    merged_into: int | None = None


@dataclass(frozen=True, slots=True)
class ThreadLookup:
    keys: Mapping[str, KnownKey]
    tickets: Mapping[int, TicketSnapshot]


@dataclass(frozen=True, slots=True)
class ThreadMatch:
    """Where the mail goes. ``ticket_id`` None means: open a new ticket."""

    ticket_id: int | None
    matched_by: MatchedBy
    reason: str
    reopen: bool = False  # the ticket was solved/closed and this mail reopens it
    follow_up_of: int | None = None  # new ticket linked to this long-closed one


def thread_keys(
    msg: ParsedMessage,
    *,
    secret: bytes,
    support_locals: Iterable[str],
    tag_re: re.Pattern[str] = DEFAULT_TAG_PATTERN,
) -> ThreadKeys:
    cited = list(dict.fromkeys([*msg.in_reply_to, *reversed(msg.references)]))
    cited = [c for c in cited if c and c != msg.message_id]
    signed = [t for t in (ticket_from_message_id(secret, c) for c in cited) if t is not None]
    bases = tuple(support_locals)
    tokens: list[TicketToken] = []
    for addr in msg.recipients:
        for base in bases:
            raw = token_from_address(addr.email, base)
            token = verify_reply_token(secret, raw) if raw else None
            if token is not None and token not in tokens:
                tokens.append(token)
    tag_match = tag_re.search(msg.subject)
    return ThreadKeys(
        own_id=msg.message_id,
        cited_ids=tuple(cited),
        signed_tickets=tuple(dict.fromkeys(signed)),
        tokens=tuple(tokens),
        tag=int(tag_match.group(1)) if tag_match else None,
    )


def _resolve(ticket_id: int, lookup: ThreadLookup) -> TicketSnapshot | None:
    """Follow merges to the surviving ticket."""
    seen: set[int] = set()
    current = lookup.tickets.get(ticket_id)
    while current is not None and current.merged_into is not None and current.id not in seen:
        seen.add(current.id)
        if len(seen) > _MAX_MERGE_HOPS:
            break
        current = lookup.tickets.get(current.merged_into)
    return current


def _landing(
    snap: TicketSnapshot,
    how: MatchedBy,
    reason: str,
    *,
    now: datetime,
    reopen_window: timedelta,
    may_reopen: bool,
) -> ThreadMatch:
    if snap.status == Status.CLOSED and now - snap.status_changed_at > reopen_window:
        return ThreadMatch(
            None,
            MatchedBy.NEW,
            f"{reason}; ticket #{snap.id} closed since {snap.status_changed_at:%Y-%m-%d}, "
            "so a follow-up ticket",
            follow_up_of=snap.id,
        )
    closed = snap.status in REOPENABLE
    return ThreadMatch(snap.id, how, reason, reopen=closed and may_reopen)


def choose(
    msg: ParsedMessage,
    keys: ThreadKeys,
    lookup: ThreadLookup,
    *,
    now: datetime,
    reopen_window: timedelta,
    may_reopen: bool = True,
) -> ThreadMatch:
    """Pick the ticket for ``msg``; see the module docstring for the order.

    ``may_reopen`` is False for machine mail (auto-replies, bounces): it joins its
    ticket but never reopens it.
    """
    land = partial(_landing, now=now, reopen_window=reopen_window, may_reopen=may_reopen)

    for cited in keys.cited_ids:
        known = lookup.keys.get(cited)
        snap = _resolve(known.ticket_id, lookup) if known else None
        if snap is not None:
            return land(snap, MatchedBy.HEADER, f"cites <{cited}>")
    for ticket_id in keys.signed_tickets:
        snap = _resolve(ticket_id, lookup)
        if snap is not None:
            return land(snap, MatchedBy.HEADER, f"cites our mail for #{ticket_id}")
    own = lookup.keys.get(keys.own_id)
    if own is not None and own.origin == "ref":
        snap = _resolve(own.ticket_id, lookup)
        if snap is not None:
            return land(snap, MatchedBy.HEADER, "cited by an earlier-arrived reply")
    for token in keys.tokens:
        snap = _resolve(token.ticket_id, lookup)
        if snap is not None:
            return land(snap, MatchedBy.TOKEN, f"reply token for #{token.ticket_id}")
    if keys.tag is not None and msg.from_ is not None:
        snap = _resolve(keys.tag, lookup)
        if snap is not None and msg.from_.email in snap.participants:
            return land(snap, MatchedBy.TAG, f"subject tag #{keys.tag}")
        if snap is not None:
            return ThreadMatch(
                None, MatchedBy.NEW, f"subject tag #{keys.tag} ignored: sender not on that ticket"
            )
    return ThreadMatch(None, MatchedBy.NEW, "no known reference")
