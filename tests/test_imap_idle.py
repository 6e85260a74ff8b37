"""No mail may be left for the IDLE renewal (25 minutes) by an announcement lost in imaplib.

* Mail that arrives between the sync's last SEARCH and the IDLE command:
  Dovecot answers IDLE with ``+ idling`` and ``* n EXISTS`` in one TCP segment;
  imaplib reads both into its buffer, where imapclient's ``idle_check`` (a
  poll() on the socket) never looks.
* Mail delivered while the server runs the last SEARCH: its EXISTS comes with
  the SEARCH answer (imaplib keeps it aside) but its UID is not in the result,
  and the server does not announce it again at IDLE.

Both were found by bench/latency.py (about 1 mail in 7 waited for the next one).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
from servers.dovecot import DovecotServer
from support.daemon import mail

from inboxd.config import MailboxConfig
from inboxd.ingest.imap import MailboxFetcher, SyncResult, _input_buffered
from inboxd.ingest.sink import Checkpoint, FetchedMail

WAIT = 10.0  # IDLE normally answers in about 0.5 s


class MemorySink:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.checkpoints: dict[tuple[str, str], Checkpoint] = {}
        self.digests: list[str] = []

    def checkpoint(self, mailbox: str, folder: str) -> Checkpoint | None:
        with self.lock:
            return self.checkpoints.get((mailbox, folder))

    def store_batch(
        self, mailbox: str, folder: str, uidvalidity: int, mails: Sequence[FetchedMail]
    ) -> None:
        with self.lock:
            self.digests.extend(hashlib.sha256(m.raw).hexdigest() for m in mails)
            self.checkpoints[(mailbox, folder)] = Checkpoint(uidvalidity, max(m.uid for m in mails))

    def count(self) -> int:
        with self.lock:
            return len(self.digests)


class AppendAfterSync(MailboxFetcher):
    """Appends one mail right after its first sync finished (its last SEARCH done),
    i.e. exactly in the window before the IDLE command."""

    def __init__(self, server: DovecotServer, user: str, sink: MemorySink) -> None:
        config = MailboxConfig(
            name="box",
            address="support@help.example",
            imap_host=server.host,
            imap_port=server.port,
            imap_security="none",
            username=user,
            poll_interval=3600,  # only IDLE can bring the mail within WAIT
            imap_timeout=10,
        )
        super().__init__(config, sink, password=user)
        self.server = server
        self.user = user
        self.appended = 0

    def _sync_all(self, client: Any, *, recover: bool, stop: threading.Event | None) -> SyncResult:
        result = super()._sync_all(client, recover=recover, stop=stop)
        if not self.appended:
            self.server.append(self.user, "INBOX", [mail("window@customer.example", "Window")])
            self.appended = 1
        return result


@pytest.mark.server
def test_mail_arriving_just_before_idle_is_fetched(dovecot: DovecotServer, imap_user: str) -> None:
    sink = MemorySink()
    box = AppendAfterSync(dovecot, imap_user, sink)
    stop = threading.Event()
    thread = threading.Thread(target=box.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + WAIT
        while sink.count() < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert box.appended == 1
        assert sink.count() == 1, "mail announced with the IDLE continuation was missed"
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


@pytest.mark.server
def test_input_buffered_sees_the_exists_read_along_with_the_continuation(
    dovecot: DovecotServer, imap_user: str
) -> None:
    client = dovecot.connect(imap_user)
    try:
        client.select_folder("INBOX", readonly=True)
        client.idle()
        assert not _input_buffered(client)
        client.idle_done()
        dovecot.append(imap_user, "INBOX", [mail("buffered@customer.example", "Buffered")])
        client.idle()
        assert _input_buffered(client)
        _, responses = client.idle_done()
        assert (1, b"EXISTS") in responses
        client.idle()  # the buffer was drained by DONE: nothing left over
        assert not _input_buffered(client)
        client.idle_done()
    finally:
        client.logout()


class _Imaplib:
    def __init__(self) -> None:
        self.untagged_responses: dict[str, list[bytes]] = {}


class RacingClient:
    """Stands in for imapclient: the first SEARCH misses a mail delivered while the
    server ran it, whose EXISTS comes with the answer (imaplib keeps it aside)."""

    def __init__(self) -> None:
        self._imap = _Imaplib()
        self.searches = 0

    def select_folder(self, folder: str, readonly: bool = False) -> dict[bytes, int]:
        return {b"UIDVALIDITY": 7, b"UIDNEXT": 2, b"EXISTS": 0}

    def search(self, criteria: list[str]) -> list[int]:
        self.searches += 1
        if self.searches == 1:
            self._imap.untagged_responses["EXISTS"] = [b"1"]
            return []
        return [1]

    def fetch(self, uids: list[int], items: list[str]) -> dict[int, dict[bytes, object]]:
        if items == ["RFC822.SIZE"]:  # read before the bodies
            return {uid: {b"RFC822.SIZE": 200} for uid in uids}
        return {uid: {b"BODY[]": mail(f"race{uid}@customer.example", "Race")} for uid in uids}


def test_exists_reported_with_the_search_answer_triggers_another_search() -> None:
    sink = MemorySink()
    config = MailboxConfig(name="box", address="support@help.example", imap_host="localhost")
    box = MailboxFetcher(config, sink, password=None)
    client = RacingClient()
    result = box._sync_folder(client, "INBOX", primary=True, recover=False, stop=None)
    assert result.fetched == 1 and sink.count() == 1
    assert client.searches == 3  # missed, found, nothing more
