"""Killing this process's ingest worker processes, as an OOM kill or a crash would."""

from __future__ import annotations

import signal

import psutil


def kill_workers() -> int:
    """SIGKILL this process's pool workers (not the resource tracker); how many."""
    procs = [p for p in psutil.Process().children() if "spawn_main" in " ".join(p.cmdline())]
    for proc in procs:
        proc.send_signal(signal.SIGKILL)
    psutil.wait_procs(procs, timeout=10)
    return len(procs)
