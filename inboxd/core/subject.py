"""Subject normalization for threading and display grouping.

Mail clients prefix replies and forwards in their own language and sometimes
count them (``RE[2]:``); lists and helpdesks add bracketed tags. Stripping all of
that leaves the topic, casefolded, so "AW: [#12] Printer" groups with "printer".
"""

from __future__ import annotations

import re

# Reply/forward markers in the languages our customers' clients use.
_PREFIX_WORDS = (
    r"re|aw|wg|sv|vs|fw|fwd|fwd?|tr|rif|r|antw|antwort|odp|pd|ynt|vá|vl|"
    r"réf\.?|ref\.?|rép\.?|enc|res|rv|vb|doorst|trs|sv|svar|vs|fs|"
    r"ats|atb|přeposl|odg|ΑΠ|ΣΧΕΤ|ΠΡΘ|回复|回覆|转发|轉寄|答复|返信|転送"
)
_PREFIX = re.compile(
    r"^\s*(?:(?:" + _PREFIX_WORDS + r")\s*(?:\[\d+\]|\(\d+\)|\^\d+)?\s*[:：])\s*",
    re.IGNORECASE,
)
_LIST_PREFIX = re.compile(r"^\s*\[[^\[\]#\s][^\[\]]{0,60}\]\s*")
_DEFAULT_TAG = r"\[#(\d+)\]"
_WS = re.compile(r"\s+")
_FWD_SUFFIX = re.compile(r"\s*\((?:fwd|fw)\)\s*$", re.IGNORECASE)


def strip_ticket_tag(subject: str, pattern: str = _DEFAULT_TAG) -> str:
    """Remove every ticket tag matching ``pattern`` (configurable tag format)."""
    try:
        return re.sub(pattern, " ", subject)
    except re.error:
        return subject


def find_ticket_tag(subject: str, pattern: str = _DEFAULT_TAG) -> int | None:
    """The ticket number in the first tag matching ``pattern`` (group 1), or None."""
    try:
        m = re.search(pattern, subject)
    except re.error:
        return None
    if m is None:
        return None
    try:
        return int(m.group(1))
    except (IndexError, ValueError, TypeError):
        return None


def strip_prefixes(subject: str) -> str:
    """Drop any chain of reply/forward prefixes and [list] tags at the start."""
    s = subject
    for _ in range(50):  # bounded: each pass removes at least one prefix
        new = _PREFIX.sub("", s, count=1)
        new = _LIST_PREFIX.sub("", new, count=1)
        if new == s:
            break
        s = new
    return s


def normalize_subject(subject: str, tag_pattern: str = _DEFAULT_TAG) -> str:
    """Topic of ``subject``: prefixes, ticket tags and list tags gone, casefolded."""
    s = strip_ticket_tag(subject, tag_pattern)
    s = " ".join(s.split())  # same as _WS.sub(" ", s).strip(), without the regex
    s = strip_prefixes(s)
    # "(fwd)" and trailing forward markers some old clients append.
    s = _FWD_SUFFIX.sub("", s)
    return " ".join(s.split()).casefold()
