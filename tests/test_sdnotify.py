"""sd_notify: what systemd's Type=notify unit (systemd/inboxd.service) relies on.

A SOCK_DGRAM unix socket bound in tmp stands in for systemd's NOTIFY_SOCKET.
The daemon test runs the real ``python -m inboxd run`` (LMTP only, so no IMAP
server is needed) and expects READY=1 after start, RELOADING=1 then READY=1
around a SIGHUP reload, and STOPPING=1 on SIGTERM, then exit code 0.
"""

from __future__ import annotations

import configparser
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from support.daemon import free_port

from inboxd.cli import main as cli_main
from inboxd.sdnotify import Notifier

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "inboxd.service"
WAIT = 20.0  # interpreter start-up included


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    try:
        yield sock, path
    finally:
        sock.close()


def receive(sock: socket.socket, until: str, timeout: float = WAIT) -> list[dict[str, str]]:
    """Datagrams (as key=value dicts) up to and including one that has ``until``."""
    got: list[dict[str, str]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(4096).decode()
        except TimeoutError:
            break
        fields = dict(line.split("=", 1) for line in data.splitlines() if "=" in line)
        got.append(fields)
        if until in fields:
            return got
    raise AssertionError(f"no {until} within {timeout} s; got {got}")


def test_notifier_sends_the_protocol_lines(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    notifier = Notifier(path)
    notifier.ready("3 mailboxes")
    assert receive(sock, "READY")[-1] == {"READY": "1", "STATUS": "3 mailboxes"}
    notifier.reloading()
    reloading = receive(sock, "RELOADING")[-1]
    assert reloading["RELOADING"] == "1" and int(reloading["MONOTONIC_USEC"]) > 0
    notifier.stopping()
    assert receive(sock, "STOPPING")[-1] == {"STOPPING": "1"}


def test_notifier_without_socket_is_a_no_op() -> None:
    assert Notifier(None).send("READY=1") is False


def test_abstract_namespace_address() -> None:
    name = f"inboxd-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        assert Notifier("@" + name).send("READY=1")
        sock.settimeout(5)
        assert sock.recv(100) == b"READY=1"


def start_daemon(
    tmp_path: Path, notify_path: str, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """The real ``python -m inboxd run`` on LMTP only; its log goes to daemon.log."""
    (tmp_path / "secret").write_text("sd-notify-test\n")
    (tmp_path / "rules").mkdir()
    cfg = tmp_path / "inboxd.toml"
    cfg.write_text(
        f"""
[database]
url = "sqlite:///{tmp_path / "inboxd.db"}"
[helpdesk]
secret_file = "secret"
[lmtp]
listen = "127.0.0.1:{free_port()}"
[[mailbox]]
name = "support"
address = "support@help.example"
"""
    )
    with open(tmp_path / "daemon.log", "wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "inboxd", "--config", str(cfg), "run"],
            env={**os.environ, "NOTIFY_SOCKET": notify_path, **(extra_env or {})},
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
        )


def test_daemon_notifies_ready_reloading_and_stopping(
    notify_socket: tuple[socket.socket, str], tmp_path: Path
) -> None:
    sock, path = notify_socket
    proc = start_daemon(tmp_path, path)
    try:
        ready = receive(sock, "READY")
        assert ready[-1]["READY"] == "1", ready
        assert "mailboxes" in ready[-1]["STATUS"]
        proc.send_signal(signal.SIGHUP)
        reload = receive(sock, "READY")
        assert [next(iter(m)) for m in reload] == ["RELOADING", "READY"], reload
        assert reload[-1]["STATUS"] == "rules reloaded"
        proc.send_signal(signal.SIGTERM)
        assert receive(sock, "STOPPING")[-1] == {"STOPPING": "1"}
        assert proc.wait(timeout=10) == 0, (tmp_path / "daemon.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_daemon_pings_the_watchdog_from_its_main_loop(
    notify_socket: tuple[socket.socket, str], tmp_path: Path
) -> None:
    """With WatchdogSec= (here 1 s), WATCHDOG=1 comes every half period with a STATUS."""
    sock, path = notify_socket
    proc = start_daemon(tmp_path, path, {"WATCHDOG_USEC": "1000000"})
    try:
        receive(sock, "READY")
        pings = [receive(sock, "WATCHDOG")[-1] for _ in range(3)]
        assert all(p["WATCHDOG"] == "1" and "mailboxes" in p["STATUS"] for p in pings), pings
        assert "rules gen" in pings[-1]["STATUS"]
        proc.send_signal(signal.SIGTERM)
        receive(sock, "STOPPING")
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


STORM = 300  # SIGHUPs sent back to back


def test_sighup_storm_never_hangs_the_daemon(
    notify_socket: tuple[socket.socket, str], tmp_path: Path
) -> None:
    """Regression: the handler used to set a threading.Event, and a SIGHUP that
    fell inside the main loop's own wait()/clear() on that Event deadlocked on
    its lock (CI saw it once with a single SIGHUP). A burst makes that timing
    likely; the daemon must still reload, then stop cleanly on SIGTERM."""
    sock, path = notify_socket
    proc = start_daemon(tmp_path, path)
    try:
        receive(sock, "READY")
        for _ in range(STORM):
            proc.send_signal(signal.SIGHUP)
            time.sleep(0.0005)
        after = receive(sock, "READY")  # at least one reload answered
        assert after[0]["RELOADING"] == "1", after
        proc.send_signal(signal.SIGTERM)
        receive(sock, "STOPPING")
        assert proc.wait(timeout=15) == 0, (tmp_path / "daemon.log").read_text()
        reloads = (tmp_path / "daemon.log").read_text().count("trigger=SIGHUP")
        assert 1 <= reloads <= STORM  # a burst read together is one reload
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_unit_file_matches_the_daemon() -> None:
    """The unit starts commands that exist and uses the notify protocol tested above."""
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(UNIT.read_text())
    service = unit["Service"]
    assert service["Type"] == "notify"
    assert service["WatchdogSec"]  # the daemon pings from its main loop (tested above)
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    for key in ("ExecStartPre", "ExecStart"):
        argv = shlex.split(service[key])[1:]
        command: click.Command = cli_main
        for word in argv:  # each word names a (sub)command of the inboxd CLI
            assert isinstance(command, click.Group) and word in command.commands, service[key]
            command = command.commands[word]
    assert shlex.split(service["ExecStartPre"])[1:] == ["db", "upgrade"]
    assert shlex.split(service["ExecStart"])[1:] == ["run"]
