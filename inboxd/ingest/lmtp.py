"""LMTP/SMTP inbound: an MTA delivers straight to inboxd (aiosmtpd).

RCPT is accepted only for configured support addresses (and their
``+token`` sub-addresses). DATA is stored through the pipeline in a worker
thread; the answer is 250 only after the transaction committed, and 451 (the
MTA retries) when it could not be stored. LMTP answers once per recipient
(RFC 2033); one mail for support@ and billing@ is stored once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession

from inboxd.ingest.pipeline import Outcome, Source

log = logging.getLogger("inboxd.lmtp")

Ingest = Callable[[bytes, Source], Outcome]


def base_address(address: str) -> str:
    """``support+tok@d`` -> ``support@d``, lowercased."""
    local, _, domain = address.strip("<>").lower().rpartition("@")
    return f"{local.partition('+')[0]}@{domain}"


class InboundHandler:
    """aiosmtpd handler: ``mailboxes`` maps a support address to its mailbox name."""

    def __init__(self, mailboxes: dict[str, str], ingest: Ingest, *, lmtp: bool) -> None:
        self.mailboxes = {a.lower(): n for a, n in mailboxes.items()}
        self.ingest = ingest
        self.lmtp = lmtp

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
        try:
            outcome = await loop.run_in_executor(None, self.ingest, raw, Source(kind, mailbox))
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


# Sessions at once: each may buffer a whole mail up to the size limit (and copies of
# it while it is stored), so this times ``max_size`` bounds the listener's memory.
MAX_SESSIONS = 16


class _Gate:
    """Sessions open now (only the controller's loop thread counts them)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0


class _Capped:
    """Mixin: over the gate's limit a new session is answered 421 and closed."""

    gate: _Gate

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
    pass


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
