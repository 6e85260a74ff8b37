"""The real daemon: ``python -m inboxd run`` against a private Dovecot and LMTP.

Mail over IMAP IDLE and over LMTP becomes tickets; SIGTERM stops it cleanly;
a rule file edited while it runs takes effect for the next mail, a broken edit
is rejected with ``file:line:col: message`` errors while mail keeps flowing
under the old rules, and SIGHUP reloads. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import re
import signal
import smtplib
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers.dovecot import DovecotServer
from support.daemon import (
    SUPPORT,
    DaemonProcess,
    TicketDB,
    free_port,
    mail,
    start_daemon,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.server

ARRIVAL_TIMEOUT = 10.0  # IDLE answers in about 0.5 s here; 10 s leaves room on a busy box
RELOAD_TIMEOUT = 10.0

RULE_FILE = "10-stamp.yaml"


def stamp_rule(tag: str) -> str:
    return f"rules:\n  - name: stamp\n    on: [new, reply]\n    then: {{tag: {tag}}}\n"


BAD_CONDITION = (
    "rules:\n"
    "  - name: stamp\n"
    "    on: [new, reply]\n"
    "    when: {subjct: [hello]}\n"
    "    then: {tag: broken}\n"
)
BAD_YAML = "rules:\n  - name: [stamp\n    then: {tag: broken}\n"


def write_rules(directory: Path, text: str) -> None:
    """Replace the rule file atomically, as a git checkout does; the new text is
    written outside the watched directory, so the watcher sees one change."""
    staging = directory.parent / "staging"
    staging.mkdir(exist_ok=True)
    tmp = staging / RULE_FILE
    tmp.write_text(text)
    tmp.replace(directory / RULE_FILE)


@pytest.fixture
def daemon(dovecot: DovecotServer, imap_user: str, tmp_path: Path) -> Iterator[DaemonProcess]:
    rules = tmp_path / "rules"
    rules.mkdir()
    write_rules(rules, stamp_rule("v1"))
    port = free_port()
    cfg = write_config(
        tmp_path,
        imap_port=dovecot.port,
        imap_user=imap_user,
        lmtp_port=port,
        rules_dir=rules,
        templates_dir=Path(__file__).resolve().parent.parent / "templates",
    )
    proc = start_daemon(cfg, password=dovecot.users[imap_user], lmtp_port=port)
    try:
        yield proc
    finally:
        proc.stop(timeout=10)


@pytest.fixture
def db(daemon: DaemonProcess) -> Iterator[TicketDB]:
    view = TicketDB(daemon.db)
    try:
        yield view
    finally:
        view.close()


def lmtp_deliver(port: int, raw: bytes) -> dict[str, tuple[int, bytes]]:
    with smtplib.LMTP("127.0.0.1", port, timeout=10) as client:
        return client.sendmail("carol@customer.example", [SUPPORT], raw)


def deliver_lmtp(daemon: DaemonProcess, db: TicketDB, msgid: str, subject: str) -> int:
    refused = lmtp_deliver(daemon.lmtp_port, mail(msgid, subject))
    assert refused == {}, refused
    # 250 is sent only after the commit: the row must be there without waiting.
    ticket = db.ticket_of(msgid)
    assert ticket is not None, daemon.tail()
    return ticket


def arrive(daemon: DaemonProcess, db: TicketDB, msgid: str) -> int:
    ticket = wait_for(lambda: db.ticket_of(msgid), ARRIVAL_TIMEOUT)
    assert ticket is not None, f"{msgid} did not arrive in {ARRIVAL_TIMEOUT} s\n{daemon.tail()}"
    return ticket


def test_mail_appended_over_imap_arrives_via_idle(
    daemon: DaemonProcess, db: TicketDB, dovecot: DovecotServer, imap_user: str
) -> None:
    # The first mail may be taken by the start-up sync; once it is stored the
    # fetcher is back in IDLE, and with an hour-long poll interval only IDLE can
    # bring the second one in time.
    dovecot.append(imap_user, "INBOX", [mail("idle-1@customer.example", "First")])
    first = arrive(daemon, db, "idle-1@customer.example")
    time.sleep(0.3)
    dovecot.append(imap_user, "INBOX", [mail("idle-2@customer.example", "Second")])
    second = arrive(daemon, db, "idle-2@customer.example")
    assert first != second
    assert db.tags(second) == ["v1"]


def test_mail_delivered_over_lmtp_is_committed_before_250(
    daemon: DaemonProcess, db: TicketDB
) -> None:
    ticket = deliver_lmtp(daemon, db, "lmtp-1@customer.example", "Printer on fire")
    assert db.tags(ticket) == ["v1"]
    with smtplib.LMTP("127.0.0.1", daemon.lmtp_port, timeout=10) as client:
        client.ehlo("test")  # smtplib.LMTP sends LHLO
        code, _ = client.docmd("MAIL FROM:<carol@customer.example>")
        assert code == 250
        code, _ = client.docmd("RCPT TO:<stranger@elsewhere.example>")
        assert code == 550  # only configured support addresses are accepted


def test_sigterm_stops_cleanly(daemon: DaemonProcess) -> None:
    started = time.monotonic()
    daemon.signal(signal.SIGTERM)
    try:
        code = daemon.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail(f"inboxd run ignored SIGTERM for 10 s\n{daemon.tail()}")
    took = time.monotonic() - started
    assert code == 0, daemon.tail()
    assert daemon.count(r"signal=SIGTERM stopping") == 1
    assert daemon.count(r"stopped threads=\d+ still_alive=none") == 1, daemon.tail()
    assert took < 10


def reloads(daemon: DaemonProcess, trigger: str = r"\w+") -> str:
    return rf" rules reloaded trigger={trigger} "


REJECTED = r" rules: \d+ errors, keeping last good set trigger=\w+ "


def test_rule_edit_takes_effect_and_broken_edit_is_rejected(
    daemon: DaemonProcess, db: TicketDB, dovecot: DovecotServer, imap_user: str, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    ticket = deliver_lmtp(daemon, db, "r1@customer.example", "One")
    assert db.tags(ticket) == ["v1"]

    # A valid edit is picked up by the file watcher and used for the next mail.
    done = daemon.count(reloads(daemon))
    write_rules(rules, stamp_rule("v2"))
    assert daemon.wait_log(reloads(daemon, "file_change"), at_least=done + 1), daemon.tail()
    ticket = deliver_lmtp(daemon, db, "r2@customer.example", "Two")
    assert db.tags(ticket) == ["v2"]

    # Broken YAML: rejected with a positioned error, the old rules stay.
    rejected = daemon.count(REJECTED)
    write_rules(rules, BAD_YAML)
    assert daemon.wait_log(REJECTED, at_least=rejected + 1), daemon.tail()
    yaml_error = re.search(rf"rules: (\S+/{RULE_FILE}):(\d+):(\d+): YAML syntax", daemon.log_text())
    assert yaml_error is not None, daemon.tail()
    assert yaml_error.group(1) == str(rules / RULE_FILE)
    ticket = deliver_lmtp(daemon, db, "r3@customer.example", "Three")
    assert db.tags(ticket) == ["v2"]

    # Unknown condition: the error points at the misspelt key; mail over IMAP
    # keeps flowing under the last good rules too.
    write_rules(rules, BAD_CONDITION)
    line = next(i for i, text in enumerate(BAD_CONDITION.splitlines(), 1) if "subjct" in text)
    column = BAD_CONDITION.splitlines()[line - 1].index("subjct") + 1
    expected = f"rules: {rules / RULE_FILE}:{line}:{column}: unknown condition 'subjct'"
    assert daemon.wait_log(re.escape(expected)), daemon.tail()
    assert daemon.wait_log(REJECTED, at_least=rejected + 2), daemon.tail()
    dovecot.append(imap_user, "INBOX", [mail("r4@customer.example", "Four, hello")])
    assert db.tags(arrive(daemon, db, "r4@customer.example")) == ["v2"]

    # Fixed again: the new set goes live.
    done = daemon.count(reloads(daemon))
    write_rules(rules, stamp_rule("v3"))
    assert daemon.wait_log(reloads(daemon, "file_change"), at_least=done + 1), daemon.tail()
    ticket = deliver_lmtp(daemon, db, "r5@customer.example", "Five")
    assert db.tags(ticket) == ["v3"]
    assert daemon.proc.poll() is None


def test_sighup_reloads_and_keeps_running(
    daemon: DaemonProcess, db: TicketDB, tmp_path: Path
) -> None:
    done = daemon.count(reloads(daemon, "SIGHUP"))
    daemon.signal(signal.SIGHUP)
    assert daemon.wait_log(reloads(daemon, "SIGHUP"), at_least=done + 1), daemon.tail()
    # SIGHUP while the files are broken: rejected, and the daemon keeps serving.
    write_rules(tmp_path / "rules", BAD_CONDITION)
    assert daemon.wait_log(REJECTED, timeout=RELOAD_TIMEOUT), daemon.tail()
    daemon.signal(signal.SIGHUP)
    assert daemon.wait_log(r"keeping last good set trigger=SIGHUP", timeout=RELOAD_TIMEOUT)
    ticket = deliver_lmtp(daemon, db, "hup-1@customer.example", "After HUP")
    assert db.tags(ticket) == ["v1"]
    assert daemon.proc.poll() is None


def test_tickets_show_json_reports_the_rule_tag(daemon: DaemonProcess, db: TicketDB) -> None:
    """The admin's view of the same thing: ``inboxd tickets show N --json``."""
    ticket = deliver_lmtp(daemon, db, "cli-1@customer.example", "Via the CLI")
    cfg = daemon.db.parent / "inboxd.toml"
    command = [sys.executable, "-m", "inboxd", "--config", str(cfg), "tickets", "show"]
    out = subprocess.run(
        [*command, str(ticket), "--json"],
        env={k: v for k, v in os.environ.items() if k != "INBOXD_CONFIG"},
        capture_output=True,
        timeout=30,
        check=True,
    )
    shown = json.loads(out.stdout)
    assert shown["tags"] == ["v1"]
    assert [m["message_id"] for m in shown["messages"]] == ["cli-1@customer.example"]
    assert any(e["kind"] == "rule" and e["actor"] == "rule:stamp" for e in shown["events"])


def test_tickets_list_does_not_wait_for_a_writer(daemon: DaemonProcess, db: TicketDB) -> None:
    """An admin's look at the tickets reads a snapshot while a writer (a long import
    batch) holds SQLite's write lock; before, it queued for up to busy_timeout (30 s)."""
    ticket = deliver_lmtp(daemon, db, "ro-1@customer.example", "Read while locked")
    writer = sqlite3.connect(daemon.db, timeout=1)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE ticket SET subject = 'uncommitted' WHERE id = ?", (ticket,))
        cfg = daemon.db.parent / "inboxd.toml"
        out = subprocess.run(
            [sys.executable, "-m", "inboxd", "--config", str(cfg), "tickets", "list", "--json"],
            env={k: v for k, v in os.environ.items() if k != "INBOXD_CONFIG"},
            capture_output=True,
            timeout=20,  # under busy_timeout: waiting for the lock fails here
            check=True,
        )
    finally:
        writer.rollback()
        writer.close()
    listed = {t["id"]: t["subject"] for t in json.loads(out.stdout)}
    assert listed[ticket] == "Read while locked"  # the committed state, not the pending write
