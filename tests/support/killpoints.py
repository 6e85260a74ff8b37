"""Kill points chosen from observed progress, for SIGKILL tests of ``inboxd sync``.

Killing after a fixed delay lands wherever the machine's speed puts it: all of
a fast import, none of a slow one. Reading the database instead (read-only,
beside the writer; WAL lets both run) tells how far the import has got, so a
test can kill after N more committed mails, right after a batch commit or
between two commits, whatever the load. Every wait is bounded by a deadline.
"""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
from sqlmodel import SQLModel

from inboxd.db.tables import MailboxState, Message, Quarantine

POLL_SECONDS = 0.005  # a batch of 100 mails takes ~50 ms to store here: poll well inside it
BUSY_SECONDS = 5.0


def _table(model: type[SQLModel]) -> str:
    name = model.__tablename__
    assert isinstance(name, str)
    return name


MESSAGE, CHECKPOINT, QUARANTINE = _table(Message), _table(MailboxState), _table(Quarantine)


class Stalled(AssertionError):
    """The sync made no progress to the awaited point before the deadline."""


@dataclass(frozen=True)
class Progress:
    """One consistent read of the database (a single read transaction)."""

    schema: bool  # tables created and stamped by Alembic
    stored: int  # committed message rows
    checkpoint: int  # highest mailbox_state.last_uid, 0 without a row
    at: float  # time.monotonic() of the read


def _connect(db: Path) -> sqlite3.Connection:
    # isolation_level=None: our explicit BEGIN makes the reads one snapshot
    return sqlite3.connect(
        f"file:{db}?mode=ro", uri=True, timeout=BUSY_SECONDS, isolation_level=None
    )


def read_progress(db: Path) -> Progress:
    """How far the import has got; ``schema`` False until the schema is stamped
    (no file yet, or "no such table" while it is being created)."""
    now = time.monotonic()
    if not db.exists():
        return Progress(False, 0, 0, now)
    conn = _connect(db)
    try:
        conn.execute("BEGIN")
        # alembic_version is filled last (create_all, then stamp)
        stamped = conn.execute("SELECT count(*) FROM alembic_version").fetchone()[0] > 0
        stored = conn.execute(f"SELECT count(*) FROM {MESSAGE}").fetchone()[0]
        checkpoint = conn.execute(
            f"SELECT coalesce(max(last_uid), 0) FROM {CHECKPOINT}"
        ).fetchone()[0]
        conn.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise
        return Progress(False, 0, 0, now)
    finally:
        conn.close()
    return Progress(stamped, int(stored), int(checkpoint), now)


@dataclass(frozen=True)
class Snapshot:
    """What a killed sync left committed: the stored Message-IDs and the checkpoint."""

    message_ids: list[str]
    checkpoint: int
    quarantined: int


def snapshot(db: Path) -> Snapshot:
    """Read the committed state after a kill (SQLite replays nothing uncommitted)."""
    conn = _connect(db)
    try:
        conn.execute("BEGIN")
        ids = [row[0] for row in conn.execute(f"SELECT message_id FROM {MESSAGE}")]
        (checkpoint,) = conn.execute(
            f"SELECT coalesce(max(last_uid), 0) FROM {CHECKPOINT}"
        ).fetchone()
        (quarantined,) = conn.execute(f"SELECT count(*) FROM {QUARANTINE}").fetchone()
        conn.execute("COMMIT")
    finally:
        conn.close()
    return Snapshot(ids, int(checkpoint), int(quarantined))


def worker_processes(pid: int) -> list[psutil.Process]:
    """The ingest pool workers of process ``pid`` (spawned, so their command line
    names ``spawn_main``; the resource tracker does not)."""
    found: list[psutil.Process] = []
    try:
        children = psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return found
    for child in children:
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
    return found


def _running(proc: psutil.Process) -> bool:
    # a dead worker stays a zombie until its parent (not us) reaps it
    try:
        return bool(proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def still_running(procs: list[psutil.Process], timeout: float = 10.0) -> list[psutil.Process]:
    """Wait up to ``timeout`` for ``procs`` to end; those still running then."""
    deadline = time.monotonic() + timeout
    alive = [p for p in procs if _running(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if _running(p)]
    return alive


class Watch:
    """Polls one running sync and its database until a point of progress.

    Remembers when the stored count changed, so a caller can estimate the time
    between two batch commits and kill in the middle of one.
    """

    def __init__(
        self, proc: subprocess.Popen[bytes], db: Path, deadline: float, poll: float = POLL_SECONDS
    ) -> None:
        self.proc = proc
        self.db = db
        self.deadline = deadline
        self.poll = poll
        self.last: Progress | None = None
        self.commits: list[float] = []  # monotonic times a new stored count was first seen

    def read(self) -> Progress:
        progress = read_progress(self.db)
        if self.last is not None and progress.stored != self.last.stored:
            self.commits.append(progress.at)
        self.last = progress
        return progress

    def until(self, done: Callable[[Progress], bool], what: str) -> Progress | None:
        """The first read for which ``done`` holds while the process still runs;
        None when the process exited first. Raises Stalled at the deadline."""
        while True:
            progress = self.read()
            if self.proc.poll() is not None:
                return None
            if done(progress):
                return progress
            if time.monotonic() > self.deadline:
                raise Stalled(f"sync did not reach {what} in time; last seen {progress}")
            time.sleep(self.poll)

    def commit_gap(self, last: int = 0, default: float = 0.05) -> float:
        """Shortest seconds between two observed batch commits in this run (among
        the ``last`` gaps when given): a delay that stays short of the next commit."""
        gaps = [b - a for a, b in zip(self.commits, self.commits[1:], strict=False)][-last:]
        return min(gaps) if gaps else default
