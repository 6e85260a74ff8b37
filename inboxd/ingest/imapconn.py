"""IMAP connection plumbing shared by the mailbox fetcher and the ingest workers.

Connecting (TLS, STARTTLS or plain), reading a SELECT answer, fetching a batch
of bodies and closing: the pieces both sides need, so neither imports the other.
imapclient's bytes keys (``b'UIDVALIDITY'``, ``b'BODY[]'``) stop here.
"""

from __future__ import annotations

import contextlib
import imaplib
import ssl
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from imapclient import IMAPClient, SocketTimeout

from inboxd.config import MailboxConfig
from inboxd.ingest.sink import FetchedMail

CONNECT_TIMEOUT = 15.0

# Errors of the connection or the protocol: logged as one WARNING line, then retried.
NETWORK_ERRORS: tuple[type[BaseException], ...] = (imaplib.IMAP4.error, OSError, EOFError)


@dataclass(frozen=True, slots=True)
class FolderState:
    uidvalidity: int
    uidnext: int | None
    exists: int


def key_text(key: object) -> str:
    """An IMAP response key or atom as upper-case text (bytes or str)."""
    return key.decode("ascii", "replace").upper() if isinstance(key, bytes) else str(key).upper()


def normalise_keys(data: Mapping[Any, Any]) -> dict[str, Any]:
    """imapclient's ``{b'UIDVALIDITY': 1}`` -> ``{'UIDVALIDITY': 1}``."""
    return {key_text(key): value for key, value in data.items()}


def folder_state(select_response: Mapping[Any, Any]) -> FolderState:
    data = normalise_keys(select_response)
    if "UIDVALIDITY" not in data:
        raise imaplib.IMAP4.error("SELECT response without UIDVALIDITY")
    uidnext = data.get("UIDNEXT")
    return FolderState(
        uidvalidity=int(data["UIDVALIDITY"]),
        uidnext=int(uidnext) if uidnext is not None else None,
        exists=int(data.get("EXISTS", 0)),
    )


def mails_from_fetch(
    response: Mapping[int, Mapping[Any, Any]], uids: Iterable[int]
) -> list[FetchedMail]:
    """Bodies of ``uids`` from a ``FETCH BODY.PEEK[]`` answer, in UID order.

    A UID absent from the answer was expunged meanwhile and is skipped; a UID
    present without a body is a protocol error (retrying beats skipping it)."""
    mails = []
    fetched_at = time.time()
    for uid in sorted(uids):
        item = response.get(uid)
        if item is None:
            continue
        data = normalise_keys(item)
        body = data.get("BODY[]")
        if body is None:
            raise imaplib.IMAP4.error(f"FETCH answer for UID {uid} has no BODY[]")
        mails.append(FetchedMail(uid=uid, raw=bytes(body), fetched_at=fetched_at))
    return mails


def connect(config: MailboxConfig, password: str | None, context: ssl.SSLContext | None) -> Any:
    """A logged-in IMAPClient for ``config`` (TLS, STARTTLS or plain)."""
    if config.imap_security != "none":
        context = context or ssl.create_default_context()
    client = IMAPClient(
        config.imap_host,
        port=config.imap_port,
        ssl=config.imap_security == "tls",
        ssl_context=context,
        timeout=SocketTimeout(connect=CONNECT_TIMEOUT, read=config.imap_timeout),
    )
    try:
        if config.imap_security == "starttls":
            client.starttls(context)
        client.login(config.username or config.address, password or "")
    except BaseException:
        close_client(client, graceful=False)
        raise
    return client


def fetch_chunk(
    client: Any, uids: list[int], io_lock: threading.Lock | None = None
) -> list[FetchedMail]:
    """``BODY.PEEK[]`` of ``uids``; ``io_lock`` when another thread shares ``client``."""
    with io_lock or contextlib.nullcontext():
        response = client.fetch(uids, ["BODY.PEEK[]"])
    return mails_from_fetch(response, uids)


SIZE_CHUNK = 1000  # UIDs per RFC822.SIZE request (keeps the command line short)
HEAD_LIMIT = 64 * 1024  # bytes of an oversize mail's header block kept in quarantine


def fetch_sizes(client: Any, uids: list[int]) -> dict[int, int]:
    """RFC822.SIZE of each UID (absent: expunged meanwhile), read before any body."""
    sizes: dict[int, int] = {}
    for start in range(0, len(uids), SIZE_CHUNK):
        chunk = uids[start : start + SIZE_CHUNK]
        for uid, item in client.fetch(chunk, ["RFC822.SIZE"]).items():
            size = normalise_keys(item).get("RFC822.SIZE")
            if size is not None:
                sizes[int(uid)] = int(size)
    return sizes


def fetch_heads(
    client: Any, oversize: Iterable[tuple[int, int]], io_lock: threading.Lock | None = None
) -> list[FetchedMail]:
    """The first ``HEAD_LIMIT`` bytes of the header block of each oversize mail: what
    its quarantine row keeps (the body is never fetched)."""
    wanted = dict(oversize)
    if not wanted:
        return []
    with io_lock or contextlib.nullcontext():
        response = client.fetch(list(wanted), [f"BODY.PEEK[HEADER]<0.{HEAD_LIMIT}>"])
    heads = []
    for uid in sorted(wanted):
        item = response.get(uid)
        if item is None:
            continue
        data = normalise_keys(item)
        head = next((v for k, v in data.items() if k.startswith("BODY[HEADER]")), b"")
        heads.append(FetchedMail(uid=uid, raw=bytes(head or b""), oversize=wanted[uid]))
    return heads


def fetch_batch(
    client: Any,
    uids: list[int],
    oversize: Iterable[tuple[int, int]] = (),
    io_lock: threading.Lock | None = None,
) -> list[FetchedMail]:
    """A planned batch: the bodies of ``uids`` and the heads of ``oversize``, by UID."""
    found = fetch_chunk(client, uids, io_lock) if uids else []
    found += fetch_heads(client, oversize, io_lock)
    return sorted(found, key=lambda m: m.uid)


def close_client(client: Any, *, graceful: bool) -> None:
    """LOGOUT after a clean run; after an error just drop the socket (the peer may hang)."""
    try:
        if graceful:
            client.logout()
        else:
            client.shutdown()
    except Exception:
        with contextlib.suppress(Exception):
            client.shutdown()
