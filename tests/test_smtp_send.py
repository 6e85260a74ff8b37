"""SmtpSender against a real aiosmtpd server on 127.0.0.1 (port 0)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from servers.smtp import SmtpServer, self_signed_context

from inboxd.config import SmtpConfig
from inboxd.core.compose import OutboundKind, OutboundMail, render_message
from inboxd.core.model import Address
from inboxd.delivery.smtp_send import SendResult, SmtpSender

DATE = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def raw_mail(n: int = 1, to: str = "carol@customer.example") -> bytes:
    return render_message(
        OutboundMail(
            kind=OutboundKind.ACK,
            ticket_id=n,
            from_addr=Address("support@help.example", "Support"),
            to=(Address(to),),
            subject=f"[#{n}] Printer",
            text=f"Mail {n}\n.\n..leading dots survive\n",
            message_id=f"ibx.{n}.abc.sig@help.example",
        ),
        date=DATE,
    )


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    srv = SmtpServer().start()
    yield srv
    srv.stop()


def config(port: int, **kw: Any) -> SmtpConfig:
    return SmtpConfig(host="127.0.0.1", port=port, timeout=5.0, **kw)


def send_one(cfg: SmtpConfig, rcpts: list[str], raw: bytes, **kw: Any) -> SendResult:
    with SmtpSender(cfg, kw.pop("password", None), **kw) as sender:
        return sender.send("bounces@help.example", rcpts, raw)


def test_delivers_bytes_unchanged(server: SmtpServer) -> None:
    raw = raw_mail()
    result = send_one(config(server.port), ["carol@customer.example"], raw)
    assert result.ok and result.status == "ok" and result.code == 250
    assert result.refused == ()
    [got] = server.captured
    assert got.mail_from == "bounces@help.example"
    assert got.rcpt_tos == ["carol@customer.example"]
    assert got.data.replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")
    assert b"\n..leading dots survive" in got.data  # dot-stuffing undone by the server


def test_null_reverse_path(server: SmtpServer) -> None:
    with SmtpSender(config(server.port), None) as sender:
        assert sender.send("", ["carol@customer.example"], raw_mail()).ok
    assert server.captured[0].mail_from == "<>"


def test_one_connection_for_a_run(server: SmtpServer) -> None:
    with SmtpSender(config(server.port), None) as sender:
        for n in range(5):
            assert sender.send("b@help.example", [f"c{n}@x.example"], raw_mail(n)).ok
        assert sender.connections == 1
    assert len(server.captured) == 5
    assert len(server.peers()) == 1


def test_temporary_failure_on_rcpt(server: SmtpServer) -> None:
    server.behaviour.rcpt_default = "451 4.3.0 try again later"
    result = send_one(config(server.port), ["carol@customer.example"], raw_mail())
    assert result.status == "temporary"
    assert result.code == 451
    assert result.retry_rcpts == ("carol@customer.example",)
    assert server.captured == []


def test_permanent_failure_on_rcpt(server: SmtpServer) -> None:
    server.behaviour.rcpt_default = "550 5.1.1 no such user"
    result = send_one(config(server.port), ["nobody@customer.example"], raw_mail())
    assert result.status == "permanent"
    assert result.code == 550
    assert result.refused[0].rcpt == "nobody@customer.example"
    assert "no such user" in result.refused[0].detail
    assert result.retry_rcpts == ()


def test_mixed_refusals_retry_only_the_temporary_ones(server: SmtpServer) -> None:
    server.behaviour.rcpt = {
        "gone@x.example": "550 5.1.1 no such user",
        "busy@x.example": "452 4.2.2 mailbox full",
    }
    result = send_one(config(server.port), ["gone@x.example", "busy@x.example"], raw_mail())
    assert result.status == "temporary"
    assert result.retry_rcpts == ("busy@x.example",)


def test_partial_acceptance_is_ok_with_refusals(server: SmtpServer) -> None:
    server.behaviour.rcpt = {"gone@x.example": "550 5.1.1 no such user"}
    result = send_one(config(server.port), ["carol@x.example", "gone@x.example"], raw_mail())
    assert result.ok
    assert [r.rcpt for r in result.refused] == ["gone@x.example"]
    assert result.refused[0].permanent
    assert server.captured[0].rcpt_tos == ["carol@x.example"]


@pytest.mark.parametrize(
    ("reply", "status", "code"),
    [
        ("451 4.3.0 queue full", "temporary", 451),
        ("554 5.7.1 rejected as spam", "permanent", 554),
    ],
)
def test_data_replies(server: SmtpServer, reply: str, status: str, code: int) -> None:
    server.behaviour.data = reply
    result = send_one(config(server.port), ["carol@x.example"], raw_mail())
    assert (result.status, result.code) == (status, code)
    assert reply.split(" ", 2)[2] in result.detail


@pytest.mark.parametrize(
    ("reply", "status"),
    [("451 4.7.1 greylisted", "temporary"), ("553 5.7.1 sender not allowed", "permanent")],
)
def test_mail_from_replies(server: SmtpServer, reply: str, status: str) -> None:
    server.behaviour.mail = reply
    result = send_one(config(server.port), ["carol@x.example"], raw_mail())
    assert result.status == status
    assert result.detail.startswith("MAIL FROM:")


def test_connection_survives_a_rejected_mail(server: SmtpServer) -> None:
    with SmtpSender(config(server.port), None) as sender:
        server.behaviour.rcpt_default = "550 5.1.1 no such user"
        assert sender.send("b@x.example", ["a@x.example"], raw_mail(1)).status == "permanent"
        server.behaviour.rcpt_default = None
        assert sender.send("b@x.example", ["a@x.example"], raw_mail(2)).ok
        assert sender.connections == 1


def test_server_down_is_temporary() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # nothing listens on the port now: connection refused
    result = send_one(config(port), ["carol@x.example"], raw_mail())
    assert result.status == "temporary"
    assert result.code == 0
    assert "connect" in result.detail


def test_server_restart_between_mails_reconnects() -> None:
    first = SmtpServer().start()
    port = first.port
    with SmtpSender(config(port), None) as sender:
        assert sender.send("b@x.example", ["a@x.example"], raw_mail(1)).ok
        first.stop()
        down = sender.send("b@x.example", ["a@x.example"], raw_mail(2))
        assert down.status == "temporary"
        second = SmtpServer()
        second.controller.port = port  # same port: the relay "came back"
        second.start()
        try:
            assert sender.send("b@x.example", ["a@x.example"], raw_mail(3)).ok
            assert sender.connections == 2
            assert len(second.captured) == 1
        finally:
            second.stop()


def test_disconnect_after_data_is_temporary(server: SmtpServer) -> None:
    server.behaviour.drop_after_data = True
    result = send_one(config(server.port), ["a@x.example"], raw_mail())
    # the server got the mail but we never saw 250: a retry may duplicate it
    assert result.status == "temporary"
    assert len(server.captured) == 1


def test_no_recipients_is_permanent(server: SmtpServer) -> None:
    assert send_one(config(server.port), [], raw_mail()).status == "permanent"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_login() -> None:
    srv = SmtpServer(users={"outbox": "s3cret"}).start()
    try:
        ok = send_one(
            config(srv.port, username="outbox"), ["a@x.example"], raw_mail(), password="s3cret"
        )
        assert ok.ok
        bad = send_one(
            config(srv.port, username="outbox"), ["a@x.example"], raw_mail(), password="wrong"
        )
        assert bad.status == "temporary"  # configuration trouble: keep the mail
        assert bad.code == 535
        assert bad.detail.startswith("login failed")
        no_login = send_one(config(srv.port), ["a@x.example"], raw_mail())
        assert no_login.status == "permanent"  # the server demands AUTH: 530 to MAIL
        assert len(srv.captured) == 1
    finally:
        srv.stop()


def test_starttls(tmp_path: Path) -> None:
    server_ctx, client_ctx = self_signed_context(tmp_path)
    srv = SmtpServer(tls_context=server_ctx, require_starttls=True).start()
    try:
        result = send_one(
            config(srv.port, security="starttls"),
            ["a@x.example"],
            raw_mail(),
            ssl_context=client_ctx,
        )
        assert result.ok, result
        # the default context does not trust our self-signed certificate
        untrusted = send_one(config(srv.port, security="starttls"), ["a@x.example"], raw_mail())
        assert untrusted.status == "temporary"
        # without STARTTLS the server refuses to take mail
        plain = send_one(config(srv.port), ["a@x.example"], raw_mail())
        assert plain.status != "ok"
        assert len(srv.captured) == 1
    finally:
        srv.stop()


def test_implicit_tls(tmp_path: Path) -> None:
    server_ctx, client_ctx = self_signed_context(tmp_path)
    srv = SmtpServer(tls_context=server_ctx, implicit_tls=True).start()
    try:
        result = send_one(
            config(srv.port, security="tls"), ["a@x.example"], raw_mail(), ssl_context=client_ctx
        )
        assert result.ok, result
        assert len(srv.captured) == 1
    finally:
        srv.stop()


def test_starttls_not_offered_is_temporary(server: SmtpServer) -> None:
    result = send_one(config(server.port, security="starttls"), ["a@x.example"], raw_mail())
    assert result.status == "temporary"
    assert "STARTTLS" in result.detail or "starttls" in result.detail.lower()


def test_non_ascii_local_part_goes_with_smtputf8(server: SmtpServer) -> None:
    raw = raw_mail(to="jörg@bücher.example")
    result = send_one(config(server.port), ["jörg@xn--bcher-kva.example"], raw)
    assert result.ok, result
    [got] = server.captured
    assert got.rcpt_tos == ["jörg@xn--bcher-kva.example"]
    assert "SMTPUTF8" in got.mail_options
    assert got.data.replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")


def test_non_ascii_local_part_without_smtputf8_fails_for_good() -> None:
    srv = SmtpServer(smtputf8=False).start()
    try:
        raw = raw_mail(to="jörg@bücher.example")
        result = send_one(config(srv.port), ["jörg@xn--bcher-kva.example"], raw)
        assert result.status == "permanent" and "SMTPUTF8" in result.detail
        assert srv.captured == []
        with SmtpSender(config(srv.port), None) as sender:  # the session stays usable
            assert not sender.send("b@help.example", ["jörg@x.example"], raw).ok
            assert sender.send("b@help.example", ["carol@customer.example"], raw_mail()).ok
            assert sender.connections == 1
    finally:
        srv.stop()


def test_ascii_mail_sends_no_smtputf8_even_when_offered(server: SmtpServer) -> None:
    assert send_one(config(server.port), ["carol@customer.example"], raw_mail()).ok
    assert "SMTPUTF8" not in server.captured[0].mail_options
