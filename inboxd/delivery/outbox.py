"""The outbox drain: claim due rows, send them, record what happened.

Each run: one short transaction claims up to ``max_per_run`` due rows (a lease,
see ``db.outbox_queries``); then the mails go out over ONE SMTP connection, and
each result is committed right after its send, before the next mail.

Crash safety and the duplicate window. A row is marked sent only after the SMTP
server answered 250 to DATA. If the process dies (or the connection drops)
between that 250 and our commit, the row is still ``sending``; it becomes due
again when its lease ends or at the next start (``recover``), and the SAME bytes
(same Message-ID) go out once more. Only one mail is in flight at a time, so a
crash costs at most one duplicate, and mail clients fold it (same Message-ID).
A crash at any other point loses nothing and duplicates nothing: before DATA's
250 the server has not taken the mail; after our commit we never resend.

Temporary failures retry with ``core.retry`` (exponential backoff with jitter)
until ``retry_for`` after the row was queued; then, or on a permanent failure,
the row is ``failed``, an event goes on the ticket and ``on_failed`` is called
in the same transaction (it queues the alert; it is not called for a failed
alert, so alerts cannot breed alerts).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from inboxd.core.retry import next_attempt
from inboxd.db import outbox_queries as q
from inboxd.db import repo
from inboxd.delivery.drainloop import DrainLoop
from inboxd.delivery.smtp_send import SendResult

log = logging.getLogger("inboxd.outbox")

# Kinds whose failure is not alerted about again (they ARE the alerts).
_NO_ALERT_KINDS = frozenset({"bounce_alert", "command_result", "note_ack"})


class Sender(Protocol):
    def send(self, mail_from: str, rcpts: list[str], raw: bytes) -> SendResult: ...


SenderFactory = Callable[[], AbstractContextManager[Sender]]
FailureHook = Callable[[Connection, q.OutboxMail, str, datetime], None]


@dataclass
class DrainReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    released: int = 0  # claimed but handed back unsent (stop requested)
    errors: list[str] = field(default_factory=list)


class OutboxDrain(DrainLoop):
    """Delivers outbox rows. ``run_once`` is what the scheduler calls."""

    name = "outbox"

    def __init__(
        self,
        engine: Engine,
        sender_factory: SenderFactory,
        *,
        retry_for: float,
        max_per_run: int = 100,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: Callable[[], float] = random.random,
        lease: timedelta = timedelta(minutes=10),
        on_failed: FailureHook | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        super().__init__()
        self.engine = engine
        self.sender_factory = sender_factory
        self.retry_for = retry_for
        self.max_per_run = max_per_run
        self.clock = clock
        self.rng = rng
        self.lease = lease
        self.on_failed = on_failed
        self.should_stop = should_stop

    def recover(self) -> int:
        """At start: rows a dead process left in ``sending`` are due now."""
        with self.engine.begin() as conn:
            count = q.release_stale(conn, now=self.clock())
        if count:
            log.warning("outbox recovered=%d rows left sending by a previous run", count)
        return count

    def run_once(self) -> DrainReport:
        report = DrainReport()
        now = self.clock()
        with self.engine.begin() as conn:
            mails = q.claim(conn, now=now, lease_until=now + self.lease, limit=self.max_per_run)
        report.claimed = len(mails)
        if not mails:
            return report
        pending = list(mails)
        try:
            with self.sender_factory() as sender:
                while pending:
                    if self.should_stop():
                        break
                    mail = pending.pop(0)
                    try:
                        result = sender.send(mail.mail_from, list(mail.rcpts), mail.raw)
                    except Exception as exc:  # a sender bug must not strand the row
                        log.exception("outbox send crashed id=%s", mail.id)
                        result = SendResult("temporary", 0, f"sender error: {exc!r}")
                    self._settle(mail, result, report)
        finally:
            if pending:
                with self.engine.begin() as conn:
                    for mail in pending:
                        q.reschedule(
                            conn, mail.id, next_attempt_at=self.clock(), error="not sent: stopped"
                        )
                report.released = len(pending)
        return report

    # --- one result --------------------------------------------------------------------

    def _settle(self, mail: q.OutboxMail, result: SendResult, report: DrainReport) -> None:
        now = self.clock()
        with self.engine.begin() as conn:
            if result.ok:
                self._ok(conn, mail, result, now)
                report.sent += 1
                return
            if result.status == "temporary":
                nxt = next_attempt(
                    mail.attempts,
                    now,
                    self.rng(),
                    self.retry_for,
                    first_attempt_at=mail.created_at,
                )
                if nxt is not None:
                    rcpts = result.retry_rcpts if result.refused else None
                    q.reschedule(
                        conn, mail.id, next_attempt_at=nxt, error=result.detail, rcpts=rcpts
                    )
                    self._note_refused(conn, mail, result, now)
                    report.retried += 1
                    log.info(
                        "outbox retry id=%s msgid=%s attempt=%d next=%s code=%s error=%s",
                        mail.id,
                        mail.message_id,
                        mail.attempts,
                        nxt.isoformat(),
                        result.code,
                        result.detail,
                    )
                    return
                reason = f"gave up after {mail.attempts} attempts: {result.detail}"
            else:
                reason = f"{result.code} {result.detail}".strip()
            self._fail(conn, mail, reason, now)
            report.failed += 1
            report.errors.append(f"{mail.id}: {reason}")

    def _ok(self, conn: Connection, mail: q.OutboxMail, result: SendResult, now: datetime) -> None:
        note = "; ".join(f"{r.rcpt}: {r.code} {r.detail}" for r in result.refused)
        q.mark_sent(conn, mail.id, now=now, note=note)
        log.info("outbox sent id=%s msgid=%s kind=%s", mail.id, mail.message_id, mail.kind)
        if result.retry_rcpts:
            # some recipients said "later": a new row for them, same bytes, same deadline
            nxt = next_attempt(1, now, self.rng(), self.retry_for, first_attempt_at=mail.created_at)
            if nxt is not None:
                q.enqueue(
                    conn,
                    ticket_id=mail.ticket_id,
                    kind=mail.kind,
                    message_id=mail.message_id,
                    mail_from=mail.mail_from,
                    rcpts=result.retry_rcpts,
                    raw=mail.raw,
                    now=mail.created_at,
                    not_before=nxt,
                )
        self._note_refused(conn, mail, result, now)

    def _note_refused(
        self, conn: Connection, mail: q.OutboxMail, result: SendResult, now: datetime
    ) -> None:
        """Recipients refused for good: on the ticket, and alerted like a failure."""
        permanent = [r for r in result.refused if r.permanent]
        if not permanent:
            return
        detail = "; ".join(f"{r.rcpt}: {r.code} {r.detail}" for r in permanent)
        if mail.ticket_id is not None:
            repo.add_event(
                conn,
                mail.ticket_id,
                now,
                "system",
                "delivery_refused",
                {"outbox": mail.id, "message_id": mail.message_id, "refused": detail},
            )
        if self.on_failed is not None and mail.kind not in _NO_ALERT_KINDS:
            self.on_failed(conn, mail, detail, now)

    def _fail(self, conn: Connection, mail: q.OutboxMail, reason: str, now: datetime) -> None:
        q.mark_failed(conn, mail.id, error=reason)
        log.warning(
            "outbox failed id=%s msgid=%s kind=%s ticket=%s reason=%s",
            mail.id,
            mail.message_id,
            mail.kind,
            mail.ticket_id,
            reason,
        )
        if mail.ticket_id is not None:
            repo.add_event(
                conn,
                mail.ticket_id,
                now,
                "system",
                "delivery_failed",
                {
                    "outbox": mail.id,
                    "message_id": mail.message_id,
                    "kind": mail.kind,
                    "reason": reason,
                },
            )
        if self.on_failed is not None and mail.kind not in _NO_ALERT_KINDS:
            self.on_failed(conn, mail, reason, now)
