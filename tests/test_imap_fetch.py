"""The IMAP fetcher against a real private Dovecot, plus its pure helpers."""

from __future__ import annotations

import dataclasses
import hashlib
import imaplib
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from servers.dovecot import DovecotFactory, DovecotServer
from sqlmodel import Session
from support.workers import kill_workers

from inboxd.config import MailboxConfig
from inboxd.core.model import ParsedMessage
from inboxd.db import sql
from inboxd.db.engine import make_engine, upgrade
from inboxd.db.tables import Message, Quarantine, Ticket
from inboxd.ingest import imap
from inboxd.ingest.fetchjob import FetchJob, WorkerSession, fetch_and_parse
from inboxd.ingest.imap import (
    MailboxFetcher,
    SyncResult,
    backoff_delay,
    chunks,
    has_new_mail,
    kv,
    said_bye,
    uids_after,
)
from inboxd.ingest.imapconn import folder_state, mails_from_fetch
from inboxd.ingest.pipeline import IngestContext, Pipeline
from inboxd.ingest.sink import Checkpoint, FetchedMail
from inboxd.ingest.workers import IngestWorkers

WAIT = 15.0  # upper bound of every wait for the fetcher; normally well under 2 s


class DictSink:
    """In-memory MailboxSink: checkpoint + dedupe on content digest, like the real one."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.checkpoints: dict[tuple[str, str], Checkpoint] = {}
        self.stored: dict[str, list[tuple[str, int, bytes]]] = {}  # mailbox -> (folder, uid, raw)
        self.digests: set[str] = set()
        self.duplicates = 0
        self.batch_sizes: list[int] = []
        self.hook: Callable[[str, str, Sequence[FetchedMail]], None] | None = None

    def checkpoint(self, mailbox: str, folder: str) -> Checkpoint | None:
        with self.lock:
            return self.checkpoints.get((mailbox, folder))

    def store_batch(
        self, mailbox: str, folder: str, uidvalidity: int, mails: Sequence[FetchedMail]
    ) -> None:
        with self.lock:
            for mail in mails:
                digest = hashlib.sha256(mail.raw).hexdigest()
                if digest in self.digests:
                    self.duplicates += 1
                    continue
                self.digests.add(digest)
                self.stored.setdefault(mailbox, []).append((folder, mail.uid, mail.raw))
            self.checkpoints[(mailbox, folder)] = Checkpoint(uidvalidity, max(m.uid for m in mails))
            self.batch_sizes.append(len(mails))
        if self.hook is not None:
            self.hook(mailbox, folder, mails)

    def count(self, mailbox: str) -> int:
        with self.lock:
            return len(self.stored.get(mailbox, []))

    def raws(self, mailbox: str) -> list[bytes]:
        with self.lock:
            return [raw for _, _, raw in self.stored.get(mailbox, [])]


_seq = iter(range(1, 10**9))


def make_mail(tag: str = "m") -> bytes:
    n = next(_seq)
    return (
        f"From: Customer {n} <c{n}@example.test>\r\n"
        f"To: support@example.test\r\n"
        f"Subject: Help {tag} {n}\r\n"
        f"Message-ID: <{tag}.{n}@example.test>\r\n"
        f"Date: Mon, 03 Jun 2024 10:00:00 +0000\r\n"
        f"\r\n"
        f"BODYMARK-{tag}-{n} please help\r\n"
    ).encode()


def mails(count: int, tag: str = "m") -> list[bytes]:
    return [make_mail(tag) for _ in range(count)]


def box_config(server: DovecotServer, user: str, **overrides: Any) -> MailboxConfig:
    fields: dict[str, Any] = {
        "name": f"box-{user}",
        "address": f"{user}@example.test",
        "imap_host": server.host,
        "imap_port": server.port,
        "imap_security": "none",
        "username": user,
        "imap_timeout": 10.0,
    }
    fields.update(overrides)
    return MailboxConfig(**fields)


def fetcher(server: DovecotServer, user: str, sink: DictSink, **overrides: Any) -> MailboxFetcher:
    return MailboxFetcher(box_config(server, user, **overrides), sink, password=user)


def wait_until(pred: Callable[[], bool], timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


@contextmanager
def running(*fetchers: MailboxFetcher) -> Iterator[threading.Event]:
    stop = threading.Event()
    threads = [threading.Thread(target=f.run, args=(stop,), daemon=True) for f in fetchers]
    for thread in threads:
        thread.start()
    try:
        yield stop
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        assert not any(t.is_alive() for t in threads), "fetcher thread ignored stop"


def server_uids(server: DovecotServer, user: str, folder: str = "INBOX") -> dict[int, set[bytes]]:
    """UID -> flags on the server, read with a separate connection."""
    client = server.connect(user)
    try:
        client.select_folder(folder, readonly=True)
        uids = client.search(["ALL"])
        flags = client.get_flags(uids) if uids else {}
        return {int(uid): set(f) for uid, f in flags.items()}
    finally:
        client.logout()


server = pytest.mark.server


# -- real Dovecot ----------------------------------------------------------------


@server
def test_imports_read_and_unread_mail_without_marking_it(
    dovecot: DovecotServer, caplog: pytest.LogCaptureFixture
) -> None:
    user, password = "reader", "Sekr1t-pass"
    dovecot.add_user(user, password)
    dovecot.append(user, "INBOX", mails(2, "unread"))
    dovecot.append(user, "INBOX", mails(2, "read"), flags=["\\Seen"])
    sink = DictSink()
    caplog.set_level(logging.DEBUG, logger="inboxd.imap")

    result = MailboxFetcher(box_config(dovecot, user), sink, password=password).sync_once()

    assert result == SyncResult(fetched=4, batches=1, uidvalidity_changed=False)
    raws = sink.raws(f"box-{user}")
    assert sorted(b"-read-" in r for r in raws) == [False, False, True, True]
    flags = server_uids(dovecot, user)
    assert [b"\\Seen" in flags[uid] for uid in sorted(flags)] == [False, False, True, True]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"mailbox=box-{user}" in logged
    assert "BODYMARK" not in logged and password not in logged


@server
def test_batches_and_checkpoint_resume(dovecot: DovecotServer, imap_user: str) -> None:
    dovecot.preload(imap_user, "INBOX", mails(25))
    sink = DictSink()
    box = fetcher(dovecot, imap_user, sink, batch_size=10)

    assert box.sync_once() == SyncResult(fetched=25, batches=3)
    assert sink.batch_sizes == [10, 10, 5]
    assert sink.checkpoint(box.name, "INBOX") is not None
    assert sink.checkpoints[(box.name, "INBOX")].last_uid == 25

    dovecot.preload(imap_user, "INBOX", mails(3, "later"))
    assert box.sync_once() == SyncResult(fetched=3, batches=1)
    assert box.sync_once() == SyncResult()
    assert sink.count(box.name) == 28 and sink.duplicates == 0


@server
def test_deleted_mail_never_makes_fetcher_skip(dovecot: DovecotServer, imap_user: str) -> None:
    dovecot.preload(imap_user, "INBOX", mails(5))
    sink = DictSink()
    box = fetcher(dovecot, imap_user, sink)
    assert box.sync_once().fetched == 5

    # New mail 6..9; someone deletes 6 and 8 plus old mail 5 before the next sync.
    new = mails(4, "new")
    dovecot.append(imap_user, "INBOX", new)
    client = dovecot.connect(imap_user)
    client.select_folder("INBOX")
    client.delete_messages([5, 6, 8])
    client.expunge()
    assert box.sync_once().fetched == 2
    assert sink.raws(box.name)[-2:] == [new[1], new[3]]

    # All new mail deleted again: "UID 10:*" answers the highest existing UID (9).
    dovecot.append(imap_user, "INBOX", mails(2, "gone"))
    client.noop()  # let this session see UIDs 10 and 11
    client.delete_messages([10, 11])
    client.expunge()
    client.logout()
    assert box.sync_once() == SyncResult()
    dovecot.append(imap_user, "INBOX", mails(1, "after"))
    assert box.sync_once().fetched == 1
    assert sink.count(box.name) == 8 and sink.duplicates == 0


@server
def test_uidvalidity_change_rescans_without_duplicates(
    dovecot: DovecotServer, imap_user: str, caplog: pytest.LogCaptureFixture
) -> None:
    old = mails(3, "old")
    dovecot.append(imap_user, "Support", old)
    sink = DictSink()
    box = fetcher(dovecot, imap_user, sink, folder="Support")
    assert box.sync_once().fetched == 3
    before = sink.checkpoints[(box.name, "Support")]

    client = dovecot.connect(imap_user)
    client.delete_folder("Support")
    client.logout()
    dovecot.append(imap_user, "Support", [old[0], old[2], *mails(1, "fresh")])
    with caplog.at_level(logging.WARNING, logger="inboxd.imap"):
        result = box.sync_once()

    assert result == SyncResult(fetched=3, batches=1, uidvalidity_changed=True)
    after = sink.checkpoints[(box.name, "Support")]
    assert after.uidvalidity != before.uidvalidity and after.last_uid == 3
    assert sink.count(box.name) == 4 and sink.duplicates == 2
    assert any("uidvalidity_changed" in r.getMessage() for r in caplog.records)
    assert box.sync_once() == SyncResult()


@server
def test_after_import_seen_only_after_commit(dovecot: DovecotServer, imap_user: str) -> None:
    dovecot.preload(imap_user, "INBOX", mails(5))
    sink = DictSink()
    seen_at_commit: list[bool] = []

    def check(mailbox: str, folder: str, batch: Sequence[FetchedMail]) -> None:
        flags = server_uids(dovecot, imap_user)
        seen_at_commit.extend(b"\\Seen" in flags[m.uid] for m in batch)

    sink.hook = check
    box = fetcher(dovecot, imap_user, sink, after_import="seen", batch_size=2)
    assert box.sync_once().fetched == 5
    assert seen_at_commit == [False] * 5
    assert all(b"\\Seen" in f for f in server_uids(dovecot, imap_user).values())


@server
def test_after_import_move(dovecot: DovecotServer, imap_user: str) -> None:
    dovecot.preload(imap_user, "INBOX", mails(4))
    sink = DictSink()
    box = fetcher(dovecot, imap_user, sink, after_import="move:Imported", batch_size=3)
    assert box.sync_once() == SyncResult(fetched=4, batches=2)
    assert server_uids(dovecot, imap_user) == {}
    assert len(server_uids(dovecot, imap_user, "Imported")) == 4
    dovecot.preload(imap_user, "INBOX", mails(1, "later"))
    assert box.sync_once().fetched == 1
    assert len(server_uids(dovecot, imap_user, "Imported")) == 5
    assert sink.count(box.name) == 5 and sink.duplicates == 0


class CrashAfterCommit(Exception):
    pass


@server
@pytest.mark.parametrize("action", ["seen", "move:Done"])
def test_crash_between_commit_and_after_import_is_recovered(
    dovecot: DovecotServer, imap_user: str, action: str
) -> None:
    dovecot.preload(imap_user, "INBOX", mails(5))
    sink = DictSink()

    def crash(mailbox: str, folder: str, batch: Sequence[FetchedMail]) -> None:
        raise CrashAfterCommit  # committed, but after_import never ran

    sink.hook = crash
    box = fetcher(dovecot, imap_user, sink, after_import=action, batch_size=2)
    with pytest.raises(CrashAfterCommit):
        box.sync_once()
    assert sink.count(box.name) == 2
    assert all(b"\\Seen" not in f for f in server_uids(dovecot, imap_user).values())

    sink.hook = None
    assert box.sync_once() == SyncResult(fetched=3, batches=2)
    assert sink.count(box.name) == 5 and sink.duplicates == 0
    inbox = server_uids(dovecot, imap_user)
    if action == "seen":
        assert len(inbox) == 5 and all(b"\\Seen" in f for f in inbox.values())
    else:
        assert inbox == {} and len(server_uids(dovecot, imap_user, "Done")) == 5


@server
def test_sent_folder_has_its_own_checkpoint(dovecot: DovecotServer, imap_user: str) -> None:
    dovecot.preload(imap_user, "INBOX", mails(3, "in"))
    dovecot.preload(imap_user, "Sent", mails(2, "out"))
    sink = DictSink()
    box = fetcher(dovecot, imap_user, sink, sent_folder="Sent", after_import="seen")
    assert box.sync_once() == SyncResult(fetched=5, batches=2)
    assert sink.checkpoints[(box.name, "INBOX")].last_uid == 3
    assert sink.checkpoints[(box.name, "Sent")].last_uid == 2
    by_folder = {folder for folder, _, raw in sink.stored[box.name] if b"-out-" in raw}
    assert by_folder == {"Sent"}
    # after_import applies to the support folder only, never to sent mail
    assert all(b"\\Seen" not in f for f in server_uids(dovecot, imap_user, "Sent").values())


@server
@pytest.mark.parametrize("idle", [True, False])
def test_run_picks_up_new_mail(dovecot: DovecotServer, imap_user: str, idle: bool) -> None:
    dovecot.preload(imap_user, "INBOX", mails(3))
    sink = DictSink()
    # With IDLE the poll interval is an hour: only IDLE can deliver the new mail.
    box = fetcher(dovecot, imap_user, sink, idle=idle, poll_interval=3600 if idle else 0.3)
    with running(box):
        assert wait_until(lambda: sink.count(box.name) == 3)
        time.sleep(0.3)  # let it enter IDLE
        dovecot.append(imap_user, "INBOX", mails(1, "live"))
        assert wait_until(lambda: sink.count(box.name) == 4)
        dovecot.append(imap_user, "INBOX", mails(2, "live"))
        assert wait_until(lambda: sink.count(box.name) == 6)
    assert sink.duplicates == 0


@server
def test_mail_arriving_during_a_sync_is_not_left_for_the_next_idle(
    dovecot: DovecotServer, imap_user: str
) -> None:
    """New mail announced during the sync's STORE must not be swallowed before IDLE."""
    dovecot.preload(imap_user, "INBOX", mails(2))
    sink = DictSink()
    appended: list[int] = []

    def append_during_sync(mailbox: str, folder: str, batch: Sequence[FetchedMail]) -> None:
        if not appended:
            appended.extend(dovecot.append(imap_user, "INBOX", mails(1, "during")))

    sink.hook = append_during_sync
    box = fetcher(dovecot, imap_user, sink, after_import="seen", poll_interval=3600)
    with running(box):
        assert wait_until(lambda: sink.count(box.name) == 3)
    assert appended == [3]


class CountingFetcher(MailboxFetcher):
    idles = 0

    def _idle(self, client: Any, stop: threading.Event) -> None:
        self.idles += 1
        super()._idle(client, stop)


@server
def test_idle_is_renewed(
    dovecot: DovecotServer, imap_user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imap, "IDLE_RENEW", 0.2)
    sink = DictSink()
    box = CountingFetcher(
        box_config(dovecot, imap_user, poll_interval=3600), sink, password=imap_user
    )
    with running(box):
        assert wait_until(lambda: box.idles >= 4)  # IDLE, DONE, sync, IDLE again ...
        dovecot.append(imap_user, "INBOX", mails(1))
        assert wait_until(lambda: sink.count(box.name) == 1)


@server
def test_connection_killed_mid_fetch_resumes_exactly_once(
    dovecot: DovecotServer, imap_user: str
) -> None:
    dovecot.preload(imap_user, "INBOX", mails(30))
    sink = DictSink()
    kills: list[int] = []

    def kill_once(mailbox: str, folder: str, batch: Sequence[FetchedMail]) -> None:
        if not kills:
            kills.append(dovecot.kill_connections(imap_user))

    sink.hook = kill_once
    box = fetcher(dovecot, imap_user, sink, batch_size=10, after_import="seen")
    with running(box):
        assert wait_until(lambda: sink.count(box.name) == 30)
    assert kills == [1]
    assert sink.duplicates == 0
    assert sink.checkpoints[(box.name, "INBOX")].last_uid == 30
    assert all(b"\\Seen" in f for f in server_uids(dovecot, imap_user).values())


@server
def test_server_dies_and_comes_back(
    make_dovecot: DovecotFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = make_dovecot()
    server.add_user("agent", "agent")
    server.preload("agent", "INBOX", mails(2))
    sink = DictSink()
    box = fetcher(server, "agent", sink)
    caplog.set_level(logging.INFO, logger="inboxd.imap")
    with running(box):
        assert wait_until(lambda: sink.count(box.name) == 2)
        time.sleep(0.3)
        server.crash()
        time.sleep(1.0)  # the fetcher notices and retries against a dead port
        server.start()
        server.append("agent", "INBOX", mails(1, "back"))
        assert wait_until(lambda: sink.count(box.name) == 3)
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("connection_error") for m in messages)
    assert sum(m.startswith("connected") for m in messages) >= 2
    assert sink.duplicates == 0


@server
def test_several_mailboxes_in_parallel(dovecot: DovecotServer) -> None:
    users = [f"par{i}" for i in range(4)]
    sink = DictSink()
    for user in users:
        dovecot.add_user(user, user)
        dovecot.preload(user, "INBOX", mails(40, user))
    boxes = [fetcher(dovecot, user, sink, batch_size=7) for user in users]
    with running(*boxes):
        assert wait_until(lambda: all(sink.count(box.name) == 40 for box in boxes))
        time.sleep(0.3)
        for user in users:
            dovecot.append(user, "INBOX", mails(1, f"{user}-live"))
        assert wait_until(lambda: all(sink.count(box.name) == 41 for box in boxes))
    for user, box in zip(users, boxes, strict=True):
        assert all(f"-{user}-".encode() in raw for raw in sink.raws(box.name))
    assert sink.duplicates == 0


@server
def test_wrong_password_retries_without_crashing(
    dovecot: DovecotServer, imap_user: str, caplog: pytest.LogCaptureFixture
) -> None:
    box = MailboxFetcher(
        box_config(dovecot, imap_user), DictSink(), password="wrong", backoff_base=0.05
    )
    caplog.set_level(logging.WARNING, logger="inboxd.imap")
    with running(box):
        assert wait_until(lambda: sum("LoginError" in r.getMessage() for r in caplog.records) >= 2)
    assert not any("wrong" in r.getMessage() for r in caplog.records)


@server
@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_tls_and_starttls_verify_the_certificate(
    make_dovecot: DovecotFactory, security: str, caplog: pytest.LogCaptureFixture
) -> None:
    server = make_dovecot(tls=True)
    server.add_user("agent", "agent")
    server.preload("agent", "INBOX", mails(2))
    port = server.tls_port if security == "tls" else server.port
    cfg = box_config(server, "agent", imap_security=security, imap_port=port)
    trusted = ssl.create_default_context(cafile=str(server.cert_file))
    sink = DictSink()

    assert MailboxFetcher(cfg, sink, password="agent", ssl_context=trusted).sync_once().fetched == 2

    # Without our CA the self-signed certificate is refused: no login, nothing fetched.
    untrusting = MailboxFetcher(cfg, DictSink(), password="agent", backoff_base=0.05)
    with pytest.raises(ssl.SSLCertVerificationError):
        untrusting.sync_once()
    caplog.set_level(logging.WARNING, logger="inboxd.imap")
    with running(untrusting):
        assert wait_until(
            lambda: any("SSLCertVerificationError" in r.getMessage() for r in caplog.records)
        )
    assert "Login: user=<agent>" in server.log_tail(100)  # only the trusted run logged in
    assert server.log_tail(100).count("Login: user=<agent>") == 1


def support_mail(msgid: str, subject: str, in_reply_to: str = "") -> bytes:
    head = [
        "From: Alice <alice@customer.example>",
        "To: support@help.example",
        f"Subject: {subject}",
        f"Message-ID: <{msgid}>",
        "Date: Mon, 02 Mar 2026 10:00:00 +0000",
    ]
    if in_reply_to:
        head += [f"In-Reply-To: <{in_reply_to}>", f"References: <{in_reply_to}>"]
    return ("\r\n".join(head) + "\r\n\r\nIt does not print.\r\n").encode()


@server
def test_real_pipeline_threads_dedupes_and_resumes(
    dovecot: DovecotServer, imap_user: str, tmp_path: Path
) -> None:
    pipeline = _pipeline(tmp_path)
    engine = pipeline.engine

    def rows(model: type) -> int:
        with Session(engine) as session:
            return sql.count_rows(session, model)

    first = [
        support_mail("p1@c", "Printer broken"),
        support_mail("q1@c", "Invoice wrong"),
        support_mail("p2@c", "Re: Printer broken", in_reply_to="p1@c"),
    ]
    dovecot.append(imap_user, "Support", first)
    cfg = box_config(dovecot, imap_user, name="support", folder="Support", after_import="move:Done")
    box = MailboxFetcher(cfg, pipeline, password=imap_user)
    try:
        assert box.sync_once() == SyncResult(fetched=3, batches=1)
        assert (rows(Ticket), rows(Message)) == (2, 3)
        checkpoint = pipeline.checkpoint("support", "Support")
        assert checkpoint is not None and checkpoint.last_uid == 3
        assert server_uids(dovecot, imap_user, "Support") == {}

        # The folder is recreated (new UIDVALIDITY) holding old and new mail.
        client = dovecot.connect(imap_user)
        client.delete_folder("Support")
        client.logout()
        dovecot.append(
            imap_user, "Support", [first[1], support_mail("p3@c", "Re: Printer broken", "p2@c")]
        )
        with running(box):
            assert wait_until(lambda: rows(Message) == 4)
            dovecot.append(imap_user, "Support", [support_mail("r1@c", "Login fails")])
            assert wait_until(lambda: rows(Message) == 5)
        assert rows(Ticket) == 3
        after = pipeline.checkpoint("support", "Support")
        assert after is not None and after.uidvalidity != checkpoint.uidvalidity
        assert after.last_uid == 3
    finally:
        engine.dispose()


# -- pure helpers ----------------------------------------------------------------


def test_uids_after_filters_the_star_quirk() -> None:
    assert uids_after([9], 12) == []  # "UID 13:*" answered with the highest, 9
    assert uids_after([15, 13, 13, 14], 12) == [13, 14, 15]
    assert uids_after([], 0) == []


def test_chunks() -> None:
    assert list(chunks([1, 2, 3, 4, 5], 2)) == [[1, 2], [3, 4], [5]]
    assert list(chunks([], 3)) == []
    with pytest.raises(ValueError):
        list(chunks([1], 0))


def test_backoff_delay_grows_caps_and_jitters() -> None:
    assert backoff_delay(0, 0.0) == 0.5
    assert backoff_delay(0, 0.999) == pytest.approx(1.0, abs=0.001)
    assert [backoff_delay(a, 1.0) for a in range(4)] == [1.0, 2.0, 4.0, 8.0]
    assert backoff_delay(9, 1.0) == 300.0 and backoff_delay(10_000, 1.0) == 300.0
    assert backoff_delay(10_000, 0.0) == 150.0
    assert backoff_delay(3, 0.5, base=0.1, cap=0.5) == pytest.approx(0.375)


def test_idle_response_classification() -> None:
    assert has_new_mail([(b"OK", b"Still here"), (4, b"EXISTS")])
    assert has_new_mail([(2, b"RECENT")])
    assert not has_new_mail([(3, b"EXPUNGE"), (1, b"FETCH", (b"FLAGS", (b"\\Seen",)))])
    assert not has_new_mail([])
    assert said_bye([(b"BYE", b"Server shutting down")])
    assert not said_bye([(b"OK", b"Still here")])


def test_folder_state_normalises_bytes_keys() -> None:
    state = folder_state({b"UIDVALIDITY": 77, b"UIDNEXT": 12, b"EXISTS": 3, b"FLAGS": ()})
    assert (state.uidvalidity, state.uidnext, state.exists) == (77, 12, 3)
    assert folder_state({b"UIDVALIDITY": 1, b"EXISTS": 0}).uidnext is None
    with pytest.raises(imaplib.IMAP4.error):
        folder_state({b"EXISTS": 0})


def test_mails_from_fetch() -> None:
    response = {
        7: {b"SEQ": 2, b"BODY[]": b"seven"},
        5: {b"SEQ": 1, b"BODY[]": b"five"},
    }
    got = mails_from_fetch(response, [7, 6, 5])  # 6 was expunged meanwhile
    assert [(m.uid, m.raw) for m in got] == [(5, b"five"), (7, b"seven")]
    assert all(m.fetched_at > 0 for m in got)  # stamped when the FETCH answered (latency)
    with pytest.raises(imaplib.IMAP4.error):
        mails_from_fetch({5: {b"SEQ": 1}}, [5])


def test_kv_quotes_values() -> None:
    assert kv("stored", mailbox="a", count=3) == "stored mailbox=a count=3"
    assert kv("x", folder="Sent Items") == 'x folder="Sent Items"'
    assert kv("x", detail="a=b\nuser=root") == 'x detail="a=b\\nuser=root"'
    assert kv("x", v="") == 'x v=""'


def test_sync_result_adds() -> None:
    total = SyncResult(2, 1, False) + SyncResult(3, 2, True)
    assert total == SyncResult(5, 3, True)


def test_skip_policy_without_dovecot(monkeypatch: pytest.MonkeyPatch) -> None:
    import conftest
    import servers.dovecot

    monkeypatch.setattr(servers.dovecot, "DOVECOT_BIN", "/nonexistent/dovecot")
    monkeypatch.delenv("INBOXD_REQUIRE_SERVERS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        conftest.require_dovecot()
    monkeypatch.setenv("INBOXD_REQUIRE_SERVERS", "1")  # CI: a missing server fails the run
    with pytest.raises(pytest.fail.Exception, match="INBOXD_REQUIRE_SERVERS=1"):
        conftest.require_dovecot()


def _pipeline(tmp_path: Path) -> Pipeline:
    engine = make_engine(f"sqlite:///{tmp_path / 'inboxd.db'}")
    upgrade(engine)
    ctx = IngestContext(
        secret=b"imap-test-secret",
        support_addresses=frozenset({"support@help.example"}),
        mailbox_addresses={"support": "support@help.example"},
        rules=lambda: None,
        clock=lambda: datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
    )
    return Pipeline(engine, ctx)


class RecordingSink:
    """The real pipeline, noting per batch whether its mails came parsed (by a
    worker) and running ``after_store`` after each batch."""

    def __init__(self, pipeline: Pipeline, after_store: Callable[[], None] = lambda: None):
        self.pipeline = pipeline
        self.after_store = after_store
        self.parsed_by_worker: list[bool] = []

    def checkpoint(self, mailbox: str, folder: str) -> Checkpoint | None:
        return self.pipeline.checkpoint(mailbox, folder)

    def store_batch(
        self, mailbox: str, folder: str, uidvalidity: int, mails: Sequence[FetchedMail]
    ) -> None:
        self.parsed_by_worker.append(all(m.parsed is not None for m in mails))
        self.pipeline.store_batch(mailbox, folder, uidvalidity, mails)
        self.after_store()


def _counts(pipeline: Pipeline) -> tuple[int, int, int]:
    with Session(pipeline.engine) as session:
        return (
            sql.count_rows(session, Message),
            sql.count_rows(session, Ticket),
            sql.count_rows(session, Quarantine),
        )


@contextmanager
def worker_fetcher(
    dovecot: DovecotServer,
    imap_user: str,
    tmp_path: Path,
    workers: IngestWorkers,
    after_store: Callable[[], None] = lambda: None,
    **config: Any,
) -> Iterator[tuple[MailboxFetcher, RecordingSink]]:
    """A fetcher with ingest workers over the real pipeline, batches of 10; closes both."""
    sink = RecordingSink(_pipeline(tmp_path), after_store=after_store)
    cfg = box_config(dovecot, imap_user, name="support", batch_size=10, **config)
    try:
        yield MailboxFetcher(cfg, sink, password=imap_user, workers=workers), sink
    finally:
        workers.close()
        sink.pipeline.engine.dispose()


@server
def test_a_backlog_is_fetched_and_parsed_by_workers(
    dovecot: DovecotServer, imap_user: str, tmp_path: Path
) -> None:
    mails = [support_mail(f"m{i}@c", f"Question {i}") for i in range(24)]
    mails.insert(12, b"\x00\x01 no mail at all\r\n")
    dovecot.append(imap_user, "INBOX", mails)
    workers = IngestWorkers(1)
    with worker_fetcher(dovecot, imap_user, tmp_path, workers, after_import="seen") as (box, sink):
        assert box.sync_once() == SyncResult(fetched=25, batches=3)
        assert _counts(sink.pipeline) == (24, 24, 1)
        # the first batch is fetched by the fetcher while the worker starts
        assert sink.parsed_by_worker == [False, True, True]
        checkpoint = sink.pipeline.checkpoint("support", "INBOX")
        assert checkpoint is not None and checkpoint.last_uid == 25
        assert all(b"\\Seen" in flags for flags in server_uids(dovecot, imap_user).values())
        # one batch or less: no worker round trip
        dovecot.append(imap_user, "INBOX", [support_mail("late@c", "One more")])
        assert box.sync_once() == SyncResult(fetched=1, batches=1)
        assert sink.parsed_by_worker[-1] is False


@server
def test_an_idle_pool_shuts_down_and_its_workers_log_out(
    dovecot: DovecotServer, imap_user: str, tmp_path: Path
) -> None:
    """After a backlog the pool lingers, then goes; a worker leaves with LOGOUT."""
    dovecot.append(imap_user, "INBOX", [support_mail(f"i{i}@c", f"Idle {i}") for i in range(30)])
    workers = IngestWorkers(1, linger=0.5)
    with worker_fetcher(dovecot, imap_user, tmp_path, workers) as (box, sink):
        assert box.sync_once().fetched == 30
        assert True in sink.parsed_by_worker and workers.running
        deadline = time.monotonic() + WAIT
        while workers.running and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not workers.running, "the idle pool was not shut down"
        # every session of this user ends in "Logged out", none in "Disconnected"
        while time.monotonic() < deadline:
            log = [line for line in dovecot.log_file.read_text().splitlines() if imap_user in line]
            ended = [line for line in log if "Logged out" in line or "Disconnected" in line]
            if len(ended) >= 2:
                break
            time.sleep(0.05)
        assert len(ended) >= 2, dovecot.log_tail()
        assert all("Logged out" in line for line in ended), ended
        # the next backlog starts a new pool
        again = [support_mail(f"j{i}@c", f"Again {i}") for i in range(25)]
        dovecot.append(imap_user, "INBOX", again)
        assert box.sync_once().fetched == 25
        assert sink.parsed_by_worker[-1] is True


@server
def test_a_worker_dying_mid_sync_loses_and_doubles_nothing(
    dovecot: DovecotServer, imap_user: str, tmp_path: Path
) -> None:
    dovecot.append(imap_user, "INBOX", [support_mail(f"d{i}@c", f"Case {i}") for i in range(60)])
    workers = IngestWorkers(1)
    killed: list[int] = []

    def kill_once() -> None:  # after the second batch, the first a worker did
        if not killed and len(sink.parsed_by_worker) == 2:
            killed.append(kill_workers())

    with worker_fetcher(dovecot, imap_user, tmp_path, workers, kill_once) as (box, sink):
        assert box.sync_once().fetched == 60
        assert killed == [1] and workers.breaks == 1
        # the batches after the death were fetched and parsed in this process
        assert sink.parsed_by_worker[:2] == [False, True] and sink.parsed_by_worker[-1] is False
        assert _counts(sink.pipeline) == (60, 60, 0)
        checkpoint = sink.pipeline.checkpoint("support", "INBOX")
        assert checkpoint is not None and checkpoint.last_uid == 60


@server
def test_a_worker_session_checks_uidvalidity_and_keeps_its_connection(
    dovecot: DovecotServer, imap_user: str
) -> None:
    dovecot.append(imap_user, "INBOX", [support_mail("u1@c", "Hello"), support_mail("u2@c", "Hi")])
    cfg = box_config(dovecot, imap_user, name="support")
    client = dovecot.connect(imap_user)
    uidvalidity = folder_state(client.select_folder("INBOX", readonly=True)).uidvalidity
    client.logout()
    job = FetchJob(cfg, imap_user, "INBOX", uidvalidity, (1,), 1 << 20)
    session = WorkerSession()
    try:
        [mail] = fetch_and_parse(job, session)
        assert mail.uid == 1 and isinstance(mail.parsed, ParsedMessage)
        kept = session._client
        [mail2] = fetch_and_parse(dataclasses.replace(job, uids=(2,)), session)
        assert mail2.uid == 2 and session._client is kept  # one login for both batches
        kept.shutdown()  # the server dropped it meanwhile: reopened once, transparently
        [again] = fetch_and_parse(job, session)
        assert again.uid == 1 and session._client is not kept
        with pytest.raises(imaplib.IMAP4.error, match="UIDVALIDITY"):
            fetch_and_parse(dataclasses.replace(job, uidvalidity=uidvalidity + 1), session)
        assert session._client is None
        with pytest.raises(imaplib.IMAP4.error):
            fetch_and_parse(dataclasses.replace(job, password="wrong"), session)
    finally:
        session.close()
