"""Matching every keyword and regex of every rule in one pass per text.

Per message the cost is one Aho-Corasick scan (all keywords of all rules) and
one RE2 set match per field (all regexes), so it hardly depends on how many
rules there are; evaluation then looks only at rules whose atoms hit.

Text is folded once: casefold, accents stripped (NFKD minus combining marks),
runs of whitespace made one space. Keywords are folded the same way and count
only as whole words: a hit must not touch a letter or digit on an edge where
the keyword itself starts or ends with one ("refund" misses "refunds", "C++"
still matches "C++,").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import ahocorasick
import re2

FIELDS: tuple[str, ...] = ("subject", "body")
MAX_BODY = 64 * 1024  # keywords and regexes look at this much of the body

# stdlib re is fine here: a single character class, linear by construction.
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_NONASCII_WS = re.compile(r"\s+")


def fold(text: str) -> str:
    """Casefold, strip accents, collapse whitespace: 'Rückerstattung' finds 'ruckerstattung'."""
    if text.isascii():
        t = text.lower().replace("\r", " ").replace("\n", " ").replace("\t", " ")
        if "\x0b" in t or "\x0c" in t:
            t = t.replace("\x0b", " ").replace("\x0c", " ")
        while "  " in t:
            t = t.replace("  ", " ")
        return t
    t = unicodedata.normalize("NFKD", text).casefold()
    t = _COMBINING.sub("", t)
    return _NONASCII_WS.sub(" ", t)


def is_word_char(c: str) -> bool:
    return c.isalnum() or c == "_"


def whole_word_at(text: str, start: int, end: int) -> bool:
    """Is text[start:end] (a keyword occurrence) bounded by non-word characters?"""
    if start > 0 and is_word_char(text[start]) and is_word_char(text[start - 1]):
        return False
    return not (end < len(text) and is_word_char(text[end - 1]) and is_word_char(text[end]))


def find_word(text: str, word: str) -> bool:
    """Whole-word search of one folded keyword in folded text (for short texts)."""
    start = text.find(word)
    while start >= 0:
        if whole_word_at(text, start, start + len(word)):
            return True
        start = text.find(word, start + 1)
    return False


def regex_options() -> re2.Options:
    opts = re2.Options()
    opts.case_sensitive = False  # like every other test; (?-i:...) turns it back on
    opts.log_errors = False
    opts.max_mem = 256 << 20  # a set that runs out of DFA memory would silently miss
    return opts


def compile_regex(pattern: str) -> re2._Regexp:
    """Compile with RE2 (linear time); raises ValueError carrying RE2's own message."""
    try:
        return re2.compile(pattern, regex_options())
    except re2.error as exc:
        raw = exc.args[0] if exc.args else "invalid regex"
        msg = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        raise ValueError(msg) from None


def body_prefix(text: str) -> str:
    return text[:MAX_BODY]


@dataclass(slots=True)
class _RegexField:
    patterns: list[str] = field(default_factory=list)
    compiled: list[re2._Regexp] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)
    rset: re2.Set | None = None


class TextIndex:
    """All keywords and regexes of a rule set; built once at load, read-only after.

    Each (field, keyword) and (field, regex) is a *signal* (an int); ``scan``
    returns the signals present in a message, and conditions test membership.
    """

    def __init__(self) -> None:
        self._word_ids: dict[str, int] = {}
        self._words: list[str] = []
        self._regex: dict[str, _RegexField] = {f: _RegexField() for f in FIELDS}
        self._automaton: ahocorasick.Automaton | None = None
        self._frozen = False

    # -- building ---------------------------------------------------------
    def keyword(self, field_name: str, folded: str) -> int:
        """Signal for a (field, folded keyword); registers the keyword."""
        assert not self._frozen
        kid = self._word_ids.get(folded)
        if kid is None:
            kid = len(self._words)
            self._word_ids[folded] = kid
            self._words.append(folded)
        return kid * 2 + FIELDS.index(field_name)

    def regex(self, field_name: str, pattern: str, compiled: re2._Regexp) -> int:
        """Signal for a (field, regex); call after compile_regex succeeded."""
        assert not self._frozen
        rf = self._regex[field_name]
        rid = rf.ids.get(pattern)
        if rid is None:
            rid = len(rf.patterns)
            rf.ids[pattern] = rid
            rf.patterns.append(pattern)
            rf.compiled.append(compiled)
        return -(rid * 2 + FIELDS.index(field_name)) - 1  # negative: never clashes

    def freeze(self) -> None:
        if self._words:
            automaton = ahocorasick.Automaton()
            for kid, word in enumerate(self._words):
                starts = is_word_char(word[0])
                ends = is_word_char(word[-1])
                automaton.add_word(word, (kid, len(word), starts, ends))
            automaton.make_automaton()
            self._automaton = automaton
        for rf in self._regex.values():
            if rf.patterns:
                rset = re2.Set.SearchSet(regex_options())
                for pattern in rf.patterns:
                    rset.Add(pattern)
                rset.Compile()
                rf.rset = rset
        self._frozen = True

    @property
    def keyword_count(self) -> int:
        return len(self._words)

    @property
    def regex_count(self) -> int:
        return sum(len(rf.patterns) for rf in self._regex.values())

    # -- scanning ---------------------------------------------------------
    def scan(self, subject: str, body: str) -> set[int]:
        """Signals present in this subject and body (body cut to MAX_BODY)."""
        body = body_prefix(body)
        signals: set[int] = set()
        if self._automaton is not None:
            for kid in self._find_words(fold(subject)):
                signals.add(kid * 2)
            for kid in self._find_words(fold(body)):
                signals.add(kid * 2 + 1)
        for f_index, (name, text) in enumerate((("subject", subject), ("body", body))):
            rset = self._regex[name].rset
            if rset is not None:
                matched = rset.Match(text.encode("utf-8", "surrogatepass"))
                if matched:
                    for rid in matched:
                        signals.add(-(rid * 2 + f_index) - 1)
        return signals

    def _find_words(self, text: str) -> set[int]:
        found: set[int] = set()
        assert self._automaton is not None
        last = len(text) - 1
        for end, (kid, length, starts, ends) in self._automaton.iter(text):
            if kid in found:
                continue
            start = end - length + 1
            if starts and start > 0:
                c = text[start - 1]
                if c.isalnum() or c == "_":
                    continue
            if ends and end < last:
                c = text[end + 1]
                if c.isalnum() or c == "_":
                    continue
            found.add(kid)
        return found

    def explain_regex(self, signal: int, subject: str, body: str) -> str:
        """The text a regex signal matched, for reasons shown to admins."""
        n = -signal - 1
        name = FIELDS[n % 2]
        rx = self._regex[name].compiled[n // 2]
        text = subject if name == "subject" else body_prefix(body)
        m = rx.search(text)
        return m.group(0) if m else ""


def fold_all(words: Iterable[str]) -> Sequence[str]:
    return [fold(w).strip() for w in words]
