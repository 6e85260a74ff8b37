"""The thread loop every queue drain runs (mail outbox, Slack notices).

Recover rows a dead process left ``sending``, then a round every ``interval``
seconds or as soon as ``wake`` is called; a full round (as many rows as one
round takes) goes again at once. A database or remote failure is logged and
retried next round, so the thread never dies; ``stop`` ends it after the row in
flight (call ``wake`` after setting it to end the wait at once).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol


class RoundReport(Protocol):
    @property
    def claimed(self) -> int: ...
    @property
    def released(self) -> int: ...


class DrainLoop:
    """Base of the drains; subclasses provide ``recover`` and ``run_once``."""

    name = "drain"
    max_per_run: int
    should_stop: Callable[[], bool]  # True once the daemon is stopping

    def __init__(self) -> None:
        self._wake = threading.Event()

    def wake(self) -> None:
        """Run now (rows were committed, or the daemon is stopping)."""
        self._wake.set()

    def recover(self) -> int:
        raise NotImplementedError

    def run_once(self) -> RoundReport:
        raise NotImplementedError

    def run(self, stop: threading.Event, *, interval: float = 5.0) -> None:
        log = logging.getLogger(f"inboxd.{self.name}")
        self.should_stop = stop.is_set
        try:
            self.recover()
        except Exception:
            log.exception("%s recover failed; rows left sending wait for their lease", self.name)
        while not stop.is_set():
            full = False
            try:
                report = self.run_once()
                full = report.claimed >= self.max_per_run and not report.released
            except Exception:
                log.exception("%s run failed; retrying in %.0f s", self.name, interval)
            if not full:
                self._wake.wait(interval)
            self._wake.clear()
