"""Hand rendered mail to the SMTP relay; say whether to retry.

A thin synchronous layer over smtplib, used by the outbox drain. One
``SmtpSender`` is opened per drain run (context manager) and reuses one
connection for all its mails; a connection that went stale is replaced before
the next mail (a NOOP probe), never in the middle of one, so a failure cannot
make us send a mail twice within a run.

Classification (what the outbox does next):

- ``ok``: the server took the mail for at least one recipient. Recipients it
  refused are listed in ``refused``; ``retry_rcpts`` are those refused with 4xx.
- ``temporary``: try again later. 4xx replies, and every failure of the
  connection itself: refused/timed-out/dropped connections, TLS and login
  failures. Login and TLS failures are configuration trouble, not a verdict on
  this mail: marking hundreds of mails failed because a password expired would
  lose them; retrying keeps them until the admin fixes it (retry_for bounds it).
- ``permanent``: a 5xx reply to MAIL FROM, to every RCPT, or to DATA.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

from inboxd.config import SmtpConfig
from inboxd.core.compose import needs_smtputf8

log = logging.getLogger("inboxd.outbox")

Status = Literal["ok", "temporary", "permanent"]


@dataclass(frozen=True, slots=True)
class Refusal:
    rcpt: str
    code: int
    detail: str

    @property
    def permanent(self) -> bool:
        return 500 <= self.code < 600


@dataclass(frozen=True, slots=True)
class SendResult:
    status: Status
    code: int  # the deciding SMTP reply code; 0 when there was no reply (connection)
    detail: str
    refused: tuple[Refusal, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def retry_rcpts(self) -> tuple[str, ...]:
        """Recipients refused temporarily: the ones a retry should go to."""
        return tuple(r.rcpt for r in self.refused if not r.permanent)


def _text(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return " ".join(text.split())[:500]


def _by_code(code: int) -> Status:
    return "permanent" if 500 <= code < 600 else "temporary"


def _refusals(refused: dict[str, tuple[int, bytes]]) -> tuple[Refusal, ...]:
    return tuple(Refusal(rcpt, code, _text(msg)) for rcpt, (code, msg) in refused.items())


class SmtpSender:
    """One SMTP session for a drain run. Use as a context manager."""

    def __init__(
        self,
        config: SmtpConfig,
        password: str | None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        self.config = config
        self._password = password
        self._ssl_context = ssl_context
        self._local_hostname = local_hostname
        self._conn: smtplib.SMTP | None = None
        self.connections = 0  # opened so far: lets tests and logs see reuse

    def __enter__(self) -> SmtpSender:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            conn.close()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _context(self) -> ssl.SSLContext:
        return self._ssl_context or ssl.create_default_context()

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        conn: smtplib.SMTP
        if cfg.security == "tls":
            conn = smtplib.SMTP_SSL(
                cfg.host,
                cfg.port,
                local_hostname=self._local_hostname,
                timeout=cfg.timeout,
                context=self._context(),
            )
        else:
            conn = smtplib.SMTP(
                cfg.host, cfg.port, local_hostname=self._local_hostname, timeout=cfg.timeout
            )
        try:
            conn.ehlo()
            if cfg.security == "starttls":
                conn.starttls(context=self._context())
                conn.ehlo()
            if cfg.username:
                conn.login(cfg.username, self._password or "")
        except BaseException:
            conn.close()
            raise
        self.connections += 1
        return conn

    def _session(self) -> smtplib.SMTP:
        """The open connection, probed with NOOP; a fresh one if it went stale."""
        if self._conn is not None:
            try:
                code, _ = self._conn.noop()
                if code == 250:
                    return self._conn
            except (smtplib.SMTPException, OSError):
                pass
            self._drop()
        self._conn = self._connect()
        return self._conn

    def send(self, mail_from: str, rcpts: list[str], raw: bytes) -> SendResult:
        """Deliver ``raw`` (CRLF, 7-bit) to ``rcpts``; ``mail_from`` "" sends MAIL FROM:<>.
        An envelope with a non-ASCII local part goes with SMTPUTF8, or fails for good
        when the server lacks it (retrying would not help)."""
        if not rcpts:
            return SendResult("permanent", 0, "no recipients")
        try:
            conn = self._session()
        except smtplib.SMTPAuthenticationError as exc:
            return SendResult("temporary", exc.smtp_code, f"login failed: {_text(exc.smtp_error)}")
        except smtplib.SMTPResponseException as exc:
            self._drop()
            return SendResult("temporary", exc.smtp_code, f"connect: {_text(exc.smtp_error)}")
        except (smtplib.SMTPException, OSError) as exc:  # refused, timeout, TLS, no STARTTLS
            self._drop()
            return SendResult("temporary", 0, f"connect: {type(exc).__name__}: {exc}")
        options: list[str] = []
        if needs_smtputf8(mail_from, rcpts):
            if not conn.has_extn("smtputf8"):
                return SendResult(
                    "permanent",
                    0,
                    "the address needs SMTPUTF8 (non-ASCII local part) "
                    "and the SMTP server does not offer it",
                )
            options = ["SMTPUTF8", *(["BODY=8BITMIME"] if conn.has_extn("8bitmime") else [])]
        try:
            refused = conn.sendmail(mail_from, rcpts, raw, mail_options=options)
        except smtplib.SMTPRecipientsRefused as exc:
            refusals = _refusals(exc.recipients)
            status: Status = "permanent" if all(r.permanent for r in refusals) else "temporary"
            first = refusals[0] if refusals else Refusal("", 0, "")
            return SendResult(status, first.code, "all recipients refused", refusals)
        except smtplib.SMTPSenderRefused as exc:
            return SendResult(
                _by_code(exc.smtp_code), exc.smtp_code, f"MAIL FROM: {_text(exc.smtp_error)}"
            )
        except smtplib.SMTPDataError as exc:
            return SendResult(
                _by_code(exc.smtp_code), exc.smtp_code, f"DATA: {_text(exc.smtp_error)}"
            )
        except smtplib.SMTPServerDisconnected as exc:
            # The mail may or may not have been taken: the one duplicate the outbox allows.
            self._drop()
            return SendResult("temporary", 0, f"disconnected: {exc}")
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code == 421:
                self._drop()
            return SendResult(_by_code(exc.smtp_code), exc.smtp_code, _text(exc.smtp_error))
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            return SendResult("temporary", 0, f"{type(exc).__name__}: {exc}")
        refusals = _refusals(refused)
        detail = "accepted" if not refusals else f"accepted, {len(refusals)} recipient(s) refused"
        return SendResult("ok", 250, detail, refusals)
