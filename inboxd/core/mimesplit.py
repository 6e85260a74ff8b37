"""A fast MIME splitter for well-formed mail that builds compat32 ``Message`` trees.

``email.feedparser`` walks every line of a message in Python, which dominates the
cost of parsing mail with large bodies. For the common, well-formed case the MIME
structure can be found with a handful of C-level bytes operations: the header block
ends at the first blank line, and multipart bodies split at boundary lines found
with one regex. This module does that and returns ``None`` as soon as anything is
unusual (malformed header lines, missing or unterminated boundaries, digests,
delivery reports, deep nesting), so the caller falls back to the stdlib parser,
which knows how to record defects and recover. The tree it builds is the same
shape compat32 builds: raw header strings, str payloads with surrogate escapes for
8-bit bytes, lists of sub-messages for multipart and message/rfc822. Leaf parts also
carry their undecoded body bytes as ``inboxd_raw_body`` (see :func:`raw_body`).
"""

from __future__ import annotations

import re
from email.message import Message
from itertools import pairwise

_HEADER_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")
_BLANK_LINE = re.compile(rb"\n\r?\n")
MAX_DEPTH = 20
MAX_PARTS = 1000


class _Budget:
    def __init__(self) -> None:
        self.parts = 0


def _split_headers(data: bytes) -> tuple[list[tuple[str, str]], bytes] | None:
    """Header fields (compat32 raw form) and the body; None when not clean."""
    if data.startswith((b"\r\n", b"\n")):
        return [], data[2:] if data.startswith(b"\r\n") else data[1:]
    blank = _BLANK_LINE.search(data)
    if blank is None:
        head, body = data.rstrip(b"\r\n"), b""
    else:
        head, body = data[: blank.start()], data[blank.end() :]
    fields: list[tuple[str, str]] = []
    for line in head.split(b"\n"):
        line = line.rstrip(b"\r")
        if line[:1] in (b" ", b"\t"):
            if not fields:
                return None
            name, value = fields[-1]
            fields[-1] = (name, value + "\n" + line.decode("ascii", "surrogateescape"))
            continue
        if not _HEADER_NAME.match(line):
            return None  # feedparser records a defect here: let it
        name_b, _, value_b = line.partition(b":")
        fields.append(
            (name_b.decode("ascii"), value_b.lstrip(b" \t").decode("ascii", "surrogateescape"))
        )
    return fields, body


def _build(data: bytes, depth: int, budget: _Budget, default_type: str) -> Message | None:
    budget.parts += 1
    if depth > MAX_DEPTH or budget.parts > MAX_PARTS:
        return None
    split = _split_headers(data)
    if split is None:
        return None
    fields, body = split
    msg = Message()
    if default_type != "text/plain":
        msg.set_default_type(default_type)
    for name, value in fields:
        msg.set_raw(name, value)
    ctype = msg.get_content_type()
    maintype = ctype.split("/", 1)[0]
    if maintype == "multipart":
        if ctype == "multipart/digest":
            return None
        boundary = msg.get_boundary()
        if not boundary or len(boundary) > 200:
            return None
        return msg if _split_multipart(msg, body, boundary, depth, budget) else None
    if maintype == "message":
        if ctype != "message/rfc822":
            return None  # delivery-status & co: compat32 parses those specially
        cte = str(msg.get("content-transfer-encoding", "")).strip().lower()
        if cte not in ("", "7bit", "8bit", "binary"):
            return None
        sub = _build(body, depth + 1, budget, "text/plain")
        if sub is None:
            return None
        msg.attach(sub)
        return msg
    # Latin-1 maps bytes 1:1 to code points at memcpy speed and round-trips through
    # compat32's get_payload(decode=True); the raw bytes are kept for the fast decoder.
    msg.set_payload(body.decode("latin-1"))
    msg.inboxd_raw_body = body  # type: ignore[attr-defined]
    return msg


def _split_multipart(msg: Message, body: bytes, boundary: str, depth: int, budget: _Budget) -> bool:
    try:
        marker = boundary.encode("ascii")
    except UnicodeEncodeError:
        return False
    # A literal "\n--" prefix lets the regex engine skip through base64 at C speed;
    # the body gets a leading "\n" so a delimiter on its first line is found too.
    delimiter = re.compile(rb"\n--" + re.escape(marker) + rb"(--)?[ \t]*(?:\r?\n|\Z)")
    body = b"\n" + body
    matches = list(delimiter.finditer(body))
    if len(matches) < 2 or matches[-1].group(1) is None:
        return False  # no parts, or no close delimiter: let feedparser judge
    if any(m.group(1) is not None for m in matches[:-1]):
        return False
    child_type = "text/plain"  # multipart/digest (message/rfc822 default) goes to feedparser
    for start, end in pairwise(matches):
        part = body[start.end() : end.start()]
        if part.endswith(b"\r"):
            part = part[:-1]  # the CRLF before a delimiter belongs to the delimiter
        sub = _build(part, depth + 1, budget, child_type)
        if sub is None:
            return False
        msg.attach(sub)
    return True


def fast_parse(raw: bytes) -> Message | None:
    """compat32-shaped tree for clean mail, or None to ask for the stdlib parser."""
    if raw.startswith(b"From "):
        return None
    try:
        return _build(raw, 0, _Budget(), "text/plain")
    except (ValueError, TypeError, UnicodeError, IndexError):
        return None


def raw_body(part: Message) -> bytes | None:
    """The undecoded body bytes of a leaf built by :func:`fast_parse`, else None."""
    value = getattr(part, "inboxd_raw_body", None)
    return value if isinstance(value, bytes) else None
