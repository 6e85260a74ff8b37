"""Whole corpora through parse_message: nothing but ParseError may escape.

- CPython's own ``test/test_email/data`` (always, when the stdlib tests are installed);
- ``../shared/corpora/mime`` and ``../shared/corpora/bounces`` when present;
- ``../shared/corpora/replies/replies.jsonl`` when present: new-text agreement rate
  per source, printed, and asserted >= 95% overall (issue 2);
- a hypothesis fuzz test over arbitrary bytes and mutated real mail.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inboxd.core.model import MessageKind, ParsedMessage, ParseError
from inboxd.core.parse import parse_message

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("INBOXD_SHARED", REPO.parent / "shared")) / "corpora"


def _cpython_data() -> list[Path]:
    try:
        spec = importlib.util.find_spec("test.test_email")
    except ImportError:
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    return sorted(p for p in data.iterdir() if p.is_file()) if data.is_dir() else []


CPYTHON = _cpython_data()


def _parse_or_quarantine(raw: bytes) -> ParsedMessage | None:
    try:
        return parse_message(raw)
    except ParseError as exc:
        assert exc.reason
        return None


@pytest.mark.skipif(not CPYTHON, reason="CPython test data not installed")
def test_cpython_email_test_data() -> None:
    parsed = quarantined = 0
    for path in CPYTHON:
        result = _parse_or_quarantine(path.read_bytes())
        if result is None:
            quarantined += 1
            continue
        parsed += 1
        assert result.message_id
        assert result.content_digest and result.raw_sha256
        if path.name.startswith("msg_"):
            assert result.headers, path.name
    print(f"\nCPython email data: {parsed} parsed, {quarantined} quarantined")
    # Every msg_*.txt except the header-less msg_19 is a mail; images/sounds are not.
    assert parsed >= sum(p.name.startswith("msg_") for p in CPYTHON) - 1
    assert quarantined >= sum(not p.name.startswith("msg_") for p in CPYTHON)


def _files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


MIME = _files(SHARED / "mime")
BOUNCES = _files(SHARED / "bounces")


@pytest.mark.skipif(not MIME, reason="../shared/corpora/mime not present")
def test_shared_mime_corpus() -> None:
    outcomes: Counter[str] = Counter()
    for path in MIME:
        if path.suffix.lower() in (".md", ".txt") and path.stem.lower() == "readme":
            continue
        outcomes["parsed" if _parse_or_quarantine(path.read_bytes()) else "quarantined"] += 1
    print(f"\nshared mime corpus: {dict(outcomes)}")


@pytest.mark.skipif(not BOUNCES, reason="../shared/corpora/bounces not present")
def test_shared_bounce_corpus() -> None:
    dsn_total = dsn_found = total = found = 0
    missed: list[str] = []
    for path in BOUNCES:
        if path.stem.lower() == "readme":
            continue
        raw = path.read_bytes()
        m = _parse_or_quarantine(raw)
        total += 1
        head = raw[:8192].lower()
        is_dsn = b"multipart/report" in head and b"delivery-status" in raw.lower()
        recognized = m is not None and m.kind is MessageKind.BOUNCE
        found += recognized
        if is_dsn:
            dsn_total += 1
            dsn_found += recognized
            if not recognized:
                missed.append(path.name)
    print(
        f"\nbounces: {found}/{total} recognized ({found / max(total, 1):.1%}); "
        f"DSNs: {dsn_found}/{dsn_total} ({dsn_found / max(dsn_total, 1):.1%})"
    )
    assert not missed, f"multipart/report DSNs not recognized: {missed}"


REPLIES = SHARED / "replies" / "replies.jsonl"


def _field(record: dict[str, object], *names: str) -> str | None:
    for name in names:
        value = record.get(name)
        if isinstance(value, str):
            return value
    return None


def _norm(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.skipif(not REPLIES.is_file(), reason="../shared/corpora/replies not present")
def test_shared_reply_corpus() -> None:  # pragma: no cover - only where the corpus exists
    """Compare whitespace-normalized new text with the upstream expectation.

    The corpus README describes the comparison; the field names below are the ones
    it is expected to use (raw mail or body text in, expected reply out).
    """
    from inboxd.core.reply_text import extract_new_text

    per_source: dict[str, list[int]] = {}
    for line in REPLIES.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        expected = _field(record, "expected", "reply", "new_text", "visible_text")
        raw = _field(record, "raw", "eml", "message")
        body = _field(record, "body", "text", "email")
        if expected is None or (raw is None and body is None):
            continue
        if raw is not None:
            try:
                got = parse_message(raw.encode("utf-8", "surrogateescape")).new_text
            except ParseError:
                got = ""
        else:
            got = extract_new_text(body or "", _field(record, "html") or "")
        source = _field(record, "source") or "unknown"
        stats = per_source.setdefault(source, [0, 0])
        stats[0] += _norm(got) == _norm(expected)
        stats[1] += 1
    assert per_source, "replies.jsonl has no usable records (check its README)"
    for source, (ok, n) in sorted(per_source.items()):
        print(f"\nreplies[{source}]: {ok}/{n} = {ok / n:.1%}")
    ok = sum(v[0] for v in per_source.values())
    n = sum(v[1] for v in per_source.values())
    print(f"replies overall: {ok}/{n} = {ok / n:.1%}")
    assert ok / n >= 0.95


def _check(raw: bytes) -> None:
    try:
        m = parse_message(raw, max_bytes=1 << 20)
    except ParseError as exc:
        # "unparseable: <exception>" means an internal bug was caught by the last guard.
        assert exc.reason and not exc.reason.startswith("unparseable"), exc.reason
        return
    assert m.size == len(raw)
    assert m.date is None or m.date.utcoffset() is not None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_fuzz_arbitrary_bytes(raw: bytes) -> None:
    _check(raw)


SEEDS = [p.read_bytes() for p in CPYTHON if p.name.startswith("msg_")][:20] or [
    b"From: a@b.c\r\nSubject: x\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n"
    b"--q\r\nContent-Type: text/plain\r\n\r\nhi\r\n--q--\r\n"
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(0, 1 << 16), st.binary(min_size=0, max_size=8)), max_size=8),
)
def test_fuzz_mutated_mail(seed: bytes, edits: list[tuple[int, bytes]]) -> None:
    raw = bytearray(seed)
    for pos, chunk in edits:
        at = pos % (len(raw) + 1)
        raw[at : at + len(chunk) // 2] = chunk
    _check(bytes(raw))


HEADERISH = st.sampled_from(
    [
        b"From: ", b"Subject: =?utf-8?b?", b"Content-Type: multipart/mixed; boundary=",
        b"--", b"\r\n", b"\n", b"\r\n\r\n", b"Content-Transfer-Encoding: base64",
        b"Content-Type: message/rfc822", b"=?", b"?=", b"<", b">", b"@", b"\xff\xfe",
        b"Content-Type: text/html", b"<blockquote type=cite>", b"charset=x-bogus",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(HEADERISH, st.binary(max_size=16)), max_size=60))
def test_fuzz_mime_shaped(chunks: list[bytes]) -> None:
    _check(b"From: a@b.c\r\n" + b"".join(chunks))
