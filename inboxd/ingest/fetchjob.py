"""What an ingest worker process runs: fetch one batch on its own IMAP connection
and parse it (see ``inboxd.ingest.workers`` for why, and the fetcher for when)."""

from __future__ import annotations

import functools
import imaplib
import multiprocessing.util
from dataclasses import dataclass, replace
from typing import Any

from inboxd.config import MailboxConfig
from inboxd.core.parse import parse_many
from inboxd.ingest.imapconn import NETWORK_ERRORS, close_client, connect, fetch_batch, folder_state
from inboxd.ingest.sink import FetchedMail


@dataclass(frozen=True, slots=True)
class FetchJob:
    """One batch for an ingest worker: fetch these UIDs on its own connection and
    parse them. The folder must still have ``uidvalidity``."""

    config: MailboxConfig
    password: str | None
    folder: str
    uidvalidity: int
    uids: tuple[int, ...]
    max_bytes: int
    oversize: tuple[tuple[int, int], ...] = ()  # (uid, size): only their headers are fetched


class WorkerSession:
    """A worker process's IMAP connection, kept from one batch to the next.

    A connection per batch cost the server a login and a mailbox open each
    time, and Dovecot rescans a maildir when it opens it: a 40,000-mail import
    got slower with every batch. A batch of another mailbox or folder (or under
    another UIDVALIDITY), or any error, closes it; a kept connection that went
    stale meanwhile is reopened once.
    """

    def __init__(self) -> None:
        self._key: tuple[object, ...] | None = None
        self._client: Any = None

    @staticmethod
    def _key_of(job: FetchJob) -> tuple[object, ...]:
        cfg = job.config
        return (cfg.imap_host, cfg.imap_port, cfg.imap_security, cfg.username, job.password,
                job.folder, job.uidvalidity)  # fmt: skip

    def fetch(self, job: FetchJob) -> list[FetchedMail]:
        """The batch's mails (unparsed), in UID order."""
        key = self._key_of(job)
        if self._key != key:
            self.close()
        for _attempt in range(2):
            fresh = self._client is None
            if fresh:
                self._open(job, key)
            try:
                return fetch_batch(self._client, list(job.uids), job.oversize)
            except NETWORK_ERRORS:
                self.close()
                if fresh:
                    raise
        raise AssertionError("unreachable: the second attempt uses a fresh connection")

    def _open(self, job: FetchJob, key: tuple[object, ...]) -> None:
        client = connect(job.config, job.password, None)
        try:
            state = folder_state(client.select_folder(job.folder, readonly=True))
            if state.uidvalidity != job.uidvalidity:
                raise imaplib.IMAP4.error(
                    f"UIDVALIDITY of {job.folder} changed during the sync: "
                    f"{job.uidvalidity} -> {state.uidvalidity}"
                )
        except BaseException:
            close_client(client, graceful=False)
            raise
        self._client, self._key = client, key

    def close(self, *, graceful: bool = False) -> None:
        """Drop the connection; ``graceful`` says LOGOUT first (a clean exit)."""
        client, self._client, self._key = self._client, None, None
        if client is not None:
            close_client(client, graceful=graceful)


# The worker process's session; the main process never fetches through it. When
# the pool shuts down, a worker leaves with a LOGOUT rather than a dropped socket
# (multiprocessing runs its finalizers before a worker process exits; atexit does not).
_WORKER_SESSION = WorkerSession()
multiprocessing.util.Finalize(
    None, functools.partial(_WORKER_SESSION.close, graceful=True), exitpriority=10
)


def fetch_and_parse(job: FetchJob, session: WorkerSession | None = None) -> list[FetchedMail]:
    """Runs in a worker process: the batch's mails, parsed, in UID order."""
    mails = (session or _WORKER_SESSION).fetch(job)
    whole = [m for m in mails if not m.oversize]
    parsed = parse_many([m.raw for m in whole], job.max_bytes)
    done = [replace(m, parsed=p) for m, p in zip(whole, parsed, strict=True)]
    return sorted([*done, *(m for m in mails if m.oversize)], key=lambda m: m.uid)
