"""IMAP fetcher for one configured mailbox: UID-based, commit before acknowledge.

One synchronous ``MailboxFetcher`` per mailbox, run in its own thread by the
daemon. The rules that keep mail from being lost or doubled:

* Fetch by UID above the stored checkpoint, never by \\Unseen or sequence
  number: mail read on a phone or deleted by someone still gets imported.
* ``BODY.PEEK[]`` never sets \\Seen; ``after_import`` (seen / move) is applied
  only after ``sink.store_batch`` committed the batch and its checkpoint. A
  crash in between leaves mail at UIDs <= checkpoint in the folder; the next
  connection applies ``after_import`` to those first.
* A UIDVALIDITY change rescans from UID 1; the sink dedupes.
* Any error closes the connection and reconnects with capped exponential
  backoff; the thread never dies of a server or database error.
* A backlog of several batches is fetched and parsed by the ingest worker
  processes (``fetchjob``) while this thread stores, in UID order; without
  workers, batch N+1 is fetched by a prefetch thread while batch N is stored
  (IMAP commands serialized by a lock). Either is stopped before an error or
  a stop leaves ``_sync_folder``.
* With a ``lease`` (several daemons on one database) the fetcher connects only
  while it holds the mailbox's lease, renews it from its loop and in each
  batch's transaction, and gives it up when it stops (see ``lease``).
* No announcement is lost to imaplib: an EXISTS that came with a SEARCH answer
  means search again, and one read along with IDLE's continuation means sync.

Connection plumbing is in ``imapconn``; what a worker runs is in ``fetchjob``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import queue
import random
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from inboxd.config import MailboxConfig
from inboxd.core.parse import DEFAULT_MAX_BYTES
from inboxd.ingest.fetchjob import FetchJob, fetch_and_parse
from inboxd.ingest.imapconn import (
    CONNECT_TIMEOUT,
    NETWORK_ERRORS,
    close_client,
    connect,
    fetch_batch,
    fetch_sizes,
    folder_state,
    key_text,
)
from inboxd.ingest.lease import LeaseLost, MailboxLease
from inboxd.ingest.sink import FetchedMail, MailboxSink
from inboxd.ingest.workers import POOL_ERRORS, IngestWorkers
from inboxd.metrics import HEALTH

T = TypeVar("T")

LOGGER_NAME = "inboxd.imap"
IDLE_RENEW = 25 * 60.0  # RFC 2177: servers may drop an IDLE after 29 min
IDLE_SLICE = 1.0  # longest single wait, so ``stop`` is noticed quickly
BACKOFF_BASE = 1.0
BACKOFF_CAP = 300.0
_QUICK_EMPTY_LIMIT = 3  # idle_check returning nothing at once this often = peer closed
_RECOVER_CHUNK = 1000

# a worker's result did not come: the pool failed, or the wait for it timed out
_POOL_OR_WAIT_ERRORS: tuple[type[BaseException], ...] = (*POOL_ERRORS, TimeoutError)


@dataclass(frozen=True, slots=True)
class SyncResult:
    fetched: int = 0
    batches: int = 0
    uidvalidity_changed: bool = False

    def __add__(self, other: SyncResult) -> SyncResult:
        return SyncResult(
            self.fetched + other.fetched,
            self.batches + other.batches,
            self.uidvalidity_changed or other.uidvalidity_changed,
        )


# -- pure helpers --------------------------------------------------------------


def uids_after(found: Iterable[int], last_uid: int) -> list[int]:
    """UIDs above the checkpoint, ascending. ``UID N:*`` always answers the highest
    existing UID even when it is <= N, so the server's answer must be filtered."""
    return sorted({int(uid) for uid in found if int(uid) > last_uid})


def chunks(items: Sequence[int], size: int) -> Iterator[list[int]]:
    if size < 1:
        raise ValueError("size must be >= 1")
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


@dataclass(frozen=True, slots=True)
class Batch:
    """UIDs fetched whole, and (uid, size) of mail over ``max_bytes``: only its
    headers are fetched, for a quarantine row by reference."""

    uids: tuple[int, ...]
    oversize: tuple[tuple[int, int], ...] = ()

    @property
    def last_uid(self) -> int:
        return max((*self.uids, *(uid for uid, _ in self.oversize)))


def plan_batches(
    uids: Sequence[int],
    sizes: dict[int, int],
    *,
    batch_size: int,
    batch_bytes: int,
    max_bytes: int,
) -> list[Batch]:
    """``uids`` (ascending) in batches of at most ``batch_size`` mails and ``batch_bytes``
    bytes (a mail bigger than that alone still gets a batch); a mail over ``max_bytes``
    rides along in the batch of its neighbours at no cost, so the checkpoint passes it.
    A UID without a size was expunged meanwhile: left out."""
    plan: list[Batch] = []
    whole: list[int] = []
    over: list[tuple[int, int]] = []
    total = 0
    for uid in uids:
        size = sizes.get(uid)
        if size is None:
            continue
        if size > max_bytes:
            over.append((uid, size))
            continue
        if whole and (len(whole) >= batch_size or total + size > batch_bytes):
            plan.append(Batch(tuple(whole), tuple(over)))
            whole, over, total = [], [], 0
        whole.append(uid)
        total += size
    if whole or over:
        plan.append(Batch(tuple(whole), tuple(over)))
    return plan


def backoff_delay(
    attempt: int, rand: float, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP
) -> float:
    """Delay before reconnect ``attempt`` (0-based): base * 2**attempt capped at ``cap``,
    scaled into its upper half by ``rand`` in [0, 1) so many fetchers do not
    reconnect in lockstep after a server restart."""
    ceiling = min(cap, base * 2.0 ** min(attempt, 64))
    return ceiling * (0.5 + 0.5 * min(max(rand, 0.0), 1.0))


def has_new_mail(responses: Iterable[Any]) -> bool:
    """True when IDLE responses announce mail (``(n, b'EXISTS')`` or ``(n, b'RECENT')``)."""
    for resp in responses:
        if isinstance(resp, tuple) and len(resp) >= 2 and key_text(resp[1]) in ("EXISTS", "RECENT"):
            return True
    return False


def said_bye(responses: Iterable[Any]) -> bool:
    return any(isinstance(r, tuple) and r and key_text(r[0]) == "BYE" for r in responses)


def kv(event: str, **fields: object) -> str:
    """One log line: ``event key=value ...``; values with spaces or quotes are JSON-quoted."""
    parts = [event]
    for key, value in fields.items():
        text = str(value)
        if not text or not text.isprintable() or any(c in text for c in ' "='):
            text = json.dumps(text)
        parts.append(f"{key}={text}")
    return " ".join(parts)


def _cancel(pending: deque[tuple[FetchJob, Future[list[FetchedMail]]]]) -> None:
    for _job, future in pending:
        future.cancel()
    pending.clear()


# -- the fetcher ---------------------------------------------------------------


class MailboxFetcher:
    """Fetch one mailbox's folder (and optional sent folder) into a ``MailboxSink``."""

    def __init__(
        self,
        config: MailboxConfig,
        sink: MailboxSink,
        *,
        password: str | None,
        log: logging.Logger | None = None,
        ssl_context: ssl.SSLContext | None = None,
        rand: Callable[[], float] = random.random,
        backoff_base: float = BACKOFF_BASE,
        backoff_cap: float = BACKOFF_CAP,
        workers: IngestWorkers | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        lease: MailboxLease | None = None,
    ) -> None:
        """``workers``: processes that fetch and parse a backlog of several batches
        (``max_bytes`` as the pipeline's parser uses it), while this thread stores.
        ``lease``: fetch only while this daemon holds the mailbox (``run`` only)."""
        self.config = config
        self._lease = lease
        self.sink = sink
        self._workers = workers
        self._max_bytes = max_bytes
        self._password = password
        self.log = log or logging.getLogger(LOGGER_NAME)
        self._ssl_context = ssl_context
        self._rand = rand
        self._backoff = (backoff_base, backoff_cap)
        self._warned_validity: dict[str, int] = {}
        self.alive_at = time.monotonic()  # last sign of progress, for a watchdog

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def folders(self) -> list[str]:
        """Folders to sync; the main folder last, so it stays selected for IDLE."""
        sent = self.config.sent_folder
        return (
            [sent, self.config.folder]
            if sent and sent != self.config.folder
            else [self.config.folder]
        )

    # -- public API ----------------------------------------------------------

    def sync_once(self, stop: threading.Event | None = None) -> SyncResult:
        """Connect, fetch everything pending in every folder, log out."""
        client = self._connect()
        try:
            result = self._sync_all(client, recover=True, stop=stop)
        except BaseException:
            close_client(client, graceful=False)
            raise
        close_client(client, graceful=True)
        return result

    def run(self, stop: threading.Event) -> None:
        """Sync, wait (IDLE or poll), repeat until ``stop``; reconnect on any error."""
        self.log.info(kv("fetcher_start", mailbox=self.name, folders=",".join(self.folders)))
        try:
            self._run(stop)
        finally:
            if self._lease is not None:
                self._lease.release()
        self.log.info(kv("fetcher_stop", mailbox=self.name))

    def _run(self, stop: threading.Event) -> None:
        lease = self._lease
        attempt = 0
        while not stop.is_set():
            client = None
            failed = False
            try:
                standby = functools.partial(HEALTH.standby, self.name)
                if lease is not None and not lease.acquire(stop, on_held=standby):
                    break
                client = self._connect()
                recover = True
                while not stop.is_set():
                    self._sync_all(client, recover=recover, stop=stop)
                    recover = False
                    attempt = 0
                    if not stop.is_set():
                        self._wait(client, stop)
            except LeaseLost as exc:  # another daemon fetches it now: wait for the lease
                failed = True  # maybe mid-IDLE: no LOGOUT
                self.log.warning(kv("lease_lost", mailbox=self.name, detail=exc))
                continue
            except Exception as exc:
                failed = True
                self._log_error(exc)
            finally:
                if client is not None:
                    close_client(client, graceful=not failed)
            if stop.is_set():
                break
            delay = backoff_delay(attempt, self._rand(), *self._backoff)
            attempt += 1
            self.log.info(
                kv("reconnect_wait", mailbox=self.name, attempt=attempt, delay=f"{delay:.2f}")
            )
            stop.wait(delay)

    # -- connection ----------------------------------------------------------

    def _connect(self) -> Any:
        cfg = self.config
        client = connect(cfg, self._password, self._ssl_context)
        HEALTH.up(self.name)
        self.log.info(kv("connected", mailbox=self.name, host=cfg.imap_host, port=cfg.imap_port))
        return client

    def _log_error(self, exc: Exception) -> None:
        HEALTH.down(self.name, f"{type(exc).__name__}: {exc}")  # the outage alert reads it
        if isinstance(exc, NETWORK_ERRORS):
            self.log.warning(
                kv("connection_error", mailbox=self.name, error=type(exc).__name__, detail=exc)
            )
        else:
            self.log.exception(kv("fetch_error", mailbox=self.name, error=type(exc).__name__))

    # -- syncing -------------------------------------------------------------

    def _sync_all(self, client: Any, *, recover: bool, stop: threading.Event | None) -> SyncResult:
        target = self.config.move_target
        if recover and target and not client.folder_exists(target):
            client.create_folder(target)
        total = SyncResult()
        for folder in self.folders:
            primary = folder == self.config.folder
            total += self._sync_folder(client, folder, primary=primary, recover=recover, stop=stop)
        self.alive_at = time.monotonic()
        HEALTH.synced(self.name, time.time())
        self._keep_lease()
        return total

    def _sync_folder(
        self,
        client: Any,
        folder: str,
        *,
        primary: bool,
        recover: bool,
        stop: threading.Event | None,
    ) -> SyncResult:
        action = self.config.after_import if primary else "keep"
        state = folder_state(client.select_folder(folder, readonly=action == "keep"))
        checkpoint = self.sink.checkpoint(self.name, folder)
        changed = checkpoint is not None and checkpoint.uidvalidity != state.uidvalidity
        last = checkpoint.last_uid if checkpoint is not None and not changed else 0
        if checkpoint is not None and changed:
            self._warn_uidvalidity(folder, checkpoint.uidvalidity, state.uidvalidity)
        recovered = 0
        if recover and action != "keep" and last > 0:
            recovered = self._recover(client, folder, action, last)
        if not recovered and state.uidnext is not None and state.uidnext <= last + 1:
            return SyncResult(uidvalidity_changed=changed)  # nothing new; skip the SEARCH
        fetched = batches = 0
        # Repeat until a SEARCH finds nothing new: an EXISTS the server reports with
        # a FETCH/STORE/MOVE answer is swallowed by imaplib, so the last command
        # before IDLE must be a SEARCH, or that mail would wait for the IDLE renewal.
        # An EXISTS that comes with the SEARCH answer itself (mail delivered while
        # the server ran it) is not covered by its result: search once more.
        while True:
            _take_announced(client)
            uids = uids_after(client.search(["UID", f"{last + 1}:*"]), last)
            if not uids:
                if _take_announced(client):
                    continue
                break
            # The connection is shared by the prefetch thread (FETCH) and this one
            # (after_import): one IMAP command at a time.
            io_lock = threading.Lock()
            plan = self._plan(client, uids)
            several = len(plan) > 1
            offload = several and self._offloadable()
            if offload:
                source = self._fetch_by_workers(
                    client, folder, state.uidvalidity, plan, stop, io_lock
                )
            else:
                source = self._fetch_batches(client, plan, stop, io_lock)
            with _ahead(source, self.name, prefetch=several and not offload) as ahead:
                for mails in ahead:
                    if stop is not None and stop.is_set():
                        return SyncResult(fetched, batches, changed)
                    self._store(client, folder, state.uidvalidity, action, mails, io_lock)
                    fetched += len(mails)
                    batches += 1
            last = uids[-1]  # UIDs are never reused: an expunged one is gone for good
        return SyncResult(fetched, batches, changed)

    def _plan(self, client: Any, uids: list[int]) -> list[Batch]:
        """Batches by count and bytes, from RFC822.SIZE read before any body: a poison
        mail (1 GB) is never fetched, only its headers (see ``plan_batches``)."""
        cfg = self.config
        plan = plan_batches(
            uids,
            fetch_sizes(client, uids),
            batch_size=cfg.batch_size,
            batch_bytes=cfg.batch_bytes,
            max_bytes=self._max_bytes,
        )
        for batch in plan:
            for uid, size in batch.oversize:
                self.log.warning(
                    kv("oversize", mailbox=self.name, uid=uid, size=size, limit=self._max_bytes)
                )
        return plan

    def _fetch_batches(
        self,
        client: Any,
        plan: list[Batch],
        stop: threading.Event | None,
        io_lock: threading.Lock,
    ) -> Iterator[list[FetchedMail]]:
        """Each planned batch: bodies by ``BODY.PEEK[]``, heads of oversize mail (empty
        batches skipped)."""
        for batch in plan:
            if stop is not None and stop.is_set():
                return
            mails = fetch_batch(client, list(batch.uids), batch.oversize, io_lock)
            if mails:
                yield mails

    def _offloadable(self) -> bool:
        # a custom SSL context (tests, pinned CAs) cannot be pickled to a worker
        workers = self._workers
        return workers is not None and workers.enabled and self._ssl_context is None

    def _fetch_by_workers(
        self,
        client: Any,
        folder: str,
        uidvalidity: int,
        plan: list[Batch],
        stop: threading.Event | None,
        io_lock: threading.Lock,
    ) -> Iterator[list[FetchedMail]]:
        """Batches fetched and parsed by the ingest workers, in UID order, up to one
        more in flight than there are workers. The first batch is fetched here
        (and parsed by the pipeline) while the workers start on the next ones:
        a worker would take as long, and a new one first needs its start-up.
        When the pool fails, this batch and the rest are fetched here too; a
        worker's IMAP or network error is raised here, as a local one would be."""
        workers = self._workers
        assert workers is not None
        todo = deque(
            FetchJob(
                self.config,
                self._password,
                folder,
                uidvalidity,
                b.uids,
                self._max_bytes,
                b.oversize,
            )
            for b in plan
        )
        first: FetchJob | None = todo.popleft()
        pending: deque[tuple[FetchJob, Future[list[FetchedMail]]]] = deque()
        local = False
        with workers.borrowed():  # the pool lingers a while after the last backlog
            try:
                while first is not None or todo or pending:
                    if stop is not None and stop.is_set():
                        return
                    while not local and todo and len(pending) <= workers.workers:
                        future = workers.submit(fetch_and_parse, todo[0])
                        if future is None:
                            local = True
                            break
                        pending.append((todo.popleft(), future))
                    if first is not None:
                        mails = fetch_batch(client, list(first.uids), first.oversize, io_lock)
                        first = None
                    elif local and not pending:
                        job = todo.popleft()
                        mails = fetch_batch(client, list(job.uids), job.oversize, io_lock)
                    else:
                        job, future = pending.popleft()
                        try:
                            mails = future.result(timeout=self._worker_timeout())
                        except _POOL_OR_WAIT_ERRORS as exc:
                            if isinstance(exc, TimeoutError) and future.done():
                                raise  # the worker's socket timed out: a network error
                            workers.broken(exc, future)
                            todo.extendleft(reversed([job, *(j for j, _ in pending)]))
                            _cancel(pending)
                            local = True
                            continue
                    if mails:
                        yield mails
            finally:
                _cancel(pending)

    def _worker_timeout(self) -> float:
        """Longest wait for one batch from a worker before doing it here instead:
        its own socket timeout fires long before, unless the worker hangs."""
        return CONNECT_TIMEOUT + 4 * self.config.imap_timeout + 60.0

    def _store(
        self,
        client: Any,
        folder: str,
        uidvalidity: int,
        action: str,
        mails: list[FetchedMail],
        io_lock: threading.Lock,
    ) -> None:
        if self._lease is None:
            self.sink.store_batch(self.name, folder, uidvalidity, mails)
        else:  # checked in the batch's transaction: a lost lease commits nothing
            self.sink.store_batch(self.name, folder, uidvalidity, mails, guard=self._lease.confirm)
        self.alive_at = time.monotonic()
        self.log.info(
            kv("stored", mailbox=self.name, folder=folder, count=len(mails), uid=mails[-1].uid)
        )
        if action != "keep":
            with io_lock:
                self._after_import(client, action, [mail.uid for mail in mails])

    def _warn_uidvalidity(self, folder: str, old: int, new: int) -> None:
        """WARNING once per new UIDVALIDITY (an empty recreated folder stays 'changed')."""
        if self._warned_validity.get(folder) == new:
            return
        self._warned_validity[folder] = new
        self.log.warning(
            kv(
                "uidvalidity_changed",
                mailbox=self.name,
                folder=folder,
                old=old,
                new=new,
                then="rescan",
            )
        )

    def _recover(self, client: Any, folder: str, action: str, last: int) -> int:
        """Apply ``after_import`` to committed mail still in the folder (crash after
        commit); returns how many."""
        criteria: list[str] = ["UID", f"1:{last}", "NOT", "DELETED"]
        if action == "seen":
            criteria.append("UNSEEN")
        pending = [uid for uid in uids_after(client.search(criteria), 0) if uid <= last]
        if not pending:
            return 0
        self.log.info(
            kv("after_import_recover", mailbox=self.name, folder=folder, count=len(pending))
        )
        for chunk in chunks(pending, _RECOVER_CHUNK):
            self._after_import(client, action, chunk)
        return len(pending)

    def _after_import(self, client: Any, action: str, uids: list[int]) -> None:
        if action == "seen":
            client.add_flags(uids, [b"\\Seen"], silent=True)
            return
        target = action.removeprefix("move:")
        if client.has_capability("MOVE"):
            client.move(uids, target)
            return
        client.copy(uids, target)
        client.add_flags(uids, [b"\\Deleted"], silent=True)
        if client.has_capability("UIDPLUS"):
            client.uid_expunge(uids)
        # Without UIDPLUS a plain EXPUNGE could remove other \Deleted mail not yet
        # fetched, so the originals stay flagged; recovery skips \Deleted mail.

    # -- waiting -------------------------------------------------------------

    def _keep_lease(self) -> None:
        """Renew the lease when due (each sync, each IDLE or poll slice); LeaseLost
        when another daemon took it."""
        if self._lease is not None:
            self._lease.keep()

    def _wait(self, client: Any, stop: threading.Event) -> None:
        if self.config.idle and client.has_capability("IDLE"):
            self._idle(client, stop)
            return
        deadline = time.monotonic() + self.config.poll_interval
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            stop.wait(min(IDLE_SLICE, remaining))
            self.alive_at = time.monotonic()
            self._keep_lease()

    def _idle(self, client: Any, stop: threading.Event) -> None:
        """IDLE until new mail, ``stop``, or the renewal time; the caller then syncs.

        With a sent folder (which IDLE on the main folder cannot watch) the IDLE
        is renewed every ``poll_interval`` so the sent folder is polled as well.
        """
        renew = IDLE_RENEW
        if self.config.sent_folder:
            renew = min(renew, self.config.poll_interval)
        client.idle()
        if _input_buffered(client):
            # The server answered IDLE together with news (the EXISTS of mail that came
            # after the last SEARCH). imaplib read it into its buffer with the "+ idling"
            # line, where idle_check's poll() on the socket never sees it: sync now.
            client.idle_done()
            return
        deadline = time.monotonic() + renew
        quick_empty = 0
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            wait = min(IDLE_SLICE, remaining)
            started = time.monotonic()
            responses = client.idle_check(timeout=wait)
            self.alive_at = time.monotonic()
            self._keep_lease()
            if said_bye(responses):
                raise ConnectionError("server said BYE during IDLE")
            if has_new_mail(responses):
                break
            # imapclient swallows EOF in idle_check and returns [] at once.
            if not responses and self.alive_at - started < wait / 2:
                quick_empty += 1
                if quick_empty >= _QUICK_EMPTY_LIMIT:
                    raise ConnectionError("connection closed during IDLE")
            else:
                quick_empty = 0
        client.idle_done()


class _Prefetch(Generic[T]):
    """Runs ``source`` in a thread one item ahead of the consumer (a queue of one):
    the next IMAP FETCH overlaps with parsing and storing the current batch.

    An exception of the source is re-raised in the consumer, after the items
    before it; ``close`` (also when the consumer fails or stops early) makes
    the thread stop at its next hand-over and waits for it, so nothing uses
    the connection once the caller goes on.
    """

    _POLL = 0.1

    def __init__(self, source: Iterator[T], name: str) -> None:
        self._source = source
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._produce, name=name, daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        try:
            for item in self._source:
                if not self._put(("item", item)):
                    return
        except BaseException as exc:  # handed to the consumer, who re-raises it
            self._put(("error", exc))
            return
        finally:
            close = getattr(self._source, "close", None)
            if close is not None:
                close()
        self._put(("done", None))

    def _put(self, entry: tuple[str, Any]) -> bool:
        while not self._cancel.is_set():
            try:
                self._queue.put(entry, timeout=self._POLL)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[T]:
        while True:
            try:
                kind, value = self._queue.get(timeout=self._POLL)
            except queue.Empty:
                if self._thread.is_alive() or not self._queue.empty():
                    continue
                raise RuntimeError("prefetch thread ended without a result") from None
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value

    def close(self) -> None:
        self._cancel.set()
        self._thread.join()

    def __enter__(self) -> _Prefetch[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def _ahead(source: Iterator[T], mailbox: str, *, prefetch: bool) -> Iterator[Iterator[T]]:
    """``source`` prefetched in a thread (see ``_Prefetch``), or as it is when there is
    nothing to overlap (a single batch, e.g. the mail an IDLE just announced)."""
    if not prefetch:
        yield source
        return
    with _Prefetch(source, f"imap-prefetch-{mailbox}") as ahead:
        yield iter(ahead)


def _take_announced(client: Any) -> bool:
    """Pop the EXISTS/RECENT that imaplib kept from answers to other commands;
    True when there were any (the mailbox grew since they were last taken)."""
    store = getattr(getattr(client, "_imap", None), "untagged_responses", None)
    if not isinstance(store, dict):
        return False
    found = [store.pop(name, None) for name in ("EXISTS", "RECENT")]
    return any(found)


def _input_buffered(client: Any) -> bool:
    """True when a server line is waiting in imaplib's read buffer (or on the socket).

    ``peek`` returns buffered bytes without a read; with an empty buffer it makes
    one read, non-blocking here, which finds nothing or data that is really there."""
    reader = getattr(getattr(client, "_imap", None), "file", None)
    peek = getattr(reader, "peek", None)
    if peek is None:
        return False
    sock = client.socket()
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        return bool(peek(1))
    except (OSError, ValueError):  # nothing to read (ssl.SSLWantReadError), or closed
        return False
    finally:
        sock.settimeout(timeout)
