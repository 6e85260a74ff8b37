"""The text index: folding, whole words, and that every scan path gives the same signals."""

from __future__ import annotations

import random

import pytest

from inboxd.core.rules import textindex as ti
from inboxd.core.rules.textindex import TextIndex, compile_regex, find_word, fold, fold_keyword


def test_fold_casefolds_strips_accents_and_line_breaks() -> None:
    assert fold("Rückerstattung\r\nPER\tKreditkarte") == b"ruckerstattung  per kreditkarte"
    assert fold("Straße ÉCOLE naïve") == b"strasse ecole naive"
    assert fold("soft\u00adhyphen zero\u200bwidth") == b"softhyphen zerowidth"
    assert fold("Возврат") == "возврат".encode()
    assert fold("ﬁle") == b"file"  # NFKD compatibility ligature
    assert fold_keyword("  Credit \n  Card ") == b"credit card"


@pytest.mark.parametrize(
    ("text", "word", "hit"),
    [
        ("please refund me", "refund", True),
        ("refunds", "refund", False),
        ("prefund", "refund", False),
        ("refund.", "refund", True),
        ("«refund»", "refund", True),
        ("érefund", "refund", False),  # a letter, even accented, glues words
        ("c++, java", "c++", True),
        ("c++x", "c++", True),  # keyword ends in punctuation: no check on that side
        ("credit\n   card", "credit card", True),
        ("credit cards", "credit card", False),
        ("возврат денег", "возврат", True),
        ("невозврат", "возврат", False),
    ],
)
def test_find_word(text: str, word: str, hit: bool) -> None:
    assert find_word(fold(text), fold_keyword(word)) is hit


def _index(words: list[str], regexes: list[str], **kw: int) -> tuple[TextIndex, dict[int, str]]:
    index = TextIndex(**kw)
    names: dict[int, str] = {}
    for w in words:
        for field in ti.FIELDS:
            names[index.keyword(field, fold_keyword(w))] = f"{field}:{w}"
    for r in regexes:
        for field in ti.FIELDS:
            names[index.regex(field, r, compile_regex(r))] = f"{field}:/{r}/"
    index.freeze()
    return index, names


WORDS = ["refund", "credit card", "c++", "invoice", "rückerstattung", "возврат", "#42"]
REGEXES = [r"\border\s*#?\d{6}\b", r"(?-i:URGENT)", r"^re:"]
TEXTS = [
    ("Refund please", "my CREDIT\ncard was charged; order #123456"),
    ("URGENT", "we use C++, not c+; see #42"),
    ("Re: Rückerstattung", "Bitte die RUCKERSTATTUNG prüfen, Возврат"),
    ("urgent", "refunds and invoices are not whole words"),
    ("prefund", "xinvoice_ or _invoice or c++"),
    ("", ""),
]


def _expected(names: dict[int, str], subject: str, body: str) -> set[str]:
    out = set()
    for field, text in (("subject", subject), ("body", body)):
        for w in WORDS:
            if find_word(fold(text), fold_keyword(w)):
                out.add(f"{field}:{w}")
        for r in REGEXES:
            if compile_regex(r).search(text):
                out.add(f"{field}:/{r}/")
    return out


@pytest.mark.parametrize(("subject", "body"), TEXTS)
def test_scan_agrees_with_the_slow_definition(subject: str, body: str) -> None:
    index, names = _index(WORDS, REGEXES)
    got = {names[s] for s in index.scan(subject, body)}
    assert got == _expected(names, subject, body)


def test_separate_and_combined_sets_and_fallbacks_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    combined, names = _index(WORDS, REGEXES)
    monkeypatch.setattr(ti, "COMBINE_MAX_REGEXES", 0)
    separate, names2 = _index(WORDS, REGEXES)
    assert names == names2
    broken, names3 = _index(WORDS, REGEXES)
    # what a DFA out of memory looks like from Python: the set matches nothing
    broken._kw_raw = broken._kw_set = None
    for rf in broken._regex.values():
        rf.rset = None
    assert names == names3
    for subject, body in TEXTS:
        want = combined.scan(subject, body)
        assert separate.scan(subject, body) == want
        assert broken.scan(subject, body) == want


def test_sentinel_detects_a_set_that_reports_nothing() -> None:
    class Silent:
        def Match(self, text: bytes) -> None:  # mirrors re2.Set
            return None

    index, _ = _index(WORDS, REGEXES)
    want = index.scan(*TEXTS[0])
    index._kw_raw = Silent()
    for rf in index._regex.values():
        rf.rset = Silent()
    assert index.scan(*TEXTS[0]) == want and want


def test_random_texts_match_reference() -> None:
    rng = random.Random(3)
    pool = [
        "refund",
        "Refunds",
        "credit",
        "card",
        "C++",
        "ÉCOLE",
        "возврат",
        "#42",
        "order",
        "#123456",
        "URGENT",
        "x",
        "\n",
        "  ",
        ",",
        "é",
        "pre",
        "_",
    ]
    index, names = _index(WORDS, REGEXES)
    for _ in range(300):
        subject = " ".join(rng.choices(pool, k=rng.randint(0, 5)))
        body = "".join(rng.choice(pool) + rng.choice(["", " ", "\n"]) for _ in range(40))
        got = {names[s] for s in index.scan(subject, body)}
        assert got == _expected(names, subject, body), (subject, body)


def test_body_beyond_64k_is_not_scanned() -> None:
    index, names = _index(["refund"], [r"outage"])
    body = "x" * ti.MAX_BODY + " refund outage"
    assert index.scan("", body) == set()
    assert {names[s] for s in index.scan("", body[-20:])} == {"body:refund", "body:/outage/"}
