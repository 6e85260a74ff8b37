"""The maildir transport: what the outbox sends appears as files a person can read."""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

from mailflow_kit import mail, make_desk

from inboxd.config import SmtpConfig
from inboxd.delivery.maildir_send import MaildirSender
from inboxd.delivery.outbox import OutboxDrain


def test_the_outbox_writes_each_mail_into_new_with_its_envelope(tmp_path: Path) -> None:
    desk = make_desk(tmp_path)
    desk.deliver(mail())
    sent = tmp_path / "sent"
    drain = OutboxDrain(
        desk.engine,
        lambda: MaildirSender(sent),
        retry_for=SmtpConfig().retry_for,
        clock=desk.clock,
        write=desk.writer,
    )
    report = drain.run_once()
    files = sorted((sent / "new").iterdir())
    assert report.sent == len(files) == len(desk.outbox()) >= 2  # the ack and notifications
    assert list((sent / "tmp").iterdir()) == []
    assert {r["status"] for r in desk.outbox()} == {"sent"}
    parsed = [email.message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]
    by_to = {str(m["X-Inboxd-Envelope-To"]): m for m in parsed}
    ack = by_to["carol@customer.example"]
    assert ack["Return-Path"] == "<>"  # an acknowledgement has a null return path
    assert ack["Message-ID"] in {f"<{r['message_id']}>" for r in desk.outbox("ack")}
    notify = by_to["alice@help.example"]
    assert str(notify["Return-Path"]).startswith("<support+")


def test_an_unwritable_maildir_is_a_temporary_failure(tmp_path: Path) -> None:
    blocked = tmp_path / "sent"
    with MaildirSender(blocked) as sender:
        (blocked / "tmp").rmdir()
        (blocked / "tmp").write_text("not a directory")
        result = sender.send("", ["a@x.example"], b"Subject: x\r\n\r\nbody\r\n")
    assert result.status == "temporary" and "maildir" in result.detail
    assert list((blocked / "new").iterdir()) == []
