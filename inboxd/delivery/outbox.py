"""The outbox drain: the generic ``Drain`` with an SMTP deliverer.

Each round's mails go out over ONE SMTP connection (``SmtpSender``), each
result committed right after its send (``delivery.drain``). A row is marked
sent only after the SMTP server answered 250 to DATA; a crash between that 250
and our commit sends the SAME bytes (same Message-ID) once more, and mail
clients fold the duplicate. Before DATA's 250 the server has not taken the mail;
after our commit we never resend.

What is only the outbox's: recipients refused for good are noted on the ticket
and alerted even when the mail went to the others; recipients refused for now
get a new row (same bytes, same deadline) when the rest was accepted, or narrow
the row's retry when nothing was. A failed mail gets an event on the ticket and
``on_failed`` (it queues the alert) in the same transaction; ``on_failed`` is not
called for a failed alert, so alerts cannot breed alerts.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Protocol, Unpack

from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from inboxd.core.compose import kind_of
from inboxd.core.desk import events as ev
from inboxd.core.queued import IntentError
from inboxd.core.retry import next_attempt
from inboxd.db import outbox_queries as q
from inboxd.db import tickets
from inboxd.delivery.drain import Deliverer, Delivery, Drain, DrainReport, Options
from inboxd.delivery.smtp_send import SendResult
from inboxd.metrics import DELIVERIES_FAILED


class Sender(Protocol):
    def send(self, mail_from: str, rcpts: list[str], raw: bytes) -> SendResult: ...


SenderFactory = Callable[[], AbstractContextManager[Sender]]
FailureHook = Callable[[Connection, q.OutboxMail, str, datetime], None]
# a row held as intent -> the bytes to send (flows.queued_mail; IntentError: unwritable)
MailWriter = Callable[[q.OutboxMail], bytes]


def _no_writer(row: q.OutboxMail) -> bytes:
    raise IntentError("this drain has no writer for mail queued as intent")


@dataclass
class SmtpDeliverer(Deliverer[q.OutboxMail]):
    """Sends outbox rows through the senders ``sender_factory`` opens, one per round."""

    sender_factory: SenderFactory
    retry_for: float | timedelta  # a follow-up row keeps the mail's deadline
    rng: Callable[[], float]
    on_failed: FailureHook | None = None
    write: MailWriter = _no_writer

    @contextmanager
    def connect(self) -> Iterator[Callable[[q.OutboxMail], Delivery]]:
        with self.sender_factory() as sender:
            yield partial(self._send, sender)

    def deliver(self, row: q.OutboxMail) -> Delivery:
        with self.connect() as send:
            return send(row)

    def describe(self, row: q.OutboxMail) -> str:
        return f"msgid={row.message_id} kind={row.kind} ticket={row.ticket_id}"

    def _send(self, sender: Sender, mail: q.OutboxMail) -> Delivery:
        try:
            raw = self.write(mail) if mail.intent else mail.raw
        except IntentError as exc:
            return Delivery("permanent", f"cannot write the mail: {exc}")
        result = sender.send(mail.mail_from, list(mail.rcpts), raw)
        if result.ok:
            note = "; ".join(f"{r.rcpt}: {r.code} {r.detail}" for r in result.refused)
            after = partial(self._partly_sent, mail, raw, result) if result.refused else None
            return Delivery("ok", result.detail, note=note, record=after)
        if result.status == "temporary":
            after = partial(self._narrowed, mail, result) if result.refused else None
            return Delivery("temporary", result.detail, record=after)
        return Delivery("permanent", f"{result.code} {result.detail}".strip())

    def _partly_sent(
        self, mail: q.OutboxMail, raw: bytes, result: SendResult, conn: Connection, now: datetime
    ) -> None:
        """Sent to some: those who said "later" get a new row, same bytes, same deadline."""
        if result.retry_rcpts:
            nxt = next_attempt(1, now, self.rng(), self.retry_for, first_attempt_at=mail.created_at)
            if nxt is not None:
                q.enqueue(
                    conn,
                    ticket_id=mail.ticket_id,
                    kind=mail.kind,
                    message_id=mail.message_id,
                    mail_from=mail.mail_from,
                    rcpts=result.retry_rcpts,
                    raw=raw,
                    now=mail.created_at,
                    not_before=nxt,
                )
        self._note_refused(conn, mail, result, now)

    def _narrowed(
        self, mail: q.OutboxMail, result: SendResult, conn: Connection, now: datetime
    ) -> None:
        """Sent to none, retried: only to those who said "later"."""
        q.narrow_rcpts(conn, mail.id, result.retry_rcpts)
        self._note_refused(conn, mail, result, now)

    def _note_refused(
        self, conn: Connection, mail: q.OutboxMail, result: SendResult, now: datetime
    ) -> None:
        """Recipients refused for good: on the ticket, and alerted like a failure."""
        permanent = [r for r in result.refused if r.permanent]
        if not permanent:
            return
        detail = "; ".join(f"{r.rcpt}: {r.code} {r.detail}" for r in permanent)
        refused = ev.DeliveryRefused(
            at=now, outbox=mail.id, message_id=mail.message_id, refused=detail
        )
        self._tell(conn, mail, now, refused, detail)

    def failed(self, conn: Connection, row: q.OutboxMail, reason: str, now: datetime) -> None:
        DELIVERIES_FAILED.labels(row.kind).inc()
        failed = ev.DeliveryFailed(
            at=now, outbox=row.id, message_id=row.message_id, kind_=row.kind, reason=reason
        )
        self._tell(conn, row, now, failed, reason)

    def _tell(
        self, conn: Connection, mail: q.OutboxMail, now: datetime, event: ev.Event, why: str
    ) -> None:
        """An event on the mail's ticket, then the alert (unless the mail is an alert)."""
        if mail.ticket_id is not None:
            tickets.record(conn, mail.ticket_id, event)
        if self.on_failed is not None and kind_of(mail.kind).alert_on_failure:
            self.on_failed(conn, mail, why, now)


class OutboxDrain(Drain[q.OutboxMail]):
    """Delivers outbox rows over SMTP. ``run_once`` is what the scheduler calls."""

    def __init__(
        self,
        engine: Engine,
        sender_factory: SenderFactory,
        *,
        retry_for: float,
        on_failed: FailureHook | None = None,
        write: MailWriter = _no_writer,
        **options: Unpack[Options],
    ) -> None:
        rng = options.setdefault("rng", random.random)
        deliverer = SmtpDeliverer(sender_factory, retry_for, rng, on_failed, write)
        super().__init__(engine, q.QUEUE, deliverer, name="outbox", retry_for=retry_for, **options)


__all__ = [
    "DrainReport",
    "FailureHook",
    "MailWriter",
    "OutboxDrain",
    "Sender",
    "SenderFactory",
    "SmtpDeliverer",
]
