"""Exactly once: ``inboxd sync --once`` killed with SIGKILL at random points.

A few thousand mails are preloaded into a real Dovecot; the sync is started and
killed repeatedly (bounded trials and time), then run to the end. Every mail
must be stored exactly once, every thread must be one ticket, and the
checkpoint must match the folder.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from servers.dovecot import DovecotServer
from sqlalchemy import func, select
from sqlmodel import Session
from support.mailgen import Thread, stream

from inboxd.db import repo
from inboxd.db.engine import make_engine
from inboxd.db.tables import MailboxState, Message, Quarantine, Ticket

COUNT = 2500
TRIALS = 8
KILL_PHASE_SECONDS = 90.0


def write_config(tmp_path: Path, server: DovecotServer, user: str) -> Path:
    (tmp_path / "secret").write_text("exactly-once-secret\n")
    (tmp_path / "rules").mkdir()
    cfg = tmp_path / "inboxd.toml"
    cfg.write_text(
        f"""
[database]
url = "sqlite:///{tmp_path / "inboxd.db"}"
[helpdesk]
secret_file = "secret"
[lmtp]
enabled = false
[[mailbox]]
name = "support"
address = "support@help.example"
imap_host = "127.0.0.1"
imap_port = {server.port}
imap_security = "none"
username = "{user}"
password_env = "INBOXD_TEST_IMAP_PASSWORD"
batch_size = 100
"""
    )
    return cfg


def sync_cmd(cfg: Path) -> list[str]:
    return [sys.executable, "-m", "inboxd", "--config", str(cfg), "sync", "--once"]


def stored_count(db: Path) -> int:
    if not db.exists():
        return 0
    engine = make_engine(f"sqlite:///{db}")
    try:
        with Session(engine) as s:
            return repo.count_rows(s, Message)
    except Exception:  # schema not created yet when killed very early
        return 0
    finally:
        engine.dispose()


@pytest.mark.server
@pytest.mark.slow
def test_sigkill_at_random_points_loses_and_duplicates_nothing(
    dovecot: DovecotServer, imap_user: str, tmp_path: Path
) -> None:
    threads: list[Thread] = []
    dovecot.preload(imap_user, "INBOX", stream(COUNT, seed=11, threads=threads))
    cfg = write_config(tmp_path, dovecot, imap_user)
    db = tmp_path / "inboxd.db"
    env = {**os.environ, "INBOXD_TEST_IMAP_PASSWORD": dovecot.users[imap_user]}
    log = (tmp_path / "sync.log").open("ab")
    rng = random.Random(20261123)

    mid_import_kills = 0
    deadline = time.monotonic() + KILL_PHASE_SECONDS
    for _ in range(TRIALS):
        if time.monotonic() > deadline:
            break
        proc = subprocess.Popen(sync_cmd(cfg), env=env, stdout=log, stderr=log)
        try:
            proc.wait(timeout=rng.uniform(1.0, 4.0))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
            if 0 < stored_count(db) < COUNT:
                mid_import_kills += 1
        if stored_count(db) >= COUNT:
            break

    final = subprocess.run(sync_cmd(cfg), env=env, stdout=log, stderr=log, timeout=300)
    assert final.returncode == 0, (tmp_path / "sync.log").read_text()[-3000:]
    assert mid_import_kills >= 1, "no kill landed in the middle of an import"

    engine = make_engine(f"sqlite:///{db}")
    with Session(engine) as s:
        ids = [row[0] for row in s.execute(select(Message.message_id))]
        assert len(ids) == COUNT and len(set(ids)) == COUNT
        assert repo.count_rows(s, Quarantine) == 0
        ticket_of = {m: t for m, t in s.execute(select(Message.message_id, Message.ticket_id))}
        for thread in threads:
            assert len({ticket_of[i] for i in thread.ids}) == 1, thread.subject
        assert repo.count_rows(s, Ticket) == len(threads)
        (last_uid,) = s.execute(select(func.max(MailboxState.last_uid))).one()
        assert last_uid == COUNT
    engine.dispose()
