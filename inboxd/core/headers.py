"""Header decoding that never fails.

The stdlib's ``policy.default`` header registry is correct but slow and raises on
some real-world garbage; the compat32 parser hands us raw strings (8-bit bytes
smuggled in as surrogate escapes), which we decode here ourselves: RFC 2047
encoded words, unknown or lying charsets, raw UTF-8/Latin-1 headers, address
lists, Message-ID lists and dates.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from datetime import UTC, datetime, timedelta, timezone
from email.utils import getaddresses, parsedate_tz

from inboxd.core.model import Address

# Charset labels seen in real mail that Python does not know, or knows under a
# different, narrower codec (mail clients mean the Windows superset).
_CHARSET_ALIASES: dict[str, str] = {
    "iso-8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "ascii",
    "ascii": "ascii",
    "ansi_x3.4-1968": "ascii",
    "unicode-1-1-utf-7": "utf-7",
    "utf8": "utf-8",
    "x-unknown": "",
    "unknown-8bit": "",
    "unknown": "",
    "x-user-defined": "cp1252",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "iso-8859-8-i": "iso-8859-8",
    "windows-874": "cp874",
    "tis-620": "cp874",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "x-mac-cyrillic": "mac_cyrillic",
    "shift-jis": "cp932",
    "shift_jis": "cp932",
    "x-sjis": "cp932",
    "sjis": "cp932",
    "big5": "big5hkscs",
    "iso-2022-jp": "iso2022_jp_ext",
    "ms949": "cp949",
}

_codec_cache: dict[str, str] = {}


def codec_for(charset: str | None) -> str:
    """Python codec name for a MIME charset label, "" when unknown.

    A pure function with a small memo: the set of labels is tiny and lookups
    through ``codecs.lookup`` are surprisingly costly on the hot path.
    """
    if not charset:
        return ""
    label = charset.strip().strip("\"'").lower()
    if label in _codec_cache:
        return _codec_cache[label]
    name = _CHARSET_ALIASES.get(label)
    if name is None:
        try:
            name = codecs.lookup(label).name
        except (LookupError, ValueError):
            name = ""
        # Refuse codecs that are not text encodings (rot13, base64 ...).
        if name and not _is_text_codec(name):
            name = ""
    if len(_codec_cache) < 512:
        _codec_cache[label] = name
    return name


def _is_text_codec(name: str) -> bool:
    try:
        info = codecs.lookup(name)
    except LookupError:
        return False
    return bool(getattr(info, "_is_text_encoding", True))


def decode_bytes(data: bytes, charset: str | None = None) -> tuple[str, bool]:
    """Decode ``data`` as text, never losing it.

    Returns ``(text, fell_back)``; ``fell_back`` is True when the declared
    charset was missing, unknown or wrong and we had to guess. Order: declared
    charset, UTF-8, charset-normalizer's best guess, Windows-1252, Latin-1
    (which cannot fail).
    """
    codec = codec_for(charset)
    if codec:
        try:
            return data.decode(codec), False
        except Exception:  # wrong label, or a broken codec: guess below
            pass
    elif data.isascii():
        return data.decode("ascii"), False
    try:
        return data.decode("utf-8"), bool(charset)
    except UnicodeDecodeError:
        pass
    guess = _guess(data)
    if guess is not None:
        return guess, True
    try:
        return data.decode("cp1252"), True
    except UnicodeDecodeError:
        return data.decode("latin-1"), True


def _guess(data: bytes) -> str | None:
    """charset-normalizer on a bounded sample: it is slow on megabytes.

    Short inputs (a header, a one-line body) carry too little signal; Windows-1252
    is the better bet for those.
    """
    if len(data) < 64:
        return None
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(data[:65536], steps=3, chunk_size=512).best()
        if best is None or best.encoding in ("ascii", "utf_8"):
            return None
        return data.decode(best.encoding)
    except Exception:
        return None


def _fix_surrogates(value: str) -> str:
    """Turn 8-bit header bytes (surrogate-escaped by compat32) into text."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        pass
    raw = value.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


_ENCODED_WORD = re.compile(
    r"=\?([^?\s]*)\?([QqBb])\?([^?]*?)\?=",
)
_BETWEEN_WORDS = re.compile(r"(\?=)[ \t\r\n]+(=\?)")
_WS = re.compile(r"\s+")
_QP_HEADER = re.compile(rb"=([0-9A-Fa-f]{2})")


def _decode_word(enc: str, text: str) -> bytes:
    """Raw bytes of one encoded word; the charset is applied after joining."""
    if enc in "Bb":
        raw = text.encode("ascii", "replace")
        raw = raw.rstrip(b"=")
        raw += b"=" * (-len(raw) % 4)
        try:
            return base64.b64decode(raw, validate=False)
        except (binascii.Error, ValueError):
            # Drop the trailing partial quantum and try again.
            cut = len(raw.rstrip(b"=")) // 4 * 4
            try:
                return base64.b64decode(raw[:cut], validate=False)
            except (binascii.Error, ValueError):
                return text.encode("utf-8", "surrogateescape")
    data = text.replace("_", " ").encode("utf-8", "surrogateescape")
    return _QP_HEADER.sub(lambda m: bytes([int(m.group(1), 16)]), data)


def decode_header(value: str | None) -> str:
    """Decode a raw header value to clean text: unfold, RFC 2047, 8-bit.

    Adjacent encoded words of one charset are joined before decoding so that a
    multibyte character split across two words survives.
    """
    if not value:
        return ""
    if not isinstance(value, str):
        value = str(value)
    if "\x00" in value:  # raw NULs; those inside encoded words go at the end
        value = value.replace("\x00", "")
    if value.isascii():  # the common case: nothing to repair
        if "=?" not in value:
            return " ".join(value.split())
    else:
        value = _fix_surrogates(value)
    if "=?" not in value:
        return " ".join(value.split())
    value = _BETWEEN_WORDS.sub(r"\1\2", value)
    out: list[str] = []
    pos = 0
    pending_charset = ""
    pending: list[bytes] = []

    def flush() -> None:
        if pending:
            text, _ = decode_bytes(b"".join(pending), pending_charset.split("*", 1)[0])
            out.append(text)
            pending.clear()

    for m in _ENCODED_WORD.finditer(value):
        if m.start() > pos:
            flush()
            out.append(value[pos : m.start()])
        charset, enc, text = m.group(1), m.group(2), m.group(3)
        label = charset.split("*", 1)[0].lower()
        if pending and label != pending_charset.lower():
            flush()
        pending_charset = label
        pending.append(_decode_word(enc, text))
        pos = m.end()
    flush()
    out.append(value[pos:])
    decoded = "".join(out)
    if "\x00" in decoded:  # =00 or base64 of a NUL: PostgreSQL text cannot hold it
        decoded = decoded.replace("\x00", "")
    return _WS.sub(" ", decoded).strip()


def parse_addresses(values: list[str]) -> tuple[Address, ...]:
    """Every mailbox in the given raw address header values, deduplicated.

    Names are decoded after splitting (encoded words may hide commas);
    entries without a usable address (group syntax, junk) are dropped.
    """
    result: list[Address] = []
    seen: set[str] = set()
    cleaned = [
        _fix_surrogates(v).replace("\r", " ").replace("\n", " ").replace("\x00", "")
        for v in values
        if v
    ]
    if not cleaned:
        return ()
    pairs = _simple_pairs(cleaned)
    if pairs is None:
        try:
            pairs = getaddresses(cleaned)
        except Exception:
            pairs = []
    for name, email in pairs:
        email = email.strip().strip("<>").strip().lower()
        # split() breaks on exactly the characters isspace() accepts
        if not email or email.split() != [email] or len(email) > 320:
            continue
        if "@" not in email and not _BARE_LOCAL.match(email):
            continue
        if email in seen:
            continue
        seen.add(email)
        result.append(Address(email=email, name=decode_header(name).strip("\"' ")))
    return tuple(result)


_ADDR = r"[^\s<>,;:()\"@\[\]\\]+@[^\s<>,;:()\"@\[\]\\]+"
_SIMPLE_ITEM = re.compile(
    r"\s*(?:"
    r"(?:\"(?P<qname>[^\"\\]*)\"|(?P<name>[^\"<>,;:()\\@]*?))\s*<(?P<angle>" + _ADDR + r")>"
    r"|(?P<bare>" + _ADDR + r"))\s*(?:,|$)"
)


def _simple_pairs(values: list[str]) -> list[tuple[str, str]] | None:
    """Fast path for the common shapes ("Name <a@b>", '"Last, First" <a@b>', "a@b", lists).

    Anything else (comments, groups, escapes, route syntax) goes to getaddresses.
    """
    pairs: list[tuple[str, str]] = []
    for value in values:
        pos = 0
        end = len(value.rstrip())
        while pos < end:
            m = _SIMPLE_ITEM.match(value, pos)
            if m is None or m.end() == pos:
                return None
            if m.group("angle"):
                pairs.append((m.group("qname") or m.group("name") or "", m.group("angle")))
            else:
                pairs.append(("", m.group("bare")))
            pos = m.end()
    return pairs


# A bare local part ("MAILER-DAEMON", "postmaster") is kept: bounce detection needs it.
_BARE_LOCAL = re.compile(r"^[a-z0-9._+-]{1,64}$")

_MSGID_BRACKETED = re.compile(r"<\s*([^<>\s]+?)\s*>")
_MSGID_BARE = re.compile(r"[^<>\s,;()\"]+@[^<>\s,;()\"]+")


def parse_msgid_list(value: str | None) -> list[str]:
    """Every Message-ID token in an In-Reply-To / References value, in order.

    Tolerates missing brackets, commas and junk between ids (Outlook and
    some web mailers produce all of those). Linear in the value's length: a
    flood of ids (200,000 in one References) is deduplicated through a dict,
    not a scan of the list so far; callers trim what they keep.
    """
    if not value:
        return []
    value = _fix_surrogates(value)
    found = [m.group(1) for m in _MSGID_BRACKETED.finditer(value)]
    if not found:
        found = _MSGID_BARE.findall(value)
    out: dict[str, None] = {}
    for token in found:
        token = token.strip()
        if token and len(token) <= 998:
            out.setdefault(token)
    return list(out)


def _plausible_id(token: str) -> bool:
    if not token or len(token) > 998 or token.split() != [token]:
        return False
    left, at, right = token.rpartition("@")
    if at:
        return bool(left.strip("<>")) and bool(right.strip("<>"))
    return len(token) >= 8  # some MTAs send ids without a domain; short junk is not one


def parse_message_id(value: str | None) -> str:
    """The Message-ID without angle brackets, exactly as sent; "" when garbage."""
    ids = parse_msgid_list(value)
    if ids:
        return ids[0] if _plausible_id(ids[0]) else ""
    if not value:
        return ""
    token = _fix_surrogates(value).strip().strip("<>").strip()
    return token if _plausible_id(token) else ""


def parse_date(value: str | None) -> datetime | None:
    """RFC 5322 date to an aware UTC datetime; None when absent or absurd."""
    if not value:
        return None
    try:
        parts = parsedate_tz(_fix_surrogates(value).strip())
    except Exception:
        return None
    if parts is None:
        return None
    try:
        year, month, day, hour, minute, second = parts[:6]
        if not (1970 <= year <= 9999):
            return None
        offset = parts[9] or 0
        if abs(offset) > 24 * 3600:
            offset = 0
        local = datetime(
            year,
            month,
            day,
            hour,
            min(minute, 59),
            min(second, 59),
            tzinfo=timezone(timedelta(seconds=offset)),
        )
        return local.astimezone(UTC)
    except (ValueError, OverflowError, TypeError):
        return None
