"""Append-only rows held until an ingest batch ends, then written one statement each.

An IMAP batch stores up to a few hundred mails in one transaction, and each
mail appends rows nothing in the batch reads back by key: its ticket events,
the outbox rows of its acknowledgement and notifications, the thread keys of
our own new Message-IDs (no mail can cite them before they are sent). Held
here, each kind is one ``executemany`` at the end of the batch instead of a
statement per row.

``batch(db)`` opens the hold for every ``Held`` kind; ``mark()`` and
``drop(marks)`` take back the rows of one mail whose savepoint rolled back.
Outside a batch (LMTP, the CLI, the scheduler) rows are written at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Connection

from inboxd.db.sql import DB, conn_of

Row = dict[str, Any]
Writer = Callable[[Connection, Sequence[Row]], None]


class Held:
    """One kind of append-only row; ``write`` writes a list of them in one statement."""

    def __init__(self, name: str, write: Writer) -> None:
        self.name = name
        self._write = write
        self._pending: ContextVar[list[Row] | None] = ContextVar(f"inboxd_{name}", default=None)
        _KINDS.append(self)

    def add(self, db: DB, rows: Sequence[Row]) -> None:
        """Hold ``rows`` for the batch, or write them now outside one."""
        pending = self._pending.get()
        if pending is not None:
            pending.extend(rows)
        elif rows:
            self._write(conn_of(db), rows)

    def held(self) -> Sequence[Row]:
        """The rows held so far in this batch (readers that must see them: the caps)."""
        return self._pending.get() or ()

    @contextmanager
    def _batch(self, db: DB) -> Iterator[None]:
        rows: list[Row] = []
        token = self._pending.set(rows)
        try:
            yield
        finally:
            self._pending.reset(token)
        if rows:  # not reached when the body raised: its transaction is lost
            self._write(conn_of(db), rows)


_KINDS: list[Held] = []
_MEMOS: ContextVar[dict[str, dict[Any, Any]] | None] = ContextVar("inboxd_memos", default=None)


@contextmanager
def batch(db: DB) -> Iterator[None]:
    """Hold every kind's rows inside; write them at the end, in the caller's
    transaction (no held row refers to another, so their order does not matter)."""
    token = _MEMOS.set({})
    try:
        with ExitStack() as stack:
            for kind in _KINDS:
                stack.enter_context(kind._batch(db))
            yield
    finally:
        _MEMOS.reset(token)


def in_batch() -> bool:
    """Whether this thread is inside an ingest batch (its per-mail lines go to DEBUG)."""
    return _MEMOS.get() is not None


def memo(name: str) -> dict[Any, Any] | None:
    """A dict that lives as long as this batch's transaction (None outside a batch):
    for what a batch reads many times and cannot change, such as an agent's number.
    Gone with the batch, so a rolled-back batch leaves nothing remembered."""
    memos = _MEMOS.get()
    return memos.setdefault(name, {}) if memos is not None else None


def mark() -> tuple[int, ...]:
    """Where each kind's held rows end now (before a mail's savepoint)."""
    return tuple(len(kind.held()) for kind in _KINDS)


def drop(marks: tuple[int, ...]) -> None:
    """Forget the rows held since ``marks`` (their mail was rolled back), and every
    memo: one may hold what the rolled-back mail wrote (a new ticket's id, which
    the next new ticket gets again, or the held rows it indexed)."""
    for kind, at in zip(_KINDS, marks, strict=False):
        pending = kind._pending.get()
        if pending is not None:
            del pending[at:]
    memos = _MEMOS.get()
    if memos is not None:
        memos.clear()
