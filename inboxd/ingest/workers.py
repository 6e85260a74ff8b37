"""Worker processes for bulk ingest, so fetching and parsing overlap the storing.

Ingest is CPU-bound Python: reading IMAP FETCH answers (~0.16 ms a mail),
parsing (~0.25 ms), then the database work (~0.7 ms). Threads cannot overlap
these (the GIL), processes can. When a mailbox has more than one batch
pending, the fetcher hands each batch of UIDs to a worker, which fetches them
over its own IMAP connection and parses them, while the main process stores
the batch before. Small batches (a mail announced by IDLE, an LMTP delivery)
stay in the main process: a round trip to a worker would only add latency.

A worker that dies (a crash in a C extension, the OOM killer) only costs its
batch the head start: the fetcher fetches and parses that batch itself, where
a bad mail is quarantined as usual, and the pool is rebuilt for the next one.
After ``MAX_BREAKS`` deaths the workers stay off. Workers are started with
``spawn``: the daemon has threads, and forking a threaded process can copy a
lock some other thread held.

A backlog is mostly a start-up event (first sync of a full mailbox, catching
up after downtime); afterwards IDLE brings mail a few at a time. So the pool
is shut down once no mailbox has used it for ``linger`` seconds, rather than
keeping its processes (~60 MB each) and their IMAP connections for the life
of the daemon; the next backlog starts a new one (about a second).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any, TypeVar

log = logging.getLogger("inboxd.ingest")

A = TypeVar("A")
R = TypeVar("R")

MAX_BREAKS = 3
LINGER = 60.0  # seconds an unused pool is kept for the next backlog
# errors that mean the pool, not the job, failed: BrokenProcessPool (a worker
# died), RuntimeError (submit after shutdown, when close raced with a sync)
POOL_ERRORS: tuple[type[BaseException], ...] = (BrokenProcessPool, RuntimeError)


def default_workers(cpus: int | None = None) -> int:
    """One core stays with the main process (database work, IMAP, SMTP); the rest
    fetch and parse. None on a single core: there would be nothing to overlap."""
    cpus = cpus if cpus is not None else (os.cpu_count() or 1)
    return max(0, min(cpus - 1, 4))


def exit_with_parent(parent: int, interval: float = 1.0) -> None:
    """Worker initializer: a thread that ends the worker once ``parent`` is gone.
    A killed daemon (SIGKILL, OOM) never shuts its pool down, and an orphaned
    worker would otherwise wait on its task queue forever."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class IngestWorkers:
    """A lazily started process pool that turns itself off after repeated deaths.
    Thread-safe: every mailbox thread of the daemon shares one."""

    def __init__(self, workers: int | None = None, *, linger: float = LINGER) -> None:
        self.workers = default_workers() if workers is None else workers
        self.linger = linger
        self.breaks = 0
        self._borrowers = 0  # backlog syncs using the pool right now
        self._idle_timer: threading.Timer | None = None
        self._executor: ProcessPoolExecutor | None = None
        self._generation = 0  # which executor: one death is counted once
        self._origin: weakref.WeakKeyDictionary[Future[Any], int] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._closed = False

    @property
    def enabled(self) -> bool:
        return self.workers > 0 and self.breaks < MAX_BREAKS and not self._closed

    @property
    def running(self) -> bool:
        """Whether worker processes exist now (started and not shut down)."""
        return self._executor is not None

    @contextmanager
    def borrowed(self) -> Iterator[IngestWorkers]:
        """Hold the pool for one backlog sync; the last one out arms the idle
        shutdown, the next one in disarms it."""
        with self._lock:
            self._borrowers += 1
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
        try:
            yield self
        finally:
            with self._lock:
                self._borrowers -= 1
                if self._borrowers == 0 and self._executor is not None and not self._closed:
                    timer = threading.Timer(self.linger, self._shut_down_if_idle)
                    timer.daemon = True
                    timer.name = "ingest-workers-idle"
                    self._idle_timer = timer
                    timer.start()

    def _shut_down_if_idle(self) -> None:
        with self._lock:
            if self._borrowers or self._executor is None:
                return
            executor, self._executor = self._executor, None
            self._idle_timer = None
        log.info("ingest workers idle for %.0f s: shutting them down", self.linger)
        executor.shutdown(wait=True, cancel_futures=True)

    def submit(self, fn: Callable[[A], R], arg: A) -> Future[R] | None:
        """``fn(arg)`` in a worker, or None when the workers are off (do it yourself).
        ``fn`` must be a module-level function and ``arg`` picklable."""
        if not self.enabled:
            return None
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=exit_with_parent,
                    initargs=(os.getpid(),),
                )
                self._generation += 1
            generation = self._generation
            try:
                future = self._executor.submit(fn, arg)
            except POOL_ERRORS as exc:
                failed = exc
            else:
                self._origin[future] = generation
                return future
        self._drop(failed, generation)
        return None

    def broken(self, exc: BaseException, future: Future[Any]) -> None:
        """``future`` failed with one of ``POOL_ERRORS``: drop its pool (the next
        submit starts a new one) and count the break, once per pool."""
        with self._lock:
            generation = self._origin.get(future, -1)
        self._drop(exc, generation)

    def _drop(self, exc: BaseException, generation: int) -> None:
        with self._lock:
            if self._closed or generation != self._generation or self._executor is None:
                return  # closed, or this pool's failure was counted already
            self.breaks += 1
            executor, self._executor = self._executor, None
        log.warning(
            "ingest worker failed (%s: %s); that batch is done in the main process%s",
            type(exc).__name__,
            exc,
            "" if self.enabled else "; ingest workers turned off",
        )
        executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
