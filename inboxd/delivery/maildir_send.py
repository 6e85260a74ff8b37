"""Deliver outbound mail into a local Maildir instead of an SMTP relay.

For the demo and for trying inboxd out: every acknowledgement, notification
and relayed reply appears at once as a file a person can open
(``var/sent/new/*.eml``), with no mail server to run. Each file is the mail as
it would go over SMTP, preceded by ``Return-Path`` and ``X-Inboxd-Envelope-To``
lines naming the envelope. Files are written to ``tmp/`` and renamed into
``new/``, as the Maildir convention asks, so a reader never sees half a mail.
"""

from __future__ import annotations

import os
import socket
import time
from itertools import count
from pathlib import Path
from types import TracebackType

from inboxd.delivery.smtp_send import SendResult

_sequence = count(1)


class MaildirSender:
    """Has the shape of ``SmtpSender``: a context manager with ``send``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> MaildirSender:
        for sub in ("tmp", "new", "cur"):
            (self.path / sub).mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def send(self, mail_from: str, rcpts: list[str], raw: bytes) -> SendResult:
        if not rcpts:
            return SendResult("permanent", 0, "no recipients")
        envelope = f"Return-Path: <{mail_from}>\r\nX-Inboxd-Envelope-To: {', '.join(rcpts)}\r\n"
        name = f"{time.time_ns()}.{os.getpid()}_{next(_sequence)}.{socket.gethostname()}.eml"
        tmp = self.path / "tmp" / name
        try:
            with open(tmp, "wb") as fh:
                fh.write(envelope.encode("ascii", "replace") + raw)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path / "new" / name)
        except OSError as exc:  # a full disk or a missing mount: retried, not lost
            return SendResult("temporary", 0, f"maildir {self.path}: {exc}")
        return SendResult("ok", 250, f"written to {self.path / 'new' / name}")
