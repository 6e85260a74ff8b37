"""SignalPipe: how the daemon's main loop learns of SIGTERM/SIGINT/SIGHUP.

The storm test runs tests/support/signal_storm.py in a child process: a busy
thread contends for the GIL while another process sends thousands of SIGHUPs
and then a SIGTERM. Run with ``event`` (the old handler-sets-an-Event design)
that harness hangs or dies in about 3 runs of 5 here; with the pipe it must
finish every time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from inboxd.signalpipe import SignalPipe

STORM_SCRIPT = Path(__file__).resolve().parent / "support" / "signal_storm.py"
ROOT = STORM_SCRIPT.parents[2]


@pytest.fixture
def pipe() -> Iterator[SignalPipe]:
    signals = SignalPipe((signal.SIGHUP, signal.SIGUSR1))
    try:
        yield signals
    finally:
        signals.close()


def test_caught_signals_come_out_in_order(pipe: SignalPipe) -> None:
    os.kill(os.getpid(), signal.SIGUSR1)
    os.kill(os.getpid(), signal.SIGHUP)
    assert pipe.wait(timeout=5) == [signal.SIGUSR1, signal.SIGHUP]


def test_wait_times_out_empty(pipe: SignalPipe) -> None:
    assert pipe.wait(timeout=0.01) == []


def test_a_signal_not_asked_for_is_not_handed_out(pipe: SignalPipe) -> None:
    previous = signal.signal(signal.SIGUSR2, lambda *_: None)
    try:
        os.kill(os.getpid(), signal.SIGUSR2)
        os.kill(os.getpid(), signal.SIGHUP)
        assert pipe.wait(timeout=5) == [signal.SIGHUP]
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_close_puts_back_the_previous_handlers() -> None:
    before = signal.getsignal(signal.SIGHUP)
    before_fd = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(before_fd)
    signals = SignalPipe((signal.SIGHUP,))
    assert signal.getsignal(signal.SIGHUP) is not before
    signals.close()
    assert signal.getsignal(signal.SIGHUP) is before
    assert signal.set_wakeup_fd(before_fd) == before_fd


@pytest.mark.parametrize("trial", range(3))
def test_main_loop_survives_a_sighup_storm_under_gil_contention(trial: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(STORM_SCRIPT), "pipe", "3000"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    reloads = int(proc.stdout.strip().removeprefix("reloads="))
    assert 1 <= reloads <= 3000
