"""A daemon's lease on one mailbox: several daemons on one database, one fetcher each.

Without it two daemons would fetch the same folder, and the slower one's
checkpoint could be committed after the faster one's. The fetcher takes the
lease before it connects (``acquire`` waits while another daemon holds it),
renews it from its loop (``keep``: IDLE and poll slices, each sync) and in each
batch's transaction (``confirm``: a daemon that lost it commits nothing), and
gives it up when it stops. Renewal comes from the fetcher's own loop, not a
thread of its own, so a fetcher that hangs loses its mailbox too.

The expiry is compared with the daemons' clocks: keep the hosts in NTP sync,
well inside the lease period.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from inboxd.db import leases

_OWNER: dict[int, str] = {}


def daemon_owner() -> str:
    """``host:pid:random``, one per process: the random part tells a restarted daemon
    that got the same pid from the one that died."""
    pid = os.getpid()
    if pid not in _OWNER:
        _OWNER[pid] = f"{socket.gethostname()}:{pid}:{secrets.token_hex(4)}"
    return _OWNER[pid]


class LeaseLost(Exception):
    """Another daemon holds the mailbox now: stop fetching it, commit nothing more."""


class MailboxLease:
    """One mailbox's lease as one daemon's fetcher sees it (used from that thread only)."""

    def __init__(
        self,
        engine: Engine,
        mailbox: str,
        *,
        seconds: float,
        owner: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        log: logging.Logger | None = None,
    ) -> None:
        self.engine = engine
        self.mailbox = mailbox
        self.owner = owner or daemon_owner()
        self.period = timedelta(seconds=seconds)
        self._clock = clock
        self.log = log or logging.getLogger("inboxd.imap")
        self._renewed = -1e18  # monotonic time of the last renewal
        self.held = False

    @property
    def renew_every(self) -> float:
        """Renew after a third of the period: two renewals may fail before it expires."""
        return self.period.total_seconds() / 3

    def acquire(
        self, stop: threading.Event, on_held: Callable[[str], object] | None = None
    ) -> bool:
        """Wait until this daemon holds the lease (True) or ``stop`` is set (False).

        Each wait ends at the holder's expiry (or after a third of the period, to
        see a renewal or a release), so a dead holder's mailbox is taken within one
        period of its last renewal. ``on_held`` is told each new holder met while
        waiting. A database error propagates (the fetcher backs off).
        """
        seen: str | None = None
        while not stop.is_set():
            if self._take():
                self.log.info(f"lease_taken mailbox={self.mailbox} owner={self.owner}")
                return True
            with self.engine.connect() as conn:
                found = leases.holder(conn, self.mailbox)
            wait = self.renew_every
            if found is not None:
                if found.owner != seen:
                    seen = found.owner
                    if on_held is not None and found.owner != self.owner:
                        on_held(found.owner)
                    self.log.info(
                        f"lease_held mailbox={self.mailbox} owner={found.owner}"
                        f" until={found.expires_at.isoformat()}"
                    )
                left = (found.expires_at - self._clock()).total_seconds()
                wait = min(wait, max(left, 0.0) + 0.05)
            stop.wait(max(wait, 0.05))
        return False

    def keep(self) -> None:
        """Renew when a third of the period has passed; LeaseLost when it changed hands."""
        if time.monotonic() - self._renewed < self.renew_every:
            return
        if not self._take():
            self.held = False
            raise LeaseLost(f"mailbox {self.mailbox}: lease taken by another daemon")

    def confirm(self, db: Connection) -> None:
        """In a batch's transaction, before anything is written: renew the lease and lock
        it until the commit, or raise LeaseLost so nothing of the batch is committed."""
        if not leases.confirm(db, self.mailbox, self.owner, self._clock(), self.period):
            self.held = False
            raise LeaseLost(f"mailbox {self.mailbox}: lease lost before the batch commit")
        self._renewed = time.monotonic()

    def release(self) -> None:
        """Give the lease up (a clean stop), so another daemon need not wait for expiry."""
        if not self.held:
            return
        self.held = False
        try:
            with self.engine.begin() as conn:
                leases.release(conn, self.mailbox, self.owner)
        except Exception as exc:  # the lease expires by itself
            self.log.warning(f"lease_release_failed mailbox={self.mailbox} error={exc!r}")
            return
        self.log.info(f"lease_released mailbox={self.mailbox} owner={self.owner}")

    def _take(self) -> bool:
        with self.engine.begin() as conn:
            taken = leases.take(conn, self.mailbox, self.owner, self._clock(), self.period)
        if taken:
            self._renewed = time.monotonic()
        self.held = taken
        return taken
