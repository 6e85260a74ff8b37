"""One APScheduler ``BackgroundScheduler`` for the daemon's periodic jobs.

Every job is an interval job with ``coalesce`` (missed runs fold into one) and
``max_instances=1`` (a slow run is never joined by a second one), on a small
thread pool of its own, so a slow job delays only itself and never ingest,
which runs in threads of its own. A job that raises is logged and runs again
at its next time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger("inboxd.sched")


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    run: Callable[[], object]
    every: float  # seconds
    first_in: float = 0.0  # seconds after start before the first run


class Scheduler:
    def __init__(self, jobs: list[Job], *, threads: int = 4) -> None:
        self.jobs = list(jobs)
        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=threads)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC,
        )
        for job in self.jobs:
            self._scheduler.add_job(
                _logged(job),
                "interval",
                seconds=job.every,
                id=job.name,
                name=job.name,
                next_run_time=datetime.now(UTC) + timedelta(seconds=job.first_in),
            )

    def start(self) -> None:
        self._scheduler.start()
        log.info("scheduler started jobs=%s", ",".join(j.name for j in self.jobs) or "none")

    def shutdown(self, *, wait: bool = True) -> None:
        """Stop scheduling; with ``wait``, let running jobs finish."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)

    def run_now(self, name: str) -> None:
        """Bring a job's next run forward to now (e.g. the sweep after a rules reload)."""
        self._scheduler.modify_job(name, next_run_time=datetime.now(UTC))


def _logged(job: Job) -> Callable[[], None]:
    def run() -> None:
        try:
            job.run()
        except Exception:
            log.exception("job %s failed; it runs again in %.0f s", job.name, job.every)

    return run
