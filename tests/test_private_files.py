"""What inboxd creates is readable by its own user only, whatever umask it inherits.

Issue 15 ("Smaller"): outside systemd (whose unit sets UMask=) the SQLite file,
its WAL and the state next to it came out world-readable: customer mail for any
local user. ``inboxd run`` and the one-shot commands that build the app set
umask 077 first. Real subprocesses started with umask 022, as a login shell has.
"""

from __future__ import annotations

import smtplib
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from support.daemon import SUPPORT, DaemonProcess, free_port, mail

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def config(work: Path, *, lmtp_port: int = 0) -> Path:
    (work / "secret").write_text("private-files-test-secret\n")
    (work / "rules").mkdir()
    listener = (
        f'enabled = true\nlisten = "127.0.0.1:{lmtp_port}"' if lmtp_port else "enabled = false"
    )
    cfg = work / "inboxd.toml"
    cfg.write_text(
        f"""
[database]
url = "sqlite:///{work / "var" / "inboxd.db"}"
[helpdesk]
secret_file = "secret"
[rules]
dir = "{work / "rules"}"
[templates]
dir = "{TEMPLATES}"
[lmtp]
{listener}
[[mailbox]]
name = "support"
address = "{SUPPORT}"
"""
    )
    (work / "var").mkdir()
    return cfg


def open_to_others(directory: Path) -> list[str]:
    """Files under ``directory`` that a group or other user may read or write."""
    found = [p for p in directory.iterdir() if p.is_file()]
    assert found, "nothing was created"
    return [
        f"{p.name} {stat.filemode(p.stat().st_mode)}" for p in found if p.stat().st_mode & 0o077
    ]


@pytest.mark.parametrize("command", ["import", "db upgrade"])
def test_a_one_shot_command_creates_a_private_database(tmp_path: Path, command: str) -> None:
    cfg = config(tmp_path)
    eml = tmp_path / "m.eml"
    eml.write_bytes(mail("private-1@customer.example", "Hello"))
    args = [str(eml)] if command == "import" else []
    done = subprocess.run(
        [sys.executable, "-m", "inboxd", "--config", str(cfg), *command.split(), *args],
        capture_output=True,
        timeout=60,
        umask=0o022,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert open_to_others(tmp_path / "var") == []


def test_the_daemon_creates_a_private_database(tmp_path: Path) -> None:
    port = free_port()
    cfg = config(tmp_path, lmtp_port=port)
    log = tmp_path / "daemon.log"
    with open(log, "ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "inboxd", "--config", str(cfg), "run"],
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
            umask=0o022,
        )
    daemon = DaemonProcess(proc, tmp_path / "var" / "inboxd.db", log, port)
    try:
        assert daemon.wait_log(r" listening protocol=lmtp", timeout=20), daemon.tail()
        with smtplib.LMTP("127.0.0.1", port, timeout=10) as client:
            raw = mail("private-2@customer.example", "Hello")
            assert client.sendmail("carol@customer.example", [SUPPORT], raw) == {}
    finally:
        daemon.stop(timeout=10)
    assert open_to_others(tmp_path / "var") == []
