"""Machine-sender markers and message kinds (loop prevention input)."""

from __future__ import annotations

import pytest

from inboxd.core.model import MessageKind
from inboxd.core.parse import parse_message


def msg(headers: str, subject: str = "Hello", sender: str = "carl@example.net") -> bytes:
    text = f"From: {sender}\nSubject: {subject}\n{headers}\n\nbody\n"
    return text.replace("\n\n\n", "\n\n").replace("\n", "\r\n").encode()


def test_normal_mail() -> None:
    m = parse_message(msg(""))
    assert m.kind is MessageKind.NORMAL
    assert m.auto.auto_submitted == "" and not m.auto.is_noreply


@pytest.mark.parametrize(
    ("headers", "subject", "kind"),
    [
        ("Auto-Submitted: auto-replied", "Hello", MessageKind.AUTO_REPLY),
        ("X-Autoreply: yes", "Hello", MessageKind.AUTO_REPLY),
        ("X-Autorespond: yes", "Hello", MessageKind.AUTO_REPLY),
        ("Precedence: auto_reply", "Hello", MessageKind.AUTO_REPLY),
        ("Auto-Submitted: auto-generated", "Out of Office: Hello", MessageKind.AUTO_REPLY),
        ("X-Auto-Response-Suppress: All", "Automatic reply: Hello", MessageKind.AUTO_REPLY),
        ("Auto-Submitted: auto-generated", "Abwesenheitsnotiz: Hallo", MessageKind.AUTO_REPLY),
        ("Precedence: bulk", "Réponse automatique : absent", MessageKind.AUTO_REPLY),
        ("Precedence: bulk", "Newsletter", MessageKind.BULK),
        ("Precedence: junk", "x", MessageKind.BULK),
        ("Precedence: list", "x", MessageKind.BULK),
        ("List-Id: <dev.lists.example.org>", "x", MessageKind.BULK),
        ("List-Unsubscribe: <mailto:u@example.org>", "x", MessageKind.BULK),
        ("Auto-Submitted: auto-generated", "Monitoring alert", MessageKind.BULK),
        ("Auto-Submitted: no", "x", MessageKind.NORMAL),
        # A person writing "out of office" in a subject is still a person.
        ("", "Out of office tomorrow, please call", MessageKind.NORMAL),
    ],
)
def test_kinds(headers: str, subject: str, kind: MessageKind) -> None:
    assert parse_message(msg(headers, subject)).kind is kind


def test_flags() -> None:
    m = parse_message(
        msg(
            "Auto-Submitted: Auto-Replied; owner=x\nPrecedence: Bulk\nList-Id: <l.example>\n"
            "List-Unsubscribe: <https://x>\nReturn-Path: <>\nX-Auto-Response-Suppress: OOF",
        )
    )
    a = m.auto
    assert a.auto_submitted == "auto-replied; owner=x"
    assert a.precedence == "bulk"
    assert a.list_id == "<l.example>"
    assert a.has_list_unsubscribe and a.return_path_empty
    assert a.x_auto_response_suppress == "OOF"


@pytest.mark.parametrize(
    ("sender", "daemon", "noreply"),
    [
        ("MAILER-DAEMON@mx.example.org", True, False),
        ("postmaster@example.org", True, False),
        ("noreply@example.org", False, True),
        ("no-reply@example.org", False, True),
        ("donotreply@example.org", False, True),
        ("do-not-reply@example.org", False, True),
        ("noreply+abc@example.org", False, True),
        ("carl@example.org", False, False),
        ("norbert@example.org", False, False),
    ],
)
def test_sender_flags(sender: str, daemon: bool, noreply: bool) -> None:
    a = parse_message(msg("", sender=sender)).auto
    assert (a.is_mailer_daemon, a.is_noreply) == (daemon, noreply)


def test_return_path_not_empty() -> None:
    assert not parse_message(msg("Return-Path: <carl@example.net>")).auto.return_path_empty
