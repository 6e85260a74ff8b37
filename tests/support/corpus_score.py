"""Scoring of ``../shared/corpora`` replies and bounces, exactly as its README says.

One implementation for the pytest corpus tests and ``bench/corpora.py``, so the
figures a developer sees and the goals CI asserts can never drift apart. The
scorer only builds mails and compares results: what parses them is passed in.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def shared_corpora() -> Path:
    """``$INBOXD_SHARED/corpora``, else ``../shared/corpora`` beside the repository."""
    return Path(os.environ.get("INBOXD_SHARED", REPO.parent / "shared")) / "corpora"


def read_index(path: Path) -> list[dict[str, object]]:
    """The records of a JSON Lines index; [] when the file is absent."""
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def subdir(record: dict[str, object]) -> str:
    """The source folder a record's ``file`` sits in (``talon``, ``flufl.bounce``...)."""
    return str(record["file"]).split("/", 1)[0]


# --- replies ------------------------------------------------------------------------------------

_REPLACED = (b"message-id", b"in-reply-to", b"references")
_HEAD_END = re.compile(rb"\r?\n\r?\n")


def _fresh_id(n: int) -> bytes:
    return b"<corpus-reply-%d@score.example>" % n


def _renumber(raw: bytes, n: int) -> bytes:
    """``raw`` with its Message-ID/In-Reply-To/References replaced by a fresh Message-ID."""
    end = _HEAD_END.search(raw)
    head, rest = (raw[: end.start()], raw[end.start() :]) if end else (raw, b"")
    newline = b"\r\n" if b"\r\n" in head else b"\n"
    kept: list[bytes] = []
    dropping = False
    for line in re.split(rb"\r?\n", head):
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        dropping = line.split(b":", 1)[0].strip().lower() in _REPLACED
        if not dropping:
            kept.append(line)
    kept.append(b"Message-ID: " + _fresh_id(n))
    return newline.join(kept) + rest


def _wrap_body(body: bytes, html: bool, n: int) -> bytes:
    """A mail with the README's headers and ``body`` byte for byte as its body."""
    ctype = b"text/html" if html else b"text/plain"
    head = [
        b"From: Corpus Sender <sender@customer.example>",
        b"To: support@example.test",
        b"Subject: Re: corpus record %d" % n,
        b"Message-ID: " + _fresh_id(n),
        b"Date: Mon, 02 Mar 2026 10:00:00 +0000",
        b"MIME-Version: 1.0",
        b"Content-Type: " + ctype + b"; charset=utf-8",
        b"Content-Transfer-Encoding: 8bit",
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def reply_mail(folder: Path, record: dict[str, object], n: int) -> bytes:
    """The mail record ``n`` of ``replies.jsonl`` goes in as (README, ``input``)."""
    data = (folder / str(record["file"])).read_bytes()
    kind = record["input"]
    if kind == "rfc822":
        return _renumber(data, n)
    if kind in ("text", "html"):
        return _wrap_body(data, kind == "html", n)
    raise ValueError(f"unknown input {kind!r} in {record['file']}")


def norm(s: str, mode: str) -> str:
    """The README's normalisation of both sides before an exact comparison."""
    if mode == "no_whitespace":
        return re.sub(r"\s+", "", s)
    lines = [line.rstrip() for line in s.replace("\r\n", "\n").split("\n")]
    return "\n".join(lines).strip("\n")


def _strings(record: dict[str, object], key: str) -> list[str]:
    value = record.get(key) or []
    assert isinstance(value, list)
    return [str(v) for v in value]


def ok(record: dict[str, object], text: str | None) -> bool:
    """Whether ``text`` (the stored new text, None when none) passes the record."""
    if text is None:
        return False
    if any(m not in text for m in _strings(record, "must_contain")):
        return False
    if any(m in text for m in _strings(record, "must_not_contain")):
        return False
    exp = record["expected_reply"]
    if exp is None:
        return True
    mode = str(record["compare"])
    a, b = norm(text, mode), norm(str(exp), mode)
    return a == b or (record.get("signature") == "kept" and bool(a) and b.startswith(a))


@dataclass
class Tally:
    """Passes out of records, overall and per source folder, with the failures named."""

    passed: int = 0
    total: int = 0
    per_source: dict[str, list[int]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def add(self, source: str, passed: bool, name: str) -> None:
        counts = self.per_source.setdefault(source, [0, 0])
        counts[0] += passed
        counts[1] += 1
        self.passed += passed
        self.total += 1
        if not passed:
            self.failures.append(name)

    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else 0.0


def score_replies(folder: Path, new_text: Callable[[bytes], str | None]) -> Tally:
    """Every record of ``folder/replies.jsonl`` through ``new_text(mail)``."""
    tally = Tally()
    for n, record in enumerate(read_index(folder / "replies.jsonl")):
        text = new_text(reply_mail(folder, record, n))
        tally.add(subdir(record), ok(record, text), str(record["file"]))
    return tally


# --- bounces ------------------------------------------------------------------------------------


@dataclass
class BounceScore:
    """The README's two bounce rates, and the goal's split of the first one."""

    recognized: Tally = field(default_factory=Tally)  # treated as bounce == dsn, every file
    dsn: Tally = field(default_factory=Tally)  # recognized among dsn: true
    not_dsn: Tally = field(default_factory=Tally)  # dsn: false; passed = not taken for one
    recipients: Tally = field(default_factory=Tally)  # exact set, rows with recipients


def score_bounces(
    folder: Path, detect: Callable[[bytes], tuple[bool, Iterable[str]]]
) -> BounceScore:
    """Every file of ``folder/bounces.jsonl`` through ``detect(raw)``.

    ``detect`` answers (treated as a bounce, failed recipients). A file goes in as its
    bytes; the product drops a leading mbox ``From `` line itself.
    """
    score = BounceScore()
    for record in read_index(folder / "bounces.jsonl"):
        name, source = str(record["file"]), subdir(record)
        is_bounce, found = detect((folder / name).read_bytes())
        dsn = record["dsn"] is True
        score.recognized.add(source, is_bounce == dsn, name)
        (score.dsn if dsn else score.not_dsn).add(source, is_bounce == dsn, name)
        expected = set(_strings(record, "recipients"))
        if expected:
            got = {a.lower() for a in found} if is_bounce else set()
            score.recipients.add(source, got == expected, name)
    return score
