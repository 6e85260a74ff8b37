"""Parsing in worker processes, so a bulk import parses while it stores.

Ingest is CPU-bound Python on one core: parse (~0.25 ms a mail), then the
database work (~0.7 ms). Threads cannot overlap the two (the GIL), processes
can. While the main thread stores batch N, the IMAP prefetch thread hands
batch N+1 to a worker process here and waits for its parsed form, so batch
N+1 arrives parsed. Small batches (a mail announced by IDLE, an LMTP delivery)
are parsed inline: a round trip to a worker would only add latency.

A worker that dies (a parser crash in a C extension, the OOM killer) only
costs that batch its head start: the batch is parsed inline, where any bad
mail is quarantined as usual, and the pool is rebuilt for the next batch.
After ``MAX_BREAKS`` deaths the pool stays off and everything parses inline.
Workers are started with ``spawn``: the daemon has threads, and forking a
threaded process can copy a lock some other thread held.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from inboxd.core.model import ParsedMessage, ParseFailure
from inboxd.core.parse import DEFAULT_MAX_BYTES, parse_many

log = logging.getLogger("inboxd.ingest")

MAX_BREAKS = 3
MIN_BATCH = 32  # below this, parsing inline beats the round trip
WORKER_TIMEOUT = 600.0  # a batch a worker has not parsed by then is parsed inline

Parsed = ParsedMessage | ParseFailure


def default_workers(cpus: int | None = None) -> int:
    """One core stays with the main process (database work, IMAP, SMTP); the rest
    parse. None on a single core: there would be nothing to overlap with."""
    cpus = cpus if cpus is not None else (os.cpu_count() or 1)
    return max(0, min(cpus - 1, 4))


class ParsePool:
    """``parse(raws)``: the parsed mails in order, or None when the caller should
    parse inline (batch too small, pool off or broken). Thread-safe."""

    def __init__(
        self,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        workers: int | None = None,
        min_batch: int = MIN_BATCH,
    ) -> None:
        self.max_bytes = max_bytes
        self.workers = default_workers() if workers is None else workers
        self.min_batch = min_batch
        self.breaks = 0
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    @property
    def enabled(self) -> bool:
        return self.workers > 0 and self.breaks < MAX_BREAKS and not self._closed

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=self.workers, mp_context=multiprocessing.get_context("spawn")
                )
            return self._executor

    def parse(self, raws: Sequence[bytes]) -> list[Parsed] | None:
        if len(raws) < self.min_batch or not self.enabled:
            return None
        try:
            pool = self._pool()
            futures: list[Future[list[Parsed]]] = [
                pool.submit(parse_many, list(part), self.max_bytes)
                for part in _split(raws, self.workers)
            ]
            parsed: list[Parsed] = []
            for future in futures:
                parsed.extend(future.result(timeout=WORKER_TIMEOUT))
        except (BrokenProcessPool, TimeoutError, OSError, RuntimeError) as exc:
            # RuntimeError: submit after shutdown (close raced with a fetch)
            self._broken(exc)
            return None
        if len(parsed) != len(raws):  # never expected; inline parsing is always right
            log.error("parse worker returned %d results for %d mails", len(parsed), len(raws))
            return None
        return parsed

    def _broken(self, exc: BaseException) -> None:
        with self._lock:
            if self._closed:
                return
            self.breaks += 1
            executor, self._executor = self._executor, None
        log.warning(
            "parse worker failed (%s: %s); parsing this batch inline%s",
            type(exc).__name__,
            exc,
            "" if self.enabled else "; parse workers turned off",
        )
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


def _split(items: Sequence[bytes], parts: int) -> list[Sequence[bytes]]:
    """``items`` in ``parts`` contiguous slices of near-equal length (none empty)."""
    parts = max(1, min(parts, len(items)))
    size, extra = divmod(len(items), parts)
    out = []
    start = 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        out.append(items[start:end])
        start = end
    return out
