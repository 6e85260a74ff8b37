"""A DSN marks our mail failed only when it comes to that mail's VERP return path.

Issue 15, "Smaller": a forged DSN naming one of our sent Message-IDs (anyone who
got or saw the mail knows it) marked delivered mail failed and alerted the
agents. Bounces of our mail go to its envelope sender, ``support+TOKEN@``
(signed, naming the ticket): only a report that came there (in To/Cc,
Delivered-To or X-Original-To) fails the mail; any other is recorded on the
ticket and changes nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mailflow_kit import SECRET, SUPPORT, Desk, dsn, mail, make_desk, reply_to_notification

from inboxd.core.tokens import make_reply_token


@pytest.fixture
def desk(tmp_path: Path, db_url: str) -> Desk:
    return make_desk(tmp_path, url=db_url)


def relayed(desk: Desk) -> dict[str, object]:
    assert desk.deliver(mail()).ticket_id == 1
    notes = [m for m in desk.outbox_mails("notify") if "alice@" in str(m["To"])]
    desk.deliver(reply_to_notification(notes[-1], body="Answer.\n"))
    [row] = desk.outbox("reply")
    return row


def test_a_dsn_to_the_plain_support_address_fails_nothing(desk: Desk) -> None:
    row = relayed(desk)
    desk.deliver(dsn(original_id=str(row["message_id"]), to=SUPPORT))
    assert desk.outbox("reply")[0]["status"] == "queued"
    assert desk.outbox_mails("bounce_alert") == []
    [bounce] = [d for _, k, d in desk.events(1) if k == "bounce"]
    assert bounce["original"] == row["message_id"]


def test_a_dsn_to_the_return_path_fails_the_mail(desk: Desk) -> None:
    row = relayed(desk)
    verp = f"support+{make_reply_token(SECRET, 1, 0)}@help.example"
    desk.deliver(dsn(original_id=str(row["message_id"]), to=verp))
    assert desk.outbox("reply")[0]["status"] == "failed"
    assert len(desk.outbox_mails("bounce_alert")) == 2  # alice and bob


def test_a_return_path_of_another_ticket_fails_nothing(desk: Desk) -> None:
    row = relayed(desk)
    other = f"support+{make_reply_token(SECRET, 2, 0)}@help.example"
    desk.deliver(dsn(original_id=str(row["message_id"]), to=other))
    assert desk.outbox("reply")[0]["status"] == "queued"
