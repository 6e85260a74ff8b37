"""LMTP/SMTP inbound: an MTA delivers straight to inboxd (aiosmtpd).

RCPT is accepted only for configured support addresses (and their
``+token`` sub-addresses). DATA is stored through the pipeline in a worker
thread; the answer is 250 only after the transaction committed, and 451 (the
MTA retries) when it could not be stored. LMTP answers once per recipient
(RFC 2033), also when the mail is refused for its size; one mail for support@
and billing@ is stored once.

Lines of any length are taken (up to the size limit), as IMAP takes them: a
permanent 500 for a line over RFC 5321's 1000 octets bounced mail IMAP stored.
A mail with a header line longer than the parser keeps whole is held in
quarantine with the reason (``quarantine_to``) rather than stored cut.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, AnyStr

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession
from sqlalchemy.engine import Engine

from inboxd.core.parse import MAX_HEADER_VALUE
from inboxd.db import messages
from inboxd.ingest.pipeline import Outcome, Source, count_committed

log = logging.getLogger("inboxd.lmtp")

Ingest = Callable[[bytes, Source], Outcome]
# (raw, source, reason) -> the outcome: keeps a mail aside instead of storing it
Quarantine = Callable[[bytes, Source, str], Outcome]

_HEAD_END = re.compile(rb"\r?\n\r?\n")


def overlong_header(raw: bytes, limit: int = MAX_HEADER_VALUE) -> str | None:
    """Why ``raw`` must not be stored as parsed: a header line longer than ``limit``
    (the parser would keep only its first part), else None. One linear pass."""
    end = _HEAD_END.search(raw)
    head = raw[: end.start()] if end is not None else raw
    start = 0
    for number in range(1, head.count(b"\n") + 2):
        stop = head.find(b"\n", start)
        stop = len(head) if stop < 0 else stop
        if stop - start > limit:
            return f"header line {number} is {stop - start} bytes (over {limit}); held whole"
        start = stop + 1
    return None


def quarantine_to(
    engine: Engine, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> Quarantine:
    """Keep a mail in quarantine with the reason, in its own transaction."""

    def hold(raw: bytes, source: Source, reason: str) -> Outcome:
        arrived = time.time()
        with engine.begin() as conn:
            qid = messages.quarantine_raw(conn, raw, source, reason=reason, now=clock())
        outcome = Outcome("quarantined", reason=reason)
        count_committed(source.mailbox, [(outcome, arrived)])
        log.warning("quarantined id=%s source=%s reason=%s", qid, source.label, reason)
        return outcome

    return hold


def base_address(address: str) -> str:
    """``support+tok@d`` -> ``support@d``, lowercased."""
    local, _, domain = address.strip("<>").lower().rpartition("@")
    return f"{local.partition('+')[0]}@{domain}"


class InboundHandler:
    """aiosmtpd handler: ``mailboxes`` maps a support address to its mailbox name."""

    def __init__(
        self,
        mailboxes: dict[str, str],
        ingest: Ingest,
        *,
        lmtp: bool,
        quarantine: Quarantine | None = None,
    ) -> None:
        self.mailboxes = {a.lower(): n for a, n in mailboxes.items()}
        self.ingest = ingest
        self.lmtp = lmtp
        self.quarantine = quarantine  # None: an over-long header goes to ``ingest`` too

    async def handle_RCPT(
        self,
        server: SMTP,
        session: SmtpSession,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if base_address(address) not in self.mailboxes:
            return "550 5.1.1 No such support mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if isinstance(raw, str):  # pragma: no cover - decode_data is off
            raw = raw.encode("utf-8", "surrogateescape")
        mailbox = self.mailboxes[base_address(envelope.rcpt_tos[0])]
        kind = "lmtp" if self.lmtp else "smtp"
        loop = asyncio.get_running_loop()
        source = Source(kind, mailbox)
        held = overlong_header(raw) if self.quarantine is not None else None
        try:
            if held is not None and self.quarantine is not None:
                outcome = await loop.run_in_executor(None, self.quarantine, raw, source, held)
            else:
                outcome = await loop.run_in_executor(None, self.ingest, raw, source)
        except Exception:
            log.exception("store failed mailbox=%s size=%d", mailbox, len(raw))
            status = "451 4.3.0 Could not store the message, try again later"
        else:
            status = f"250 2.0.0 {outcome.status}"
            if outcome.ticket_id is not None:
                status += f" ticket {outcome.ticket_id}"
        if self.lmtp:
            return "\r\n".join([status] * len(envelope.rcpt_tos))
        return status


# Sessions at once: each may buffer a whole mail up to the size limit (its stream
# buffer a line as long, and copies of the mail while it is stored), so this times a
# small multiple of ``max_size`` bounds the listener's memory.
MAX_SESSIONS = 16


class _Gate:
    """Sessions open now (only the controller's loop thread counts them)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0


# aiosmtpd's answer to a line longer than its stream limit (then over the size limit)
_LINE_TOO_LONG = "500 Line too long"
_TOO_BIG = "552 5.3.4 Message too big for this server"


class _Capped:
    """Mixin: over the gate's limit a new session is answered 421 and closed.

    Also takes lines up to the whole size limit (aiosmtpd's ``line_length_limit``,
    which sizes its stream buffer too, is RFC 5321's 1001 by default), and after
    DATA's 354 repeats a one-line answer once per recipient in LMTP (RFC 2033 4.2:
    aiosmtpd answers a mail it refused in its DATA loop once, and the client hung
    waiting for the rest)."""

    gate: _Gate
    per_recipient = False
    _data_replies = 0  # -1: in DATA before the 354; n: the n replies the mail needs

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        size = kwargs.get("data_size_limit") or 0
        self.line_length_limit = max(1001, size + 3)  # '.'-stuffing and CRLF
        super().__init__(*args, **kwargs)

    async def smtp_DATA(self, arg: str) -> None:
        self._data_replies = -1
        try:
            await super().smtp_DATA(arg)  # type: ignore[misc]
        finally:
            self._data_replies = 0

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str) and self._data_replies:
            if self._data_replies == -1:
                if status.startswith("354"):
                    envelope = self.envelope  # type: ignore[attr-defined]
                    self._data_replies = len(envelope.rcpt_tos) if self.per_recipient else 1
            elif "\r\n" not in status:  # the handler's answer is one line per recipient
                if status.startswith(_LINE_TOO_LONG):  # a line over the whole size limit
                    status = _TOO_BIG  # type: ignore[assignment]
                status = "\r\n".join([status] * self._data_replies)  # type: ignore[assignment]
                self._data_replies = 0
        await super().push(status)  # type: ignore[misc]

    async def _handle_client(self) -> None:
        if self.gate.open >= self.gate.limit:
            log.warning("lmtp sessions at the limit (%d): 421 to a new one", self.gate.limit)
            await self.push("421 4.3.2 Too many sessions, try again later")  # type: ignore[attr-defined]
            self.transport.close()  # type: ignore[attr-defined]
            return
        self.gate.open += 1
        try:
            await super()._handle_client()  # type: ignore[misc]
        finally:
            self.gate.open -= 1


class _CappedLMTP(_Capped, LMTP):
    per_recipient = True


class _CappedSMTP(_Capped, SMTP):
    pass


class InboundController(Controller):
    """aiosmtpd Controller speaking LMTP or SMTP on its own loop thread, at most
    ``max_sessions`` sessions at once."""

    def __init__(
        self,
        handler: InboundHandler,
        host: str,
        port: int,
        max_size: int,
        *,
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        self._lmtp = handler.lmtp
        self._gate = _Gate(max_sessions)
        super().__init__(handler, hostname=host, port=port, data_size_limit=max_size)

    def factory(self) -> Any:
        cls = _CappedLMTP if self._lmtp else _CappedSMTP
        server = cls(self.handler, **self.SMTP_kwargs)
        server.gate = self._gate
        return server
