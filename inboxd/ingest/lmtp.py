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


class InboundController(Controller):
    """aiosmtpd Controller speaking LMTP or SMTP on its own loop thread."""

    def __init__(self, handler: InboundHandler, host: str, port: int, max_size: int) -> None:
        self._lmtp = handler.lmtp
        super().__init__(handler, hostname=host, port=port, data_size_limit=max_size)

    def factory(self) -> Any:
        cls = LMTP if self._lmtp else SMTP
        return cls(self.handler, **self.SMTP_kwargs)
