"""SLA end to end in the daemon: its scheduler runs the sweep on an injected clock.

The real ``Daemon`` (LMTP listener, scheduler, drains) with a clock the test
moves: a mail over LMTP opens a ticket under a policy; at 75% of the target the
reminder is queued once, at the breach the alert once, and a daemon started
again on the same database repeats neither.
"""

from __future__ import annotations

import smtplib
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from support.clock import Clock

from inboxd.config import parse_settings
from inboxd.daemon import App, Daemon
from inboxd.db.tables import Outbox
from inboxd.sdnotify import Notifier

RULES = textwrap.dedent(
    """
    version: 1
    teams:
      frontline:
        lead: bob
        agents:
          - {name: alice, email: alice@help.example}
          - {name: bob, email: bob@help.example}
    sla_policies:
      fast:
        calendar: 24x7
        first_response: 1h
        stages: [warn at 75%, at breach]
    rules:
      - name: default
        then: {team: frontline, assignee: alice, sla: fast}
    """
)
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sla_rows(app: App) -> list[tuple[str, str]]:
    with app.engine.connect() as conn:
        rows = conn.execute(select(Outbox.kind, Outbox.rcpts).order_by(Outbox.id)).all()
    return [(kind, rcpts[0]) for kind, rcpts in rows if kind.startswith("sla_")]


def wait_rows(app: App, count: int, timeout: float = 10.0) -> list[tuple[str, str]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = sla_rows(app)
        if len(rows) >= count:
            return rows
        time.sleep(0.05)
    return sla_rows(app)


def start(tmp_path: Path, clock: Clock, port: int) -> Daemon:
    text = f"""
[database]
url = "sqlite:///{tmp_path / "inboxd.db"}"
[helpdesk]
secret_file = "secret"
[lmtp]
listen = "127.0.0.1:{port}"
[smtp]
transport = "maildir"
path = "sent"
[sla]
sweep_interval = 0.2
[rules]
dir = "rules"
[templates]
dir = "{TEMPLATES}"
[[mailbox]]
name = "support"
address = "support@help.example"
"""
    settings = parse_settings(text, tmp_path / "inboxd.toml")
    daemon = Daemon(App.build(settings, clock=clock), Notifier(None))
    daemon.start()
    return daemon


def test_the_daemon_reminds_then_alerts_once_each_across_a_restart(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("sla-daemon-secret\n")
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "00.yaml").write_text(RULES)
    clock, port = Clock(T0), free_port()
    daemon = start(tmp_path, clock, port)
    try:
        mail = (
            b"From: Carol <carol@customer.example>\r\nTo: support@help.example\r\n"
            b"Subject: Printer broken\r\nMessage-ID: <sla-1@customer.example>\r\n\r\nHelp.\r\n"
        )
        with smtplib.LMTP("127.0.0.1", port) as lmtp:
            lmtp.sendmail("carol@customer.example", ["support@help.example"], mail)
        time.sleep(0.5)  # a few sweeps at T0: nothing is due
        assert sla_rows(daemon.app) == []
        clock.now = T0 + timedelta(minutes=45)  # 75% of the hour
        assert wait_rows(daemon.app, 1) == [("sla_reminder", "alice@help.example")]
    finally:
        daemon.shutdown()
    clock.now = T0 + timedelta(minutes=50)
    again = start(tmp_path, clock, port)  # a restart: the warning is not sent again
    try:
        time.sleep(0.6)
        assert sla_rows(again.app) == [("sla_reminder", "alice@help.example")]
        clock.now = T0 + timedelta(hours=1, minutes=1)
        rows = wait_rows(again.app, 2)
        assert rows == [("sla_reminder", "alice@help.example"), ("sla_breach", "bob@help.example")]
        time.sleep(0.6)
        assert len(sla_rows(again.app)) == 2  # once each
    finally:
        again.shutdown()
