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

_HEADER_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+:")
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
    # One decode for the block (ASCII + surrogateescape is byte-for-byte, so it equals
    # decoding each line); the loop then works on str.
    text = head.decode("ascii", "surrogateescape")
    lines = text.split("\n")
    if "\r" in text:
        lines = [line.rstrip("\r") for line in lines]
    # A field's lines are joined once at the end: appending each continuation line
    # to the value so far was quadratic (200,000 folded References ids: minutes).
    fields: list[tuple[str, list[str]]] = []
    for line in lines:
        if line.startswith((" ", "\t")):
            if not fields:
                return None
            fields[-1][1].append(line)
            continue
        if not _HEADER_NAME.match(line):
            return None  # feedparser records a defect here: let it
        name, _, value = line.partition(":")
        fields.append((name, [value.lstrip(" \t")]))
    return [(name, "\n".join(parts)) for name, parts in fields], body


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


def delimiters(body: bytes, marker: bytes) -> list[tuple[int, int, bool]]:
    r"""Boundary delimiter lines in ``body``: (start, end, is_close) per line.

    Same matches as ``re.finditer(rb"\n--" + re.escape(marker) + rb"(--)?[ \t]*(?:\r?\n|\Z)")``
    (``start`` at the leading "\n", ``end`` after the line break), but with
    ``bytes.find``: a regex compiled per boundary costs more than the whole split.
    """
    needle = b"\n--" + marker
    n = len(body)
    found: list[tuple[int, int, bool]] = []
    pos = body.find(needle)
    while pos >= 0:
        k = pos + len(needle)
        close = body.startswith(b"--", k)
        if close:
            k += 2
        while k < n and body[k] in (32, 9):
            k += 1
        if k == n:
            found.append((pos, n, close))
            break
        c = body[k]
        if c == 10 or (c == 13 and body.startswith(b"\n", k + 1)):
            end = k + 1 if c == 10 else k + 2
            found.append((pos, end, close))
            pos = body.find(needle, end)
        else:
            pos = body.find(needle, pos + 1)
    return found


def _split_bodies(body: bytes, boundary: str) -> list[bytes] | None:
    """The raw bytes of each part of a clean multipart body, None when not clean."""
    try:
        marker = boundary.encode("ascii")
    except UnicodeEncodeError:
        return None
    # The body gets a leading "\n" so a delimiter on its first line is found too.
    body = b"\n" + body
    matches = delimiters(body, marker)
    if len(matches) < 2 or not matches[-1][2]:
        return None  # no parts, or no close delimiter: let feedparser judge
    if any(m[2] for m in matches[:-1]):
        return None
    parts: list[bytes] = []
    for (_, start, _), (end, _, _) in pairwise(matches):
        part = body[start:end]
        if part.endswith(b"\r"):
            part = part[:-1]  # the CRLF before a delimiter belongs to the delimiter
        parts.append(part)
    return parts


def _split_multipart(msg: Message, body: bytes, boundary: str, depth: int, budget: _Budget) -> bool:
    bodies = _split_bodies(body, boundary)
    if bodies is None:
        return False
    child_type = "text/plain"  # multipart/digest (message/rfc822 default) goes to feedparser
    for part in bodies:
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


# --- a lighter tree for the fast path of parse_message ------------------------------------

# Parameter lists in the common simple shape: every value a plain token or a quoted
# string without escapes, ";" or angle brackets, no RFC 2231 "*" names, no bare
# attributes. For exactly these, compat32's _parseparam/decode_params/unquote
# chain reduces to "strip, lowercase the name, drop the quotes"; anything else is
# answered by a real compat32 Message (see Part.message).
_SIMPLE_PARAMS = re.compile(
    r'[^;"\\=]*(?:;\s*[A-Za-z0-9_.-]+\s*=\s*(?:"[^"\\;<>]*"|[^";\\<>\s]*)\s*)*(?:;\s*)?\Z'
)
_PARAM = re.compile(r';\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"([^"\\;<>]*)"|([^";\\<>\s]*))')
_MIME_FIELDS = ("content-type", "content-disposition", "content-transfer-encoding", "content-id")


def simple_params(value: str) -> dict[str, str] | None:
    """Parameters of a simple header value (first one wins), None when not simple."""
    if not _SIMPLE_PARAMS.match(value):
        return None
    # compat32 lists the main value as a parameter too (a bare name with value ""):
    # "Content-Type: charset" answers get_param("charset") with "".
    params: dict[str, str] = {value.partition(";")[0].strip().lower(): ""}
    for m in _PARAM.finditer(value):
        params.setdefault(m.group(1).lower(), m.group(2) if m.group(3) is None else m.group(3))
    return params


class Part:
    """One node of a clean message: its header fields, type, and raw body or children.

    ``first`` maps a lowercased field name to its first value, which is what
    ``Message.get`` answers; the MIME fields are known to be ASCII, so no
    compat32 sanitizing applies to them.
    """

    __slots__ = ("_params", "body", "children", "ctype", "fields", "first")

    def __init__(self, fields: list[tuple[str, str]], body: bytes) -> None:
        self.fields = fields
        self.body = body
        self.children: list[Part] = []
        first: dict[str, str] = {}
        for name, value in fields:
            first.setdefault(name.lower(), value)
        self.first = first
        self._params: dict[str, dict[str, str] | None] = {}
        declared = first.get("content-type")
        ctype = "text/plain" if declared is None else declared.partition(";")[0].strip().lower()
        self.ctype = ctype if ctype.count("/") == 1 else "text/plain"

    def message(self) -> Message:
        """A compat32 Message with this part's headers, for the unusual parameter shapes."""
        msg = Message()
        for name, value in self.fields:
            msg.set_raw(name, value)
        return msg

    def params(self, header: str) -> dict[str, str] | None:
        """Parameters of ``header`` ({} when absent), None when only compat32 can say."""
        if header in self._params:
            return self._params[header]
        value = self.first.get(header)
        params = {} if value is None else simple_params(value)
        self._params[header] = params
        return params

    def boundary(self) -> str | None:
        """``Message.get_boundary()``."""
        params = self.params("content-type")
        if params is None:
            return self.message().get_boundary()
        value = params.get("boundary")
        return None if value is None else value.rstrip()


def _node(data: bytes, depth: int, budget: _Budget) -> Part | None:
    budget.parts += 1
    if depth > MAX_DEPTH or budget.parts > MAX_PARTS:
        return None
    split = _split_headers(data)
    if split is None:
        return None
    part = Part(*split)
    for name in _MIME_FIELDS:
        value = part.first.get(name)
        if value is not None and not value.isascii():
            return None  # compat32 turns 8-bit MIME fields into Header objects: let it
    main = part.ctype.split("/", 1)[0]
    if main == "message" or part.ctype in ("multipart/digest", "multipart/report"):
        return None  # sub-messages, digests and reports need the stdlib's tree
    if main == "multipart":
        boundary = part.boundary()
        if not boundary or len(boundary) > 200:
            return None
        bodies = _split_bodies(part.body, boundary)
        if bodies is None:
            return None
        for body in bodies:
            child = _node(body, depth + 1, budget)
            if child is None:
                return None
            part.children.append(child)
        part.body = b""
    return part


def split(raw: bytes) -> Part | None:
    """The MIME tree of clean, ordinary mail, or None when the stdlib tree is needed.

    Accepts a subset of what :func:`fast_parse` accepts, and for that subset the
    tree carries the same headers, types and raw leaf bodies.
    """
    if raw.startswith(b"From "):
        return None
    try:
        return _node(raw, 0, _Budget())
    except (ValueError, TypeError, UnicodeError, IndexError):
        return None
