"""Matching every keyword and regex of every rule in one pass per text.

Per message and field (subject, body) the cost is one RE2 set match for all
keywords of all rules (as literals) and one for all regexes, so it hardly
depends on how many rules there are; evaluation then looks only at rules whose
atoms hit. ASCII text folds to itself up to case and line breaks, so for it a
case-insensitive keyword set over the raw text is exact; text with any
non-ASCII character is folded and scanned by a second keyword set, and its
hits are checked for whole words.

Why RE2 sets and not a pyahocorasick automaton: measured on 8 KB bodies with
1,800 realistic keywords, pyahocorasick's scan took ~150 us and an RE2 literal
set ~15 us, flat up to 20,000 keywords (bench/rules.py). RE2 reports only
*which* literals occur, so each hit is then checked for whole words with
``bytes.find`` on the folded text. A set whose DFA runs out of memory silently
reports nothing, so every set carries a sentinel pattern that always matches;
without the sentinel the index falls back to an Aho-Corasick scan (keywords)
and one search per regex: correct either way, just slower.

Folding (``fold``) gives UTF-8 bytes: casefolded, accents stripped (NFKD minus
combining marks; format characters such as soft hyphens dropped), line breaks
and tabs made spaces. Keywords are folded the same way and count only as whole
words: a hit must not touch a letter or digit on an edge where the keyword
itself starts or ends with one ("refund" misses "refunds", "c++" matches
"c++,"). The words of a phrase match across any run of spaces.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

import ahocorasick
import re2

FIELDS: tuple[str, ...] = ("subject", "body")
MAX_BODY = 64 * 1024  # keywords and regexes look at this many characters of the body
COMBINE_MAX_REGEXES = 128
SET_MAX_MEM = 256 << 20  # generous: a set whose DFA runs out of memory finds nothing

_ASCII_WORD = bytes(1 if chr(i).isalnum() or i == 0x5F else 0 for i in range(128))
_FOLD_ERRORS = "inboxd.fold"
_SENTINEL = r"\z"  # matches every text: its absence means the set failed


def _fold_run(exc: UnicodeError) -> tuple[bytes, int]:
    """Codec error handler: fold one run of non-ASCII characters, ASCII stays on the fast path."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    run = exc.object[exc.start : exc.end]
    out = []
    for ch in unicodedata.normalize("NFKD", run).casefold():
        if unicodedata.combining(ch) or unicodedata.category(ch) == "Cf":
            continue  # accents, zero-width spaces, soft hyphens
        out.append(" " if ch.isspace() else ch)
    return "".join(out).encode("utf-8", "surrogatepass"), exc.end


codecs.register_error(_FOLD_ERRORS, _fold_run)  # idempotent: same name, same pure function


def fold(text: str) -> bytes:
    """'Rückerstattung per\nKreditkarte' -> b'ruckerstattung per kreditkarte'.

    Line breaks and tabs become spaces; runs of spaces are left alone (collapsing
    them costs more than the whole keyword scan) and multi-word keywords match
    across any run of spaces instead.
    """
    if text.isascii():
        folded = text.lower().encode("ascii")
    else:
        folded = text.encode("ascii", _FOLD_ERRORS).lower()  # bytes.lower: ASCII only
    for ws in (b"\n", b"\r", b"\t", b"\x0b", b"\x0c"):
        if ws in folded:
            folded = folded.replace(ws, b" ")
    return folded


def fold_keyword(word: str) -> bytes:
    """A keyword folded like text, with inner whitespace runs made single spaces."""
    return b" ".join(part for part in fold(word).split(b" ") if part)


def _phrase_pattern(word: bytes) -> re.Pattern[bytes]:
    """'credit card' -> b'credit[ \\t\\n...]+card' (stdlib re: literals and one class, linear)."""
    return re.compile(b"[ \t\n\r\x0b\x0c]+".join(re.escape(part) for part in word.split(b" ")))


def _word_before(text: bytes, i: int) -> bool:
    """Is the character that ends at byte ``i`` a letter, digit or underscore?"""
    if i <= 0:
        return False
    c = text[i - 1]
    if c < 0x80:
        return _ASCII_WORD[c] == 1
    j = i - 1
    while j > 0 and 0x80 <= text[j] < 0xC0 and i - j < 4:
        j -= 1
    return text[j:i].decode("utf-8", "replace")[-1:].isalnum()


def _word_after(text: bytes, i: int) -> bool:
    """Is the character that starts at byte ``i`` a letter, digit or underscore?"""
    if i >= len(text):
        return False
    c = text[i]
    if c < 0x80:
        return _ASCII_WORD[c] == 1
    return text[i : i + 4].decode("utf-8", "ignore")[:1].isalnum()


def _is_word_edge(word: bytes, last: bool) -> bool:
    if last:
        return _word_before(word, len(word))
    return _word_after(word, 0)


def find_word(text: bytes, word: bytes) -> bool:
    """Whole-word occurrence of a folded keyword in folded text."""
    phrase = _phrase_pattern(word) if b" " in word else None
    return _find_word(text, word, _is_word_edge(word, False), _is_word_edge(word, True), phrase)


def _find_word(
    text: bytes, word: bytes, starts: bool, ends: bool, phrase: re.Pattern[bytes] | None
) -> bool:
    if phrase is not None:
        for m in phrase.finditer(text):
            if not (starts and _word_before(text, m.start())) and not (
                ends and _word_after(text, m.end())
            ):
                return True
        return False
    start = text.find(word)
    while start >= 0:
        end = start + len(word)
        if not (starts and _word_before(text, start)) and not (ends and _word_after(text, end)):
            return True
        start = text.find(word, start + 1)
    return False


def regex_options(*, case_sensitive: bool = False, max_mem: int = SET_MAX_MEM) -> re2.Options:
    opts = re2.Options()
    opts.case_sensitive = case_sensitive  # rule regexes: any case; (?-i:...) turns it back on
    opts.log_errors = False
    opts.max_mem = max_mem
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


def _literal(word: str, space: str, *, bounded: bool = False) -> str:
    """A folded keyword as an RE2 pattern; its spaces match ``space``.

    ``bounded`` adds RE2's ``\\b`` on edges that are ASCII word characters. RE2's
    word boundary knows only ASCII, which is exactly right for ASCII text: there
    the set's answer needs no further whole-word check.
    """
    pattern = space.join(re2.escape(part) for part in word.split(" "))
    if bounded:
        if _ascii_word_char(word[:1]):
            pattern = r"\b" + pattern
        if _ascii_word_char(word[-1:]):
            pattern += r"\b"
    return pattern


def _ascii_word_char(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch == "_")


def _build_set(patterns: Iterable[str], opts: re2.Options) -> re2.Set | None:
    """A search set whose index 0 is the sentinel; None when RE2 cannot build it."""
    rset = re2.Set.SearchSet(opts)
    try:
        rset.Add(_SENTINEL)
        for pattern in patterns:
            rset.Add(pattern)
        rset.Compile()
    except re2.error:
        return None
    return rset


@dataclass(slots=True)
class _RegexField:
    patterns: list[str] = field(default_factory=list)
    compiled: list[re2._Regexp] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)
    rset: re2.Set | None = None
    combined: bool = False  # rset also holds every keyword, first (see freeze)


class TextIndex:
    """All keywords and regexes of a rule set; built once at load, read-only after.

    Each (field, keyword) and (field, regex) is a *signal* (an int); ``scan``
    returns the signals present in a message, and conditions test membership.
    """

    def __init__(self, *, max_mem: int = SET_MAX_MEM) -> None:
        self._max_mem = max_mem
        self._word_ids: dict[bytes, int] = {}
        self._words: list[bytes] = []
        self._edges: list[tuple[bool, bool, re.Pattern[bytes] | None]] = []
        self._regex: dict[str, _RegexField] = {f: _RegexField() for f in FIELDS}
        self._kw_set: re2.Set | None = None  # keywords on folded text (non-ASCII)
        self._kw_raw: re2.Set | None = None  # keywords on raw ASCII text, any case
        self._automaton: ahocorasick.Automaton | None = None
        self._frozen = False

    # -- building ---------------------------------------------------------
    def keyword(self, field_name: str, folded: bytes) -> int:
        """Signal for a (field, folded keyword); registers the keyword."""
        assert not self._frozen and folded
        kid = self._word_ids.get(folded)
        if kid is None:
            kid = len(self._words)
            self._word_ids[folded] = kid
            self._words.append(folded)
            phrase = _phrase_pattern(folded) if b" " in folded else None
            self._edges.append((_is_word_edge(folded, False), _is_word_edge(folded, True), phrase))
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
        words = [w.decode("utf-8", "surrogatepass") for w in self._words]
        raw_words = [_literal(w, r"[\t\n\v\f\r ]+", bounded=True) for w in words]
        raw_opts = regex_options(max_mem=self._max_mem)
        if words:
            self._kw_raw = _build_set(raw_words, raw_opts)
            folded_opts = regex_options(case_sensitive=True, max_mem=self._max_mem)
            self._kw_set = _build_set((_literal(w, " +") for w in words), folded_opts)
            # latin-1 maps bytes 1:1 to characters, so offsets stay byte offsets; a
            # phrase is found by its first word and verified by _find_word
            by_first: dict[str, list[int]] = {}
            for kid, word in enumerate(self._words):
                by_first.setdefault(word.split(b" ")[0].decode("latin-1"), []).append(kid)
            automaton = ahocorasick.Automaton()
            for first, kids in by_first.items():
                automaton.add_word(first, tuple(kids))
            automaton.make_automaton()
            self._automaton = automaton
        for rf in self._regex.values():
            if not rf.patterns:
                continue
            # One DFA over keywords and regexes saves a pass over the text while the
            # sets are small; beyond that it grows with the product of their states
            # (bench/rules.py: 28 vs 39 us at 1,800 keywords + 80 regexes, 51 vs 40
            # at 4,700 + 240), so big rule sets pay for two passes instead.
            rf.combined = bool(words) and len(rf.patterns) <= COMBINE_MAX_REGEXES
            patterns = raw_words + rf.patterns if rf.combined else rf.patterns
            rf.rset = _build_set(patterns, raw_opts)
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
        signals: set[int] = set()
        n_words = len(self._words)
        for f_index, (name, text) in enumerate((("subject", subject), ("body", body))):
            if f_index:
                text = body_prefix(text)
            raw = text.encode("utf-8", "surrogatepass")
            ascii_text = text.isascii()
            rf = self._regex[name]
            words_done = False
            if rf.patterns:
                matched = rf.rset.Match(raw) if rf.rset is not None else None
                if matched and 0 in matched:  # the sentinel: the set really ran
                    offset = n_words if rf.combined else 0
                    for i in matched:
                        if i > offset:
                            signals.add(-((i - 1 - offset) * 2 + f_index) - 1)
                        elif i and ascii_text:  # a keyword of a combined set
                            signals.add((i - 1) * 2 + f_index)
                    words_done = rf.combined and ascii_text
                else:
                    for rid, rx in enumerate(rf.compiled):
                        if rx.search(text):
                            signals.add(-(rid * 2 + f_index) - 1)
            if not n_words or words_done:
                continue
            if ascii_text:
                # ASCII folds to itself up to case and line breaks, and RE2's ASCII
                # \b is exactly our word edge there: the set's answer is final
                matched = self._kw_raw.Match(raw) if self._kw_raw is not None else None
                if matched and 0 in matched:
                    for i in matched:
                        if i:
                            signals.add((i - 1) * 2 + f_index)
                    continue
            folded = fold(text)
            for kid in self._candidates(folded):
                if _find_word(folded, self._words[kid], *self._edges[kid]):
                    signals.add(kid * 2 + f_index)
        return signals

    def _candidates(self, folded: bytes) -> list[int]:
        """Keywords occurring somewhere in folded text (not yet checked for whole words)."""
        matched = self._kw_set.Match(folded) if self._kw_set is not None else None
        if matched and 0 in matched:
            return [i - 1 for i in matched if i]
        assert self._automaton is not None
        return sorted(
            {kid for _, kids in self._automaton.iter(folded.decode("latin-1")) for kid in kids}
        )

    def explain_regex(self, signal: int, subject: str, body: str) -> str:
        """The text a regex signal matched, for reasons shown to admins."""
        n = -signal - 1
        name = FIELDS[n % 2]
        rx = self._regex[name].compiled[n // 2]
        text = subject if name == "subject" else body_prefix(body)
        # bytes in, bytes out: str input makes the wrapper map every offset back to chars
        m = rx.search(text.encode("utf-8", "surrogatepass"))
        return m.group(0).decode("utf-8", "replace") if m else ""
