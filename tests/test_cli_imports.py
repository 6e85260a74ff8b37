"""The CLI imports per command: a read command never loads the daemon, the parser or the flows.

Each probe runs in a fresh interpreter (this process has imported everything
already) and reports which of the heavy packages the command loaded; what is
asserted is which modules load, never how long anything takes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from inboxd.cli import main

# what a read command has no use for: the daemon and everything only it runs
DAEMON_ONLY = (
    "inboxd.daemon",
    "inboxd.ingest",
    "inboxd.flows",
    "inboxd.delivery",
    "inboxd.core.parse",
    "inboxd.core.rules",
    "inboxd.rulesdir",
    "jinja2",
    "alembic",
    "imapclient",
    "aiosmtpd",
)
DATABASE = ("inboxd.db", "sqlmodel", "sqlalchemy")

PROBE = """
import json, os, sys
from inboxd.cli import main
if sys.argv[1:]:
    main(sys.argv[1:], standalone_mode=False)
with open(os.environ["PROBE_OUT"], "w") as out:
    json.dump(sorted(sys.modules), out)
"""

CONFIG = """\
[database]
url = "sqlite:///{db}"

[helpdesk]
domain = "help.example.com"
secret_file = "secret"

[lmtp]
enabled = false

[rules]
dir = "{root}/rules"

[templates]
dir = "{root}/templates"

[[mailbox]]
name = "support"
address = "support@help.example.com"
"""

MAIL = b"""\
From: Carol <carol@customer.example>\r
To: support@help.example.com\r
Subject: Printer broken\r
Message-ID: <imports-1@customer.example>\r
\r
It does not print.\r
"""

ROOT = Path(__file__).resolve().parent.parent


def loaded(prefixes: tuple[str, ...], modules: list[str]) -> list[str]:
    """The entries of ``prefixes`` that are, or are a parent of, a loaded module."""
    return [p for p in prefixes if any(m == p or m.startswith(p + ".") for m in modules)]


def probe(tmp_path: Path, *args: str) -> tuple[str, list[str]]:
    """Run ``inboxd ARGS`` in a fresh interpreter: its stdout and its loaded modules."""
    out = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=dict(os.environ, PROBE_OUT=str(out)),
    )
    assert done.returncode == 0, done.stderr
    modules: list[str] = json.loads(out.read_text())
    return done.stdout, modules


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config and a real SQLite database holding one ticket, made by the CLI itself."""
    home = tmp_path_factory.mktemp("cli-imports")
    (home / "secret").write_text("cli-imports-secret-0123456789\n")
    config = home / "inboxd.toml"
    config.write_text(CONFIG.format(db=home / "inboxd.db", root=ROOT))
    (home / "mail.eml").write_bytes(MAIL)
    command = [sys.executable, "-m", "inboxd", "--config", str(config)]
    for args in (["db", "upgrade"], ["import", str(home / "mail.eml")]):
        done = subprocess.run([*command, *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    return config


def test_importing_the_cli_loads_neither_daemon_nor_database(tmp_path: Path) -> None:
    _, modules = probe(tmp_path)
    assert loaded(DAEMON_ONLY + DATABASE + ("inboxd.config", "pydantic"), modules) == []


@pytest.mark.parametrize(
    "args", [("tickets", "list"), ("tickets", "show", "1", "--json")], ids=" ".join
)
def test_read_commands_load_the_database_but_not_the_daemon(
    desk: Path, tmp_path: Path, args: tuple[str, ...]
) -> None:
    stdout, modules = probe(tmp_path, "--config", str(desk), *args)
    assert "Printer broken" in stdout
    rules = ("inboxd.core.rules", "inboxd.rulesdir")
    if args[1] == "show":  # under an SLA policy: the rules explain its clocks
        assert '"sla": {' in stdout
        assert set(loaded(DAEMON_ONLY, modules)) <= set(rules)
    else:
        assert loaded(DAEMON_ONLY, modules) == []


def test_check_config_loads_no_database(desk: Path, tmp_path: Path) -> None:
    stdout, modules = probe(tmp_path, "--config", str(desk), "check-config")
    assert json.loads(stdout)["helpdesk"]["domain"] == "help.example.com"
    assert loaded(DAEMON_ONLY + DATABASE, modules) == []


def test_every_command_is_still_registered() -> None:
    """Registration stays eager (only the work is deferred), so --help lists everything."""
    assert sorted(main.commands) == [
        "check-config",
        "db",
        "export",
        "forget",
        "import",
        "outbox",
        "purge",
        "report",
        "rules",
        "run",
        "sla",
        "status",
        "sync",
        "templates",
        "tickets",
    ]
