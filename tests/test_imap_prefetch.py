"""Fetch/store overlap in MailboxFetcher._sync_folder keeps every guarantee.

While the sink stores batch N, a prefetch thread FETCHes batch N+1. Checked
with a stand-in IMAP client (deterministic: events, not timing) and against a
real Dovecot with after_import, which shares the connection with the prefetch.
"""

from __future__ import annotations

import hashlib
import imaplib
import threading
from collections.abc import Sequence
from typing import Any

import pytest
from servers.dovecot import DovecotServer
from support.daemon import mail

from inboxd.config import MailboxConfig
from inboxd.ingest.imap import MailboxFetcher
from inboxd.ingest.sink import Checkpoint, FetchedMail

WAIT = 5.0  # bound of every wait on an event; normally a few ms


class Sink:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.checkpoint_: Checkpoint | None = None
        self.batches: list[list[int]] = []
        self.digests: set[str] = set()
        self.duplicates = 0
        self.fail_on_batch: int | None = None
        self.before_store: Any = None  # callable(batch_index) run at the start of a store

    def checkpoint(self, mailbox: str, folder: str) -> Checkpoint | None:
        return self.checkpoint_

    def store_batch(
        self, mailbox: str, folder: str, uidvalidity: int, mails: Sequence[FetchedMail]
    ) -> None:
        index = len(self.batches)
        if self.before_store is not None:
            self.before_store(index)
        if self.fail_on_batch == index:
            self.batches.append([])  # the attempt, so later batches get later indexes
            raise RuntimeError("database is gone")
        with self.lock:
            for m in mails:
                digest = hashlib.sha256(m.raw).hexdigest()
                self.duplicates += digest in self.digests
                self.digests.add(digest)
            self.batches.append([m.uid for m in mails])
            self.checkpoint_ = Checkpoint(uidvalidity, max(m.uid for m in mails))

    def stored_uids(self) -> list[int]:
        return [uid for batch in self.batches for uid in batch]


class FakeClient:
    """imapclient stand-in holding ``count`` mails; fails loudly when two threads
    issue commands at the same time (the connection must be serialized)."""

    def __init__(self, count: int) -> None:
        self.uids = list(range(1, count + 1))
        self._busy = threading.Lock()
        self.fetched: list[list[int]] = []
        self.fetch_started: dict[int, threading.Event] = {}
        self.fail_on_fetch: int | None = None
        self.flagged: list[int] = []
        self.overlapping_commands = 0
        self._imap = type("Imaplib", (), {"untagged_responses": {}})()

    def _command(self) -> None:
        if not self._busy.acquire(blocking=False):
            self.overlapping_commands += 1
            self._busy.acquire()

    def select_folder(self, folder: str, readonly: bool = False) -> dict[bytes, int]:
        return {b"UIDVALIDITY": 7, b"UIDNEXT": len(self.uids) + 1, b"EXISTS": len(self.uids)}

    def search(self, criteria: list[str]) -> list[int]:
        first = int(criteria[1].split(":")[0])
        found = [uid for uid in self.uids if uid >= first]
        return found or self.uids[-1:]  # the UID N:* quirk

    def fetch(self, uids: list[int], items: list[str]) -> dict[int, dict[bytes, Any]]:
        self._command()
        try:
            if items == ["RFC822.SIZE"]:  # read before the bodies; not a batch
                return {uid: {b"RFC822.SIZE": 200} for uid in uids if uid in self.uids}
            index = len(self.fetched)
            self.fetched.append(list(uids))
            self.fetch_started.setdefault(index, threading.Event()).set()
            if self.fail_on_fetch == index:
                raise imaplib.IMAP4.abort("socket error: EOF")
            return {
                uid: {b"BODY[]": mail(f"u{uid}@customer.example", f"Mail {uid}")} for uid in uids
            }
        finally:
            self._busy.release()

    def add_flags(self, uids: list[int], flags: list[bytes], silent: bool = False) -> None:
        self._command()
        try:
            self.flagged.extend(uids)
        finally:
            self._busy.release()

    def started(self, index: int) -> threading.Event:
        return self.fetch_started.setdefault(index, threading.Event())


def fetcher(sink: Sink, *, after_import: str = "keep", batch_size: int = 10) -> MailboxFetcher:
    config = MailboxConfig(
        name="box",
        address="support@help.example",
        imap_host="localhost",
        batch_size=batch_size,
        after_import=after_import,
    )
    return MailboxFetcher(config, sink, password=None)


def prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("imap-prefetch-")]


def sync(box: MailboxFetcher, client: FakeClient, stop: threading.Event | None = None) -> Any:
    return box._sync_folder(client, "INBOX", primary=True, recover=False, stop=stop)


def test_next_batch_is_fetched_while_the_current_one_is_stored() -> None:
    sink, client = Sink(), FakeClient(30)
    overlapped: list[bool] = []
    # Storing batch N waits for the FETCH of batch N+1: without overlap it never comes.
    sink.before_store = lambda i: overlapped.append(i >= 2 or client.started(i + 1).wait(WAIT))
    result = sync(fetcher(sink), client)
    assert overlapped == [True, True, True]
    assert result.fetched == 30 and result.batches == 3
    assert sink.stored_uids() == list(range(1, 31)) and sink.duplicates == 0
    assert sink.checkpoint_ == Checkpoint(7, 30)
    assert not prefetch_threads()


def test_a_failed_store_stops_prefetching_and_propagates() -> None:
    sink, client = Sink(), FakeClient(100)
    sink.fail_on_batch = 1
    with pytest.raises(RuntimeError, match="database is gone"):
        sync(fetcher(sink), client)
    assert sink.checkpoint_ == Checkpoint(7, 10)  # only the committed batch counts
    assert not prefetch_threads()  # the thread is gone before the error reaches the caller
    # stored 0, failed on 1; 2 in the queue and 3 being fetched at most
    assert len(client.fetched) <= 4


def test_a_fetch_error_propagates_after_the_batches_before_it() -> None:
    sink, client = Sink(), FakeClient(50)
    client.fail_on_fetch = 2
    with pytest.raises(imaplib.IMAP4.abort):
        sync(fetcher(sink), client)
    assert sink.stored_uids() == list(range(1, 21))
    assert sink.checkpoint_ == Checkpoint(7, 20)
    assert not prefetch_threads()


def test_stop_ends_the_sync_without_storing_more() -> None:
    sink, client = Sink(), FakeClient(100)
    stop = threading.Event()
    sink.before_store = lambda i: stop.set() if i == 1 else None
    result = sync(fetcher(sink), client, stop)
    assert result.fetched == 20  # batch 1 was being stored when stop came
    assert sink.checkpoint_ == Checkpoint(7, 20)
    assert len(client.fetched) <= 4
    assert not prefetch_threads()


def test_after_import_waits_for_the_commit_and_shares_the_connection_safely() -> None:
    sink, client = Sink(), FakeClient(45)
    flagged_at_store: list[list[int]] = []
    sink.before_store = lambda i: flagged_at_store.append(list(client.flagged))
    sync(fetcher(sink, after_import="seen"), client)
    # when batch N is being stored only batches < N were flagged
    assert flagged_at_store == [list(range(1, 1 + 10 * n)) for n in range(5)]
    assert client.flagged == list(range(1, 46))
    assert client.overlapping_commands == 0


def test_single_batch_needs_no_thread() -> None:
    sink, client = Sink(), FakeClient(3)
    seen: list[list[threading.Thread]] = []
    sink.before_store = lambda i: seen.append(prefetch_threads())
    assert sync(fetcher(sink), client).fetched == 3
    assert seen == [[]]


@pytest.mark.server
def test_prefetch_with_move_against_dovecot(dovecot: DovecotServer, imap_user: str) -> None:
    raws = [mail(f"mv{i}@customer.example", f"Move {i}") for i in range(37)]
    dovecot.preload(imap_user, "INBOX", raws)
    sink = Sink()
    config = MailboxConfig(
        name="box",
        address="support@help.example",
        imap_host=dovecot.host,
        imap_port=dovecot.port,
        imap_security="none",
        username=imap_user,
        batch_size=5,
        after_import="move:Done",
        imap_timeout=10,
    )
    box = MailboxFetcher(config, sink, password=imap_user)
    result = box.sync_once()
    assert result.fetched == 37 and result.batches == 8
    assert sink.stored_uids() == list(range(1, 38)) and sink.duplicates == 0
    client = dovecot.connect(imap_user)
    try:
        client.select_folder("INBOX", readonly=True)
        assert client.search(["ALL"]) == []
        client.select_folder("Done", readonly=True)
        assert len(client.search(["ALL"])) == 37
    finally:
        client.logout()
    assert box.sync_once().fetched == 0
