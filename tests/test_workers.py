"""Ingest worker processes: results as if done inline, and a dead worker loses nothing."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import psutil
import pytest
from support.mailgen import generate
from support.workers import kill_workers

from inboxd.core.model import ParsedMessage, ParseFailure
from inboxd.core.parse import parse_many
from inboxd.ingest import workers as workers_mod
from inboxd.ingest.workers import IngestWorkers, default_workers

BAD = b"\x00\x01 this is no mail\r\n"


@pytest.fixture(scope="module")
def mails() -> list[bytes]:
    raws, _threads = generate(30, seed=11)
    return [*raws[:15], BAD, *raws[15:]]


@pytest.fixture
def pool() -> Iterator[IngestWorkers]:
    pool = IngestWorkers(1)
    yield pool
    pool.close()


def test_a_worker_parses_exactly_like_inline(pool: IngestWorkers, mails: list[bytes]) -> None:
    future = pool.submit(parse_many, mails)
    assert future is not None
    got = future.result(timeout=60)
    assert got == parse_many(mails)
    assert isinstance(got[15], ParseFailure) and got[15].reason
    assert all(isinstance(p, ParsedMessage) for i, p in enumerate(got) if i != 15)


def test_no_workers_means_do_it_yourself(mails: list[bytes]) -> None:
    off = IngestWorkers(0)
    assert not off.enabled and off.submit(parse_many, mails) is None
    closed = IngestWorkers(1)
    closed.close()
    assert closed.submit(parse_many, mails) is None


def test_a_killed_worker_is_counted_and_the_pool_rebuilt(
    pool: IngestWorkers, mails: list[bytes], caplog: pytest.LogCaptureFixture
) -> None:
    first = pool.submit(parse_many, mails[:3])
    assert first is not None and len(first.result(timeout=60)) == 3
    assert kill_workers() == 1
    with caplog.at_level(logging.WARNING, logger="inboxd.ingest"):
        doomed = pool.submit(parse_many, mails[:3])
        if doomed is not None:  # submitted before the pool noticed the death
            with pytest.raises(BrokenProcessPool):
                doomed.result(timeout=60)
            pool.broken(BrokenProcessPool("worker died"), doomed)
            pool.broken(BrokenProcessPool("worker died"), doomed)  # counted once
    assert pool.breaks == 1 and "ingest worker failed" in caplog.text
    again = pool.submit(parse_many, mails)
    assert again is not None and again.result(timeout=60) == parse_many(mails)


def test_workers_turn_off_after_repeated_deaths(pool: IngestWorkers, mails: list[bytes]) -> None:
    for _ in range(workers_mod.MAX_BREAKS):
        future = pool.submit(parse_many, mails[:2])
        assert future is not None and future.result(timeout=60)
        kill_workers()
        pool.broken(BrokenProcessPool("worker died"), future)
    assert not pool.enabled
    assert pool.submit(parse_many, mails[:2]) is None


def test_default_workers_leave_one_core_for_the_main_process() -> None:
    assert [default_workers(n) for n in (1, 2, 3, 8, 64)] == [0, 1, 2, 4, 4]


def test_workers_end_when_their_parent_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(
        "import time\n"
        "from inboxd.core.parse import parse_many\n"
        "from inboxd.ingest.workers import IngestWorkers\n"
        "if __name__ == '__main__':\n"
        "    pool = IngestWorkers(1)\n"
        "    pool.submit(parse_many, [b'Subject: x\\r\\n\\r\\nhi\\r\\n']).result(timeout=60)\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "ready"
        children = psutil.Process(parent.pid).children()
        assert any("spawn_main" in " ".join(c.cmdline()) for c in children)
    finally:
        parent.kill()
        parent.wait(timeout=10)
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], f"orphaned workers: {alive}"


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return predicate()


def test_the_pool_lingers_for_the_next_backlog_then_goes(mails: list[bytes]) -> None:
    pool = IngestWorkers(1, linger=1.0)  # long enough that a slow CI never races it
    try:
        with pool.borrowed():
            future = pool.submit(parse_many, mails[:2])
            assert future is not None and len(future.result(timeout=60)) == 2
        assert pool.running  # lingering
        with pool.borrowed():  # the next backlog within the linger keeps the same pool
            time.sleep(1.3)  # past the linger: the timer must have been disarmed
            assert pool.running
            again = pool.submit(parse_many, mails[:2])
            assert again is not None and len(again.result(timeout=60)) == 2
        assert wait_until(lambda: not pool.running), "idle pool kept"
        assert pool.breaks == 0 and pool.enabled  # an idle shutdown is no failure
        with pool.borrowed():
            third = pool.submit(parse_many, mails[:1])
            assert third is not None and len(third.result(timeout=60)) == 1
    finally:
        pool.close()
    assert not pool.running


def test_two_borrowers_keep_the_pool_until_both_are_done(mails: list[bytes]) -> None:
    pool = IngestWorkers(1, linger=0.1)
    try:
        with pool.borrowed():  # a second mailbox's backlog, still going
            with pool.borrowed():
                future = pool.submit(parse_many, mails[:1])
                assert future is not None and future.result(timeout=60)
            time.sleep(0.4)
            assert pool.running  # the first borrower still holds it
        assert wait_until(lambda: not pool.running)
    finally:
        pool.close()
