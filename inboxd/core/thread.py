"""Threading: which ticket a mail belongs to, and why.

Two pure steps around one database lookup:

1. ``thread_keys(msg, ...)`` lists what to look up (cited Message-IDs, tickets
   named by our own signed Message-IDs, reply tokens in recipient addresses,
   the subject tag);
2. the storage edge fetches a ``ThreadLookup`` for those keys;
3. ``choose(msg, keys, lookup, ...)`` decides, in the documented order:
   headers, then reply token, then subject tag (only for a sender already on the
   ticket), then a new ticket;
4. ``plan_join(keys, lookup, match, ...)`` decides what the mail does to the other
   tickets its Message-IDs point at (``joined_tickets``): such tickets exist only
   because mail of one thread arrived out of order (a reply before the mail it
   answers), so the younger is merged into the older while no agent has answered
   either, and the two are linked as related otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from inboxd.core.desk.ticket import Ticket
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
    created_at: datetime | None = None
    requester: str = ""
    mailbox: str = ""
    answered: bool = False  # an agent has replied in public (first_agent_reply_at)
    customers: frozenset[str] = frozenset()  # requester and customer roles: the recipients
    # the whole ticket and each address's role, read with the snapshot, so the mail
    # that finds its ticket here need not read it again
    ticket: Ticket | None = None
    roles: Mapping[str, str] = field(default_factory=dict)


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
    sender: str = "",
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
    return ThreadMatch(
        snap.id, how, reason, reopen=closed and may_reopen and _reopens(snap, sender)
    )


# who may reopen a solved or closed ticket by mail (db.tickets.Person roles)
_REOPENERS = frozenset({"requester", "customer", "agent"})


def _reopens(snap: TicketSnapshot, sender: str) -> bool:
    """A customer of the ticket (its requester, a Cc a customer or agent added) or an
    agent on it reopens it; a sender new to it (``pending``: they found it by citing
    its mail or a token) only adds their mail, and the agents decide. A ticket with
    no people on record (a held ticket) is anyone's to reopen."""
    return not snap.roles or snap.roles.get(sender) in _REOPENERS


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
    ticket but never reopens it; nor does a sender new to the ticket (``_reopens``).
    """
    sender = msg.from_.email if msg.from_ is not None else ""
    land = partial(
        _landing, now=now, reopen_window=reopen_window, may_reopen=may_reopen, sender=sender
    )

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


# --- tickets one mail joins ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Relation:
    """``ticket`` and ``other`` belong to one thread but stay apart, for ``reason``."""

    ticket: int
    other: int
    reason: str


@dataclass(frozen=True, slots=True)
class ThreadJoin:
    """What a mail does to the tickets its references join.

    ``match`` is where the mail lands (the surviving ticket when its own was merged);
    ``merges`` are (younger, older) pairs, each older one surviving; ``relations``
    link tickets that may not be merged.
    """

    match: ThreadMatch
    merges: tuple[tuple[int, int], ...] = ()
    relations: tuple[Relation, ...] = ()


def _age(snap: TicketSnapshot, now: datetime) -> tuple[datetime, int]:
    return (snap.created_at or now, snap.id)


def _past_window(snap: TicketSnapshot, now: datetime, reopen_window: timedelta) -> bool:
    return snap.status == Status.CLOSED and now - snap.status_changed_at > reopen_window


def joined_tickets(
    keys: ThreadKeys,
    lookup: ThreadLookup,
    match: ThreadMatch,
    *,
    now: datetime,
    reopen_window: timedelta,
) -> tuple[TicketSnapshot, ...]:
    """The tickets other than ``match``'s that the mail's Message-IDs point at, oldest first.

    Only thread keys count (ids the mail cites, and its own id when earlier mail cited
    it), never tokens or tags; a ticket closed past the reopen window takes no mail,
    so it joins nothing either. A mail that opens a ticket joins none.
    """
    if match.ticket_id is None:
        return ()
    own = lookup.keys.get(keys.own_id)
    found: dict[int, TicketSnapshot] = {}
    known = [lookup.keys.get(c) for c in keys.cited_ids]
    if own is not None and own.origin == "ref":
        known.append(own)
    for key in known:
        snap = _resolve(key.ticket_id, lookup) if key is not None else None
        if (
            snap is None
            or snap.id == match.ticket_id
            or snap.status == Status.MERGED
            or _past_window(snap, now, reopen_window)
        ):
            continue
        found[snap.id] = snap
    return tuple(sorted(found.values(), key=partial(_age, now=now)))


def _share_customer(a: TicketSnapshot, b: TicketSnapshot) -> bool:
    """One customer on both: a stranger citing two customers' mail joins nothing."""
    return bool(a.requester and a.requester == b.requester) or bool(a.customers & b.customers)


def _why_apart(older: TicketSnapshot, younger: TicketSnapshot) -> str | None:
    """Why two tickets of one thread may not be merged (None: they may)."""
    answered = [t.id for t in (older, younger) if t.answered]
    if answered:
        return " and ".join(f"#{i}" for i in answered) + " already answered by an agent"
    if older.mailbox != younger.mailbox:
        return f"in different mailboxes ({older.mailbox}, {younger.mailbox})"
    return None


def plan_join(
    keys: ThreadKeys,
    lookup: ThreadLookup,
    match: ThreadMatch,
    *,
    now: datetime,
    reopen_window: timedelta,
    may_reopen: bool = True,
    sender: str = "",
) -> ThreadJoin | None:
    """Merge or relate the tickets the mail's references join; None when there are none.

    Oldest first, each ticket is merged into the oldest earlier one that shares a
    customer with it (the same requester, or a recipient on both), is in the same
    mailbox, and neither has been answered by an agent (an answered ticket has told
    its customer something: folding it away would hide that thread from them);
    failing that it is related to the oldest earlier one sharing a customer, with
    the reason. Tickets sharing no customer are left alone.
    """
    chosen = _resolve(match.ticket_id, lookup) if match.ticket_id is not None else None
    joined = joined_tickets(keys, lookup, match, now=now, reopen_window=reopen_window)
    if chosen is None or not joined:
        return None
    group = sorted((chosen, *joined), key=partial(_age, now=now))
    into: dict[int, int] = {}
    relations: list[Relation] = []
    for n, younger in enumerate(group):
        kin = [t for t in group[:n] if t.id not in into and _share_customer(t, younger)]
        target = next((t for t in kin if _why_apart(t, younger) is None), None)
        if target is not None:
            into[younger.id] = target.id
        elif kin:
            why = _why_apart(kin[0], younger)
            reason = f"<{keys.own_id}> joins #{kin[0].id} and #{younger.id}; not merged: {why}"
            relations.append(Relation(younger.id, kin[0].id, reason))
    if not into and not relations:
        return None
    landing = match
    survivor = into.get(chosen.id)
    if survivor is not None:
        snap = lookup.tickets[survivor]
        reason = f"{match.reason}; #{chosen.id} merged into #{survivor}"
        landing = _landing(
            snap,
            MatchedBy.HEADER,
            reason,
            now=now,
            reopen_window=reopen_window,
            may_reopen=may_reopen,
            sender=sender,
        )
    return ThreadJoin(landing, tuple(into.items()), tuple(relations))
