"""Run a command and measure it: wall time and the peak RSS of it and its children.

Shared by the bench scripts that time an ``inboxd`` subprocess (its ingest
workers included: their RSS counts, sampled every 50 ms, with the kernel's own
``ru_maxrss`` of the main process as a floor).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

import psutil


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_mb: int
    exit_code: int


def _peak_tree_rss(pid: int, stop: threading.Event, peak: list[int]) -> None:
    """Largest sum of RSS over ``pid`` and its descendants, sampled until ``stop``."""
    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    while not stop.wait(0.05):
        total = 0
        try:
            for proc in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            return
        peak[0] = max(peak[0], total)


def run_measured(
    cmd: Sequence[str], *, stdout: IO[Any], env: Mapping[str, str] | None = None
) -> Measured:
    """Run ``cmd`` to its end, its output into ``stdout`` (a file: nothing to drain)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd), env=dict(env) if env is not None else None, stdout=stdout,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    stop, peak = threading.Event(), [0]
    sampler = threading.Thread(target=_peak_tree_rss, args=(proc.pid, stop, peak))
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    stop.set()
    sampler.join()
    peak_mb = max(peak[0], usage.ru_maxrss * 1024) // (1024 * 1024)
    return Measured(elapsed, peak_mb, os.waitstatus_to_exitcode(status))
