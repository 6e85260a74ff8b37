"""The scheduler runs its jobs periodically, never two runs of one job at once."""

from __future__ import annotations

import threading
import time

from inboxd.sched.scheduler import Job, Scheduler


def wait_for(predicate: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


def test_jobs_run_repeatedly_and_a_failing_job_keeps_running() -> None:
    runs: list[str] = []

    def failing() -> None:
        runs.append("boom")
        raise RuntimeError("job bug")

    sched = Scheduler([Job("tick", lambda: runs.append("tick"), 0.05), Job("bad", failing, 0.05)])
    sched.start()
    try:
        assert wait_for(lambda: runs.count("tick") >= 3 and runs.count("boom") >= 3)
    finally:
        sched.shutdown()


def test_a_slow_job_never_overlaps_itself_or_blocks_the_others() -> None:
    active, most, fast = [0], [0], [0]
    lock = threading.Lock()
    release = threading.Event()

    def slow() -> None:
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        release.wait(2.0)
        with lock:
            active[0] -= 1

    def quick() -> None:
        fast[0] += 1

    sched = Scheduler([Job("slow", slow, 0.02), Job("quick", quick, 0.02)])
    sched.start()
    try:
        assert wait_for(lambda: fast[0] >= 10)  # runs while slow is stuck
        assert most[0] == 1
    finally:
        release.set()
        sched.shutdown()
    assert most[0] == 1


def test_run_now_brings_a_job_forward() -> None:
    ran = threading.Event()
    sched = Scheduler([Job("later", ran.set, 3600.0, first_in=3600.0)])
    sched.start()
    try:
        assert not ran.wait(0.2)
        sched.run_now("later")
        assert ran.wait(5.0)
    finally:
        sched.shutdown()
