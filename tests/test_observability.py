"""The real daemon seen from outside: /metrics, /readyz and ``inboxd status --json``.

``python -m inboxd run`` with ``[metrics] listen`` on a free port, one IMAP
mailbox on a private Dovecot and LMTP: a mail over LMTP moves the ingest and
ticket counters and leaves its agent notification in the outbox (the SMTP
relay is a closed port, so it waits); /readyz turns 503 naming the mailboxes
while Dovecot is down and 200 again once it is back; ``inboxd status --json``
shows the mailbox's last sync and last error and the SIGHUP reload. Every
wait is bounded.
"""

from __future__ import annotations

import json
import signal
import smtplib
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from servers.dovecot import DovecotFactory
from support.daemon import SUPPORT, TicketDB, free_port, mail, start_daemon, wait_for, write_config

pytestmark = pytest.mark.server

RULES = """\
teams:
  frontline:
    agents:
      - {name: alice, email: alice@help.example}
rules:
  - name: to-frontline
    on: [new]
    then: {team: frontline}
"""
WAIT = 20.0
RECONNECT = 60.0  # the fetcher's backoff after a few failed attempts, plus IDLE set-up


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def status_json(cfg: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "inboxd", "--config", str(cfg), "status", "--json"],
        capture_output=True,
        timeout=30,
        check=True,
    )
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def test_metrics_readiness_and_status_of_the_running_daemon(
    make_dovecot: DovecotFactory, tmp_path: Path
) -> None:
    imap = make_dovecot()
    imap.add_user("obs", "obs-password")
    imap.preload("obs", "INBOX", [mail("obs-0@c.example", "Over IMAP")])
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "00-team.yaml").write_text(RULES)
    lmtp_port, metrics_port = free_port(), free_port()
    cfg = write_config(
        tmp_path,
        imap_port=imap.port,
        imap_user="obs",
        lmtp_port=lmtp_port,
        rules_dir=rules,
        templates_dir=Path(__file__).resolve().parent.parent / "templates",
    )
    with cfg.open("a") as out:
        out.write(f'\n[metrics]\nlisten = "127.0.0.1:{metrics_port}"\n')
        out.write(f'[smtp]\nhost = "127.0.0.1"\nport = {free_port()}\n')  # nobody listens
    daemon = start_daemon(cfg, password="obs-password", lmtp_port=lmtp_port)
    view = TicketDB(daemon.db)
    try:
        with smtplib.LMTP("127.0.0.1", lmtp_port, timeout=10) as client:
            client.sendmail("carol@customer.example", [SUPPORT], mail("obs-1@c.example", "Hi"))
        for msgid in ("obs-0@c.example", "obs-1@c.example"):
            assert wait_for(lambda m=msgid: view.ticket_of(m), WAIT) is not None, daemon.tail()

        status, text = get(metrics_port, "/metrics")
        assert status == 200
        assert 'inboxd_mail_ingested_total{mailbox="support",result="stored"} 2.0' in text
        assert 'inboxd_tickets_created_total{mailbox="support"} 2.0' in text
        assert 'inboxd_rule_hits_total{rule="to-frontline"} 2.0' in text
        assert "inboxd_ingest_latency_seconds_count 2.0" in text
        assert 'inboxd_queue_depth{kind="notify",queue="outbox"} 2.0' in text
        assert 'inboxd_mailbox_connected{mailbox="support"} 1.0' in text

        def readiness(want: int) -> dict[str, Any] | None:
            code, body = get(metrics_port, "/readyz")
            return json.loads(body) if code == want else None

        assert readiness(200) == {"ready": True, "problems": {}}
        imap.crash()
        unready = wait_for(lambda: readiness(503), WAIT, 0.2)
        assert unready is not None, daemon.tail()
        assert unready["problems"] == {"mailboxes": "not connected: support"}
        imap.start()
        assert wait_for(lambda: readiness(200), RECONNECT, 0.2) is not None, daemon.tail()

        daemon.signal(signal.SIGHUP)

        def reported() -> dict[str, Any] | None:
            data = status_json(cfg)
            box = data["mailboxes"][0]
            fresh = box["last_error"] and box["connected"] and data["rules"]["trigger"] == "SIGHUP"
            return data if fresh else None

        data = wait_for(reported, 3 * 15.0 + WAIT, 1.0)
        assert data is not None, (status_json(cfg), daemon.tail())
        box = data["mailboxes"][0]
        assert box["name"] == "support" and box["imap"] is True
        assert box["last_sync_at"] is not None and box["last_error_at"] is not None
        assert [(f["folder"], f["last_uid"]) for f in box["folders"]] == [("INBOX", 1)]
        assert data["rules"] == {
            "generation": 2,
            "loaded_at": data["rules"]["loaded_at"],
            "trigger": "SIGHUP",
            "ok": True,
            "errors": 0,
            "first_error": None,
        }
        (only,) = data["daemons"]
        assert only["alive"] is True and only["pid"] == daemon.proc.pid
        assert data["queues"]["outbox"]["by_kind"]["notify"]["waiting"] == 2
        assert data["version"] and data["database"].startswith("sqlite:///")
    finally:
        view.close()
        assert daemon.stop(timeout=15) == 0
    after = status_json(cfg)
    assert after["daemons"][0]["alive"] is False and after["daemons"][0]["stopped_at"]
