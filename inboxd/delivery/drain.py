"""One drain for every queue of side effects: claim a round, deliver, settle each row.

A round: one short transaction claims up to ``max_per_run`` due rows under a
lease (``db.row_queue``); the deliverer opens what the round shares (an SMTP
connection) and delivers the rows ONE at a time, and each result is committed
in its own transaction right after its delivery, before the next row.

Crash safety. A row is settled only after the remote answered. If the process
dies (or the connection drops) between that answer and our commit, the row is
still ``sending``; it becomes due again when its lease ends or at the next
start (``recover``), and the same row is delivered once more. Only one row is
in flight at a time, so a crash costs at most one duplicate; a crash at any
other point loses nothing and duplicates nothing.

Results: ``ok`` -> ``sent``. ``temporary`` -> due again after ``core.retry``'s
backoff (or exactly the remote's ``retry_after``, never past the deadline) until
``retry_for`` after the row was queued, then ``failed``. ``permanent`` ->
``failed`` at once. On ``failed`` the deliverer's ``failed`` hook runs in the
same transaction (an event on the ticket, an alert). A deliverer that crashes
is a temporary failure, so a bug never strands a row.

The thread: ``run`` recovers, then runs a round every ``interval`` seconds or
as soon as ``wake`` is called; a full round goes again at once. A database or
remote failure is logged and retried next round, so the thread never dies;
``stop`` ends it after the row in flight, and the rows claimed but not yet
delivered are handed back (due now), not left to wait out their lease.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Generic, Literal, Protocol, TypedDict, TypeVar, Unpack

from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from inboxd.core.retry import next_attempt
from inboxd.db.row_queue import QueuedRow, RowQueue

T = TypeVar("T", bound=QueuedRow)
Row_contra = TypeVar("Row_contra", bound=QueuedRow, contravariant=True)

Status = Literal["ok", "temporary", "permanent"]
# More a delivery must record (a follow-up row, an event) in the transaction
# that settles it, when it is sent or rescheduled; not when it fails.
Record = Callable[[Connection, datetime], None]


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the remote said about one row."""

    status: Status
    detail: str = ""  # not ok: why (kept as the row's last_error); ok: for the log
    note: str = ""  # ok: what went partly wrong (kept as the sent row's last_error)
    retry_after: float | None = None  # temporary: the remote said when (seconds)
    record: Record | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class Options(TypedDict, total=False):
    """A drain's knobs, so that a drain for one queue passes them on as given."""

    max_per_run: int  # rows claimed per round (100)
    clock: Callable[[], datetime]
    rng: Callable[[], float]  # jitter of the backoff, in [0, 1]
    lease: timedelta  # how long a claim owns its rows (10 min)
    should_stop: Callable[[], bool]  # True once the daemon is stopping


@dataclass
class DrainReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    released: int = 0  # claimed but handed back unsent (stop requested)
    errors: list[str] = field(default_factory=list)


class Deliverer(Protocol[Row_contra]):
    """How one kind of row leaves the house; the drain owns when and what is recorded."""

    def deliver(self, row: Row_contra) -> Delivery:
        """Deliver one row and classify the outcome (raising counts as temporary)."""
        ...

    def connect(self) -> AbstractContextManager[Callable[[Row_contra], Delivery]]:
        """What a round shares (a connection): yields the function that delivers one row.

        The default shares nothing: each row is ``deliver``-ed on its own.
        """
        return _alone(self.deliver)

    def describe(self, row: Row_contra) -> str:
        """The row in a log line (``msgid=... kind=...``)."""
        ...

    def failed(self, conn: Connection, row: Row_contra, reason: str, now: datetime) -> None:
        """The row failed for good; runs in the transaction that marks it failed."""
        ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _never() -> bool:
    return False


@contextmanager
def _alone(deliver: Callable[[T], Delivery]) -> Iterator[Callable[[T], Delivery]]:
    yield deliver


class Drain(Generic[T]):
    """Delivers the rows of ``queue`` with ``deliverer``; ``run_once`` is one round."""

    def __init__(
        self,
        engine: Engine,
        queue: RowQueue[T],
        deliverer: Deliverer[T],
        *,
        name: str,
        retry_for: float | timedelta,
        **options: Unpack[Options],
    ) -> None:
        self.engine = engine
        self.queue = queue
        self.deliverer = deliverer
        self.name = name
        self.retry_for = retry_for
        self.max_per_run = options.get("max_per_run", 100)
        self.clock = options.get("clock", _utcnow)
        self.rng = options.get("rng", random.random)
        self.lease = options.get("lease", timedelta(minutes=10))
        self.should_stop = options.get("should_stop", _never)
        self.log = logging.getLogger(f"inboxd.{name}")
        self._wake = threading.Event()

    # --- the thread ----------------------------------------------------------------------

    def wake(self) -> None:
        """Run now (rows were committed, or the daemon is stopping)."""
        self._wake.set()

    def run(self, stop: threading.Event, *, interval: float = 5.0) -> None:
        self.should_stop = stop.is_set
        try:
            self.recover()
        except Exception:
            self.log.exception(
                "%s recover failed; rows left sending wait for their lease", self.name
            )
        while not stop.is_set():
            full = False
            try:
                report = self.run_once()
                full = report.claimed >= self.max_per_run and not report.released
            except Exception:
                self.log.exception("%s run failed; retrying in %.0f s", self.name, interval)
            if not full:
                self._wake.wait(interval)
            self._wake.clear()

    def recover(self) -> int:
        """At start: rows a dead process left in ``sending`` are due now.

        Only on SQLite, whose file has one daemon: on PostgreSQL other daemons may
        be sending those very rows this moment, and making them due would send
        them twice; there a dead daemon's rows go out when their lease ends (the
        claim takes ``sending`` rows whose lease expired)."""
        if self.engine.dialect.name != "sqlite":
            return 0
        with self.engine.begin() as conn:
            count = self.queue.release_stale(conn, now=self.clock())
        if count:
            self.log.warning(
                "%s recovered=%d rows left sending by a previous run", self.name, count
            )
        return count

    # --- one round -----------------------------------------------------------------------

    def run_once(self) -> DrainReport:
        report = DrainReport()
        now = self.clock()
        with self.engine.begin() as conn:
            rows = self.queue.claim(
                conn, now=now, lease_until=now + self.lease, limit=self.max_per_run
            )
        report.claimed = len(rows)
        if not rows:
            return report
        pending = list(rows)
        try:
            with self.deliverer.connect() as deliver:
                while pending and not self.should_stop():
                    row = pending.pop(0)
                    self._settle(row, self._deliver(deliver, row), report)
        finally:
            if pending:
                self._release(pending)
                report.released = len(pending)
        return report

    def _deliver(self, deliver: Callable[[T], Delivery], row: T) -> Delivery:
        try:
            return deliver(row)
        except Exception as exc:  # a deliverer bug must not strand the row
            self.log.exception("%s delivery crashed id=%s", self.name, row.id)
            return Delivery("temporary", f"delivery crashed: {exc!r}")

    def _release(self, rows: list[T]) -> None:
        with self.engine.begin() as conn:
            for row in rows:
                self.queue.reschedule(
                    conn, row.id, next_attempt_at=self.clock(), error="not sent: stopped"
                )

    # --- one result ----------------------------------------------------------------------

    def _settle(self, row: T, delivery: Delivery, report: DrainReport) -> None:
        now = self.clock()
        about = self.deliverer.describe(row)
        with self.engine.begin() as conn:
            if delivery.ok:
                self.queue.mark_sent(conn, row.id, now=now, note=delivery.note)
                self.log.info("%s sent id=%s %s %s", self.name, row.id, about, delivery.detail)
                if delivery.record is not None:
                    delivery.record(conn, now)
                report.sent += 1
                return
            if delivery.status == "temporary":
                nxt = self._next(row, delivery, now)
                if nxt is not None:
                    self.queue.reschedule(conn, row.id, next_attempt_at=nxt, error=delivery.detail)
                    if delivery.record is not None:
                        delivery.record(conn, now)
                    report.retried += 1
                    self.log.info(
                        "%s retry id=%s %s attempt=%d next=%s error=%s",
                        self.name,
                        row.id,
                        about,
                        row.attempts,
                        nxt.isoformat(),
                        delivery.detail,
                    )
                    return
                reason = f"gave up after {row.attempts} attempts: {delivery.detail}"
            else:
                reason = delivery.detail
            self.queue.mark_failed(conn, row.id, error=reason)
            self.log.warning("%s failed id=%s %s reason=%s", self.name, row.id, about, reason)
            self.deliverer.failed(conn, row, reason, now)
            report.failed += 1
            report.errors.append(f"{row.id}: {reason}")

    def _next(self, row: T, delivery: Delivery, now: datetime) -> datetime | None:
        """Backoff until ``retry_for`` after queueing; the remote's Retry-After when it gave one."""
        nxt = next_attempt(
            row.attempts, now, self.rng(), self.retry_for, first_attempt_at=row.created_at
        )
        if nxt is not None and delivery.retry_after is not None:
            window = self.retry_for
            if not isinstance(window, timedelta):
                window = timedelta(seconds=window)
            nxt = min(now + timedelta(seconds=delivery.retry_after), row.created_at + window)
        return nxt


__all__ = ["Deliverer", "Delivery", "Drain", "DrainReport", "Options", "Status"]
