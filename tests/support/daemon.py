"""``inboxd run`` as a real subprocess, for the daemon tests and bench/latency.py.

The daemon is started exactly as an admin would (``python -m inboxd --config
CFG run``), its stderr goes to a file the harness reads, and tickets are looked
up through a read-only sqlite3 connection so the harness never takes a write
lock the daemon could wait on. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

PASSWORD_ENV = "INBOXD_TEST_IMAP_PASSWORD"
SUPPORT = "support@help.example"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(probe: Callable[[], T | None], timeout: float, interval: float = 0.02) -> T | None:
    """Call ``probe`` until it returns something other than None, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def write_config(
    work: Path,
    *,
    imap_port: int,
    imap_user: str,
    lmtp_port: int,
    rules_dir: Path,
    templates_dir: Path | None = None,
    poll_interval: float = 3600.0,
) -> Path:
    """A config with one IMAP mailbox (IDLE; polling only every ``poll_interval``)
    and the LMTP listener on 127.0.0.1:``lmtp_port``."""
    (work / "secret").write_text("daemon-test-secret\n")
    cfg = work / "inboxd.toml"
    cfg.write_text(
        f"""
[database]
url = "sqlite:///{work / "inboxd.db"}"
[helpdesk]
secret_file = "secret"
acknowledge = false
[rules]
dir = "{rules_dir}"
[templates]
dir = "{templates_dir or work / "templates"}"
[lmtp]
enabled = true
listen = "127.0.0.1:{lmtp_port}"
protocol = "lmtp"
[[mailbox]]
name = "support"
address = "{SUPPORT}"
imap_host = "127.0.0.1"
imap_port = {imap_port}
imap_security = "none"
username = "{imap_user}"
password_env = "{PASSWORD_ENV}"
idle = true
poll_interval = {poll_interval}
"""
    )
    return cfg


@dataclass
class DaemonProcess:
    """One running ``inboxd run``; ``log`` is its stderr."""

    proc: subprocess.Popen[bytes]
    db: Path
    log: Path
    lmtp_port: int

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.log_text(), re.MULTILINE))

    def wait_log(self, pattern: str, *, at_least: int = 1, timeout: float = 10.0) -> bool:
        """True once ``pattern`` occurs ``at_least`` times in the log (False on timeout
        or when the daemon died)."""

        def probe() -> bool | None:
            if self.count(pattern) >= at_least:
                return True
            return False if self.proc.poll() is not None else None

        return bool(wait_for(probe, timeout, 0.05))

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; SIGKILL (and return -9) when it does not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                return -9
        return self.proc.returncode

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


def start_daemon(
    cfg: Path, *, password: str, lmtp_port: int, ready_timeout: float = 20.0
) -> DaemonProcess:
    """Start ``inboxd run`` and wait until the LMTP listener is up and the fetcher
    has logged in (its first sync and IDLE follow at once)."""
    work = cfg.parent
    log = work / "daemon.log"
    env = {**os.environ, PASSWORD_ENV: password}
    env.pop("NOTIFY_SOCKET", None)
    with open(log, "ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "inboxd", "--config", str(cfg), "run"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
        )
    daemon = DaemonProcess(proc, work / "inboxd.db", log, lmtp_port)
    if not (
        daemon.wait_log(r" listening protocol=lmtp", timeout=ready_timeout)
        and daemon.wait_log(r" connected mailbox=support", timeout=ready_timeout)
    ):
        daemon.stop(timeout=5)
        raise RuntimeError(f"inboxd run did not get ready:\n{daemon.tail()}")
    return daemon


class TicketDB:
    """Read-only view of the daemon's SQLite file (WAL: readers never block it)."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)

    def close(self) -> None:
        self.conn.close()

    def ticket_of(self, message_id: str) -> int | None:
        """The ticket a committed mail landed in, or None while it is not stored."""
        row = self.conn.execute(
            "SELECT ticket_id FROM message WHERE message_id = ? AND ticket_id IS NOT NULL",
            (message_id,),
        ).fetchone()
        return int(row[0]) if row else None

    def tags(self, ticket_id: int) -> list[str]:
        row = self.conn.execute("SELECT tags FROM ticket WHERE id = ?", (ticket_id,)).fetchone()
        if row is None:
            return []
        value = json.loads(row[0]) if isinstance(row[0], str) else row[0]
        return [str(tag) for tag in value]


def mail(message_id: str, subject: str, body: str = "Hello, it is broken.") -> bytes:
    """A small plain mail to the support address with the given Message-ID (no brackets)."""
    return (
        f"From: Carol Customer <carol@customer.example>\r\n"
        f"To: {SUPPORT}\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: <{message_id}>\r\n"
        f"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n"
        f"MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body}\r\n"
    ).encode()
