"""An in-process SMTP server (aiosmtpd) on 127.0.0.1, port chosen by the kernel.

``SmtpServer`` captures every accepted mail and can be told to answer MAIL,
RCPT or DATA with a given reply (``451 4.3.0 try later``, ``550 5.1.1 no such
user``), per recipient if needed, so tests exercise real smtplib error paths.
Binding port 0 (instead of "find a free port, then bind it") cannot race with
other tests.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import ipaddress
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Captured:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    peer: tuple[str, int]
    mail_options: list[str] = field(default_factory=list)


@dataclass
class Behaviour:
    """Replies to give instead of 250; None means accept."""

    mail: str | None = None
    rcpt: dict[str, str] = field(default_factory=dict)  # address -> reply
    rcpt_default: str | None = None
    data: str | None = None
    drop_after_data: bool = False  # accept the mail, then cut the connection: no 250
    delay: float = 0.0  # seconds between taking the mail and answering 250


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.server.behaviour.mail:
            return self.server.behaviour.mail
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        behaviour = self.server.behaviour
        reply = behaviour.rcpt.get(address.lower(), behaviour.rcpt_default)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        behaviour = self.server.behaviour
        if behaviour.data:
            return behaviour.data
        with self.server.lock:
            self.server.captured.append(
                Captured(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    envelope.content,
                    session.peer,
                    list(envelope.mail_options),
                )
            )
        if behaviour.delay:
            await asyncio.sleep(behaviour.delay)
        if behaviour.drop_after_data:
            server.transport.close()
            return "250 OK"  # never reaches the client
        return "250 OK"


class _Controller(Controller):
    """Controller that works with port 0: the self-check uses the real port."""

    def _trigger_server(self) -> None:
        server = self.server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class SmtpServer:
    def __init__(
        self,
        *,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        require_starttls: bool = False,
        users: dict[str, str] | None = None,
        smtputf8: bool = True,  # aiosmtpd's Controller offers SMTPUTF8 unless told not to
    ) -> None:
        self.captured: list[Captured] = []
        self.behaviour = Behaviour()
        self.lock = threading.Lock()
        self.users = users
        kwargs: dict[str, Any] = {}
        if implicit_tls:
            kwargs["ssl_context"] = tls_context
        elif tls_context is not None:
            kwargs["tls_context"] = tls_context
            kwargs["require_starttls"] = require_starttls
        kwargs["enable_SMTPUTF8"] = smtputf8
        if users is not None:
            kwargs["authenticator"] = self._authenticate
            kwargs["auth_require_tls"] = False
            kwargs["auth_required"] = True
        self.controller = _Controller(_Handler(self), hostname="127.0.0.1", port=0, **kwargs)

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword) and self.users is not None:
            user, password = data.login.decode(), data.password.decode()
            if self.users.get(user) == password:
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        """Stop listening; a second call (test, then fixture teardown) is a no-op."""
        if self.controller._thread is not None:
            self.controller.stop()

    def peers(self) -> set[tuple[str, int]]:
        with self.lock:
            return {c.peer for c in self.captured}


def self_signed_context(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting it) for 127.0.0.1, made on the fly."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = _dt.datetime.now(_dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5))
        .not_valid_after(now + _dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "cert.pem"
    key_path = directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    return server, client
