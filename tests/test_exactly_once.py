"""Exactly once: ``inboxd sync --once`` killed with SIGKILL again and again.

A few thousand mails are preloaded into a real Dovecot; the sync is started and
killed repeatedly, then run to the end. Every mail must be stored exactly once,
every thread must be one ticket, and the checkpoint must match the folder.

Where each kill lands is chosen from observed progress, not from a delay (a
delay put every kill before the first commit on a loaded machine, or after the
last on a fast one): the database is polled read-only and the process is
killed once STEP more mails are committed than at the previous kill, either
right after that batch commit or a third of a batch interval later, before
the next. No kill point lies beyond LAST_KILL_AT, so all but the first (on the
fresh schema) land with >0 and <COUNT committed, however loaded the machine.
The ingest workers of a killed sync must then exit on their own.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from servers.dovecot import DovecotServer
from sqlalchemy import func, select
from sqlmodel import Session, col
from support.killpoints import (
    Progress,
    Watch,
    snapshot,
    still_running,
    worker_processes,
)
from support.mailgen import Thread, stream

from inboxd.db.engine import make_engine
from inboxd.db.tables import MailboxState, Message, Quarantine, Ticket

COUNT = 2500
BATCH = 100  # batch_size in the config: one commit stores this many mails
STEP = 2 * BATCH  # committed mails between one kill and the next
LAST_KILL_AT = COUNT - 5 * BATCH  # kill points stay well before the end of the import
# one kill per run, at most len(PLAN) runs: STEP apart they reach LAST_KILL_AT first
PLAN = (
    "schema",  # the schema is stamped, nothing committed yet
    *(("commit", "mid-batch") * 5),  # right after the commit that passes the target / 1/3 later
)
KILL_PHASE_SECONDS = 120.0  # a bound for a stalled sync, not a schedule: ~15 s here
MESSAGE_ID = re.compile(rb"^Message-ID: <([^>]+)>", re.MULTILINE | re.IGNORECASE)


@dataclass(frozen=True)
class Kill:
    """One SIGKILL of the sync: its kind and the committed mails before and after."""

    kind: str
    seen: int  # stored when the kill was decided
    left: int  # stored once the process was dead

    @property
    def mid_import(self) -> bool:
        return 0 < self.left < COUNT


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
[ingest]
workers = 1  # not per core: every run has a worker to orphan
[[mailbox]]
name = "support"
address = "support@help.example"
imap_host = "127.0.0.1"
imap_port = {server.port}
imap_security = "none"
username = "{user}"
password_env = "INBOXD_TEST_IMAP_PASSWORD"
batch_size = {BATCH}
"""
    )
    return cfg


def sync_cmd(cfg: Path) -> list[str]:
    return [sys.executable, "-m", "inboxd", "--config", str(cfg), "sync", "--once"]


def recording(mails: Iterable[bytes], order: list[str]) -> Iterator[bytes]:
    """Pass mails through, noting their Message-IDs: preload order is UID order."""
    for raw in mails:
        found = MESSAGE_ID.search(raw)
        assert found is not None
        order.append(found.group(1).decode())
        yield raw


def check_committed(db: Path, order: list[str], kill: str) -> int:
    """After a kill: no mail twice, and every UID up to the checkpoint stored
    (the checkpoint commits with its batch). Returns the stored count."""
    snap = snapshot(db)
    assert len(snap.message_ids) == len(set(snap.message_ids)), f"duplicates after {kill}"
    assert snap.quarantined == 0
    stored = set(snap.message_ids)
    assert stored <= set(order), f"unknown mail after {kill}"
    missing = [m for m in order[: snap.checkpoint] if m not in stored]
    assert not missing, f"checkpoint {snap.checkpoint} after {kill} claims {missing[:3]}..."
    return len(snap.message_ids)


def run_to_kill(watch: Watch, kind: str, base: int) -> Progress | None:
    """Wait for the kill point of ``kind`` (``base``: stored at the previous kill);
    the progress seen there, None if the sync ended first."""
    if kind == "schema":
        return watch.until(lambda p: p.schema, "a stamped schema")
    target = min(base + STEP, LAST_KILL_AT)
    if kind == "commit":
        return watch.until(lambda p: p.stored >= target, f"{target} stored")
    assert kind == "mid-batch"
    # three commits seen in this run: two gaps between steady-state batches (the
    # first one after a start waits for the ingest worker to come up)
    seen = watch.until(lambda p: p.stored >= target and len(watch.commits) >= 3, f"{target} stored")
    if seen is not None:
        time.sleep(min(watch.commit_gap(last=2) / 3, 0.5))
    return seen


@pytest.mark.server
@pytest.mark.slow
def test_sigkill_at_observed_progress_loses_and_duplicates_nothing(
    dovecot: DovecotServer, imap_user: str, tmp_path: Path
) -> None:
    threads: list[Thread] = []
    order: list[str] = []
    dovecot.preload(imap_user, "INBOX", recording(stream(COUNT, seed=11, threads=threads), order))
    cfg = write_config(tmp_path, dovecot, imap_user)
    db = tmp_path / "inboxd.db"
    env = {**os.environ, "INBOXD_TEST_IMAP_PASSWORD": dovecot.users[imap_user]}
    log_path = tmp_path / "sync.log"

    kills: list[Kill] = []
    orphans: list[psutil.Process] = []  # workers of a killed main: they must exit by themselves
    base = 0
    deadline = time.monotonic() + KILL_PHASE_SECONDS
    with log_path.open("ab") as log:
        for kind in PLAN:
            if base >= LAST_KILL_AT:
                break
            proc = subprocess.Popen(sync_cmd(cfg), env=env, stdout=log, stderr=log)
            try:
                seen = run_to_kill(Watch(proc, db, deadline), kind, base)
                if seen is not None:
                    orphans += worker_processes(proc.pid)
                    proc.kill()
            finally:
                if proc.poll() is None:  # a failed wait: no stray sync for the next run
                    proc.kill()
                proc.wait(timeout=30)
            assert seen is not None, (
                f"sync ended (rc={proc.returncode}) before the {kind} kill point; "
                + log_path.read_text()[-3000:]
            )
            base = check_committed(db, order, kind)
            kills.append(Kill(kind, seen.stored, base))

        final = subprocess.run(sync_cmd(cfg), env=env, stdout=log, stderr=log, timeout=300)
    assert final.returncode == 0, log_path.read_text()[-3000:]
    between = sum(k.kind == "mid-batch" and k.left == k.seen for k in kills)
    summary = ", ".join(f"{k.kind} {k.seen}->{k.left}" for k in kills)
    print(f"kills: {summary}; mid-batch kills before the next commit: {between}")  # with -s
    assert sum(k.mid_import for k in kills) >= 1, "no kill landed in the middle of an import"
    assert {"commit", "mid-batch"} <= {k.kind for k in kills if k.mid_import}, f"{kills}"
    alive = still_running(orphans)
    assert not alive, f"workers outlived their killed sync: {alive}"

    check_committed(db, order, "the final run")
    engine = make_engine(f"sqlite:///{db}")
    with Session(engine) as s:
        ids = [row[0] for row in s.execute(select(col(Message.message_id)))]
        assert len(ids) == COUNT and len(set(ids)) == COUNT
        assert s.execute(select(func.count()).select_from(Quarantine)).scalar_one() == 0
        pairs = s.execute(select(col(Message.message_id), col(Message.ticket_id)))
        ticket_of = {m: t for m, t in pairs}
        for thread in threads:
            assert len({ticket_of[i] for i in thread.ids}) == 1, thread.subject
        assert s.execute(select(func.count()).select_from(Ticket)).scalar_one() == len(threads)
        (last_uid,) = s.execute(select(func.max(MailboxState.last_uid))).one()
        assert last_uid == COUNT
    engine.dispose()
