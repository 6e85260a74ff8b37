"""Wall time of the CLI's read commands, read against this machine's Python start-up.

Creates a small real SQLite database in a temporary directory (``db upgrade``,
then ``import`` of a few generated mails through the real pipeline), then runs
``inboxd --config X tickets list``, ``tickets show 1 --json`` and
``check-config`` as subprocesses, several times each, and prints the median and
the fastest run. ``python -c pass`` and ``python -c "import sqlmodel"`` run in
the same way in the same run: a shared or slow machine moves every figure, so
compare a command with those baselines, not with a figure from another day.
Run: ``python bench/cli.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CONFIG = """\
[database]
url = "sqlite:///{db}"

[helpdesk]
domain = "help.example.com"
secret_file = "secret"

[lmtp]
enabled = false

[rules]
dir = "{rules}"

[templates]
dir = "{templates}"

[[mailbox]]
name = "support"
address = "support@help.example.com"
"""

MAIL = """\
From: Customer {n} <customer{n}@customer.example>
To: support@help.example.com
Subject: Printer {n} is broken
Message-ID: <bench-cli-{n}@customer.example>
Date: Mon, 02 Mar 2026 09:{n:02d}:00 +0000

It does not print, attempt {n}.
"""


def inboxd_command() -> list[str]:
    """The installed console script, as a user runs it; ``-m`` only when there is none."""
    script = Path(sys.executable).with_name("inboxd")
    if script.exists():
        return [str(script)]
    found = shutil.which("inboxd")
    return [found] if found else [sys.executable, "-c", "from inboxd.cli import main; main()"]


def prepare(workdir: Path, mails: int) -> Path:
    """A config and a database holding ``mails`` tickets; the config's path."""
    (workdir / "secret").write_text("bench-secret-0123456789abcdef\n")
    config = workdir / "inboxd.toml"
    config.write_text(
        CONFIG.format(db=workdir / "inboxd.db", rules=ROOT / "rules", templates=ROOT / "templates")
    )
    emls = []
    for n in range(1, mails + 1):
        path = workdir / f"mail{n}.eml"
        path.write_text(MAIL.format(n=n))
        emls.append(str(path))
    base = [*inboxd_command(), "--config", str(config)]
    subprocess.run([*base, "db", "upgrade"], check=True, capture_output=True)
    subprocess.run([*base, "import", *emls], check=True, capture_output=True)
    return config


def timed(argv: list[str], runs: int, cwd: Path) -> list[float]:
    """Wall seconds of each of ``runs`` runs (after one untimed warm-up run)."""
    subprocess.run(argv, check=True, capture_output=True, cwd=cwd)
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, cwd=cwd)
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="timed runs per command")
    parser.add_argument("--mails", type=int, default=5, help="tickets in the database")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="inboxd-bench-cli-") as tmp:
        workdir = Path(tmp)
        config = prepare(workdir, args.mails)
        base = [*inboxd_command(), "--config", str(config)]
        cases = [
            ("baseline: python -c pass", [sys.executable, "-c", "pass"]),
            ("baseline: python -c 'import sqlmodel'", [sys.executable, "-c", "import sqlmodel"]),
            ("inboxd tickets list", [*base, "tickets", "list"]),
            ("inboxd tickets show 1 --json", [*base, "tickets", "show", "1", "--json"]),
            ("inboxd check-config", [*base, "check-config"]),
        ]
        print(f"{args.runs} runs each, {args.mails} tickets, {os.cpu_count()} cores")
        print(f"{'command':<40} {'median':>8} {'fastest':>8}")
        for label, argv in cases:
            runs = timed(argv, args.runs, workdir)
            print(f"{label:<40} {statistics.median(runs):>7.3f}s {min(runs):>7.3f}s")


if __name__ == "__main__":
    main()
