"""Outlook's Thread-Index header (MS-OXOMSG 2.2.1.3, PidTagConversationIndex).

Outlook and Exchange group a conversation by the 16-byte GUID in the 22-byte
header block of this value, not by References, so a helpdesk whose mails carry
no Thread-Index (or a fresh one per mail) shows up as scattered single mails in
Outlook. The value is: 0x01, the 40 high bits of a FILETIME, the GUID, then one
5-byte "response level" per reply.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
_DC0_LIMIT = 1 << 49  # delta code 0 holds bits 18..48 of the time difference
_DC1_MAX = (1 << 54) - 1  # delta code 1 holds bits 23..53
_HEADER_END_RE = re.compile(rb"\r?\n\r?\n")
_THREAD_INDEX_RE = re.compile(rb"(?im)^thread-index[ \t]*:([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)")


def filetime(moment: datetime) -> int:
    """Windows FILETIME: 100-nanosecond intervals since 1601-01-01 UTC."""
    if moment.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    delta = moment - _FILETIME_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def from_filetime(value: int) -> datetime:
    return _FILETIME_EPOCH + timedelta(microseconds=value // 10)


@dataclass(frozen=True, slots=True)
class ThreadIndexChild:
    delta: int  # FILETIME units after the header time, as far as the block keeps them
    random: int  # 4 bits
    sequence: int  # 4 bits


@dataclass(frozen=True, slots=True)
class ThreadIndex:
    """A decoded Thread-Index (MS-OXOMSG 2.2.1.3, PidTagConversationIndex)."""

    header_filetime: int  # FILETIME with its low 24 bits dropped (as stored)
    guid: bytes  # 16 bytes: what Outlook derives the conversation id from
    children: tuple[ThreadIndexChild, ...]

    @property
    def started(self) -> datetime:
        return from_filetime(self.header_filetime)

    def child_times(self) -> list[datetime]:
        return [from_filetime(self.header_filetime + c.delta) for c in self.children]


def thread_index_root(root_message_id: str, started: datetime) -> bytes:
    """The 22-byte header block: 0x01, 40 bits of FILETIME, a 16-byte GUID.

    The GUID is a hash of the ticket's first Message-ID, so every mail of the ticket
    (rendered at any time, by any process) gets the same conversation.
    """
    digest = hashlib.sha256(b"inboxd-thread-index:" + root_message_id.lower().encode()).digest()
    guid = bytearray(digest[:16])
    guid[6] = (guid[6] & 0x0F) | 0x40  # shaped like a version-4 UUID, as Outlook's are
    guid[8] = (guid[8] & 0x3F) | 0x80
    time40 = (filetime(started) >> 24) & ((1 << 40) - 1)
    return b"\x01" + time40.to_bytes(5, "big") + bytes(guid)


def thread_index_child(parent: bytes, moment: datetime, salt: str, sequence: int = 0) -> bytes:
    """``parent`` plus one 5-byte response level for a reply sent at ``moment``.

    Response level: 1 bit delta code, 31 bits of the time since the header time
    (bits 18..48 of the difference, or bits 23..53 when it is too large for that),
    4 random bits (here derived from ``salt``, to stay deterministic) and a 4-bit
    sequence count.
    """
    header_time = int.from_bytes(parent[1:6], "big") << 24
    delta = max(0, filetime(moment) - header_time)
    if delta < _DC0_LIMIT:
        word = (delta >> 18) & 0x7FFFFFFF
    else:
        word = 0x80000000 | ((min(delta, _DC1_MAX) >> 23) & 0x7FFFFFFF)
    rand = hashlib.sha256(salt.encode()).digest()[0] >> 4
    return parent + word.to_bytes(4, "big") + bytes([(rand << 4) | (sequence & 0x0F)])


def decode_thread_index(value: str) -> ThreadIndex | None:
    """Decode a Thread-Index header value; None when it is not a valid one."""
    try:
        raw = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) < 22 or (len(raw) - 22) % 5 or raw[0] != 0x01:
        return None
    children = []
    for offset in range(22, len(raw), 5):
        word = int.from_bytes(raw[offset : offset + 4], "big")
        shift = 23 if word & 0x80000000 else 18
        children.append(
            ThreadIndexChild(
                delta=(word & 0x7FFFFFFF) << shift,
                random=raw[offset + 4] >> 4,
                sequence=raw[offset + 4] & 0x0F,
            )
        )
    return ThreadIndex(int.from_bytes(raw[1:6], "big") << 24, raw[6:22], tuple(children))


def thread_index_in_headers(raw: bytes) -> str:
    """The first valid-looking Thread-Index header of raw mail ``raw``, or "".

    A regex over the header block, not a header parser: the reactor asks this of
    the ticket's first mail for every outbound mail it queues, and the value is
    base64, so neither RFC 2047 decoding nor charsets matter. Folded values are
    unfolded; anything that does not decode as a Thread-Index gives "".
    """
    end = _HEADER_END_RE.search(raw)
    head = raw[: end.start()] if end else raw
    if raw.startswith((b"\r\n", b"\n")):
        return ""  # no header block at all
    found = _THREAD_INDEX_RE.search(head)
    if found is None:
        return ""
    value = "".join(found.group(1).decode("ascii", "replace").split())
    return value if decode_thread_index(value) is not None else ""
