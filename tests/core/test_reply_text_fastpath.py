"""reply_text's cheap paths (ASCII-lowered twins of its case-insensitive regexes, the RE2
marker search, the reversed trailing-space test) must agree with the plain ones."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from inboxd.core import reply_text as rt

# Words from the patterns themselves (in several cases), so the scans really hit.
_VOCAB = [
    "On", "ON", "on", "Am", "Le", "El", "Op", "Den", "W dniu", "Dne", "From", "FROM", "Von",
    "de", "Sent", "To", "Subject", "Cc", "wrote", "WROTE", "Wrote", "schrieb", "a écrit",
    "a ecrit", "escribió", "yazdı", "yazdi", "YAZDI", "skrev", "-----Original Message-----",
    "___________", "== ", "Begin forwarded message", "2024年1月3日", "Sent from my iPhone",
    "SENT FROM MY ANDROID", "Get Outlook for iOS", "Von meinem iPhone gesendet",
    "Envoyé de mon iPhone", "Skickat från min", "Sendt fra min", "--", "-- ", "—", ">", "> ",
    ":", "：", " ", "  ", "\t", "*", "\n", "\n", "\n", "Mon, 2 Mar 2026", "<a@b.example>",
    "x", "K", "ſ", "İ", "\xa0", "Στις", "На", "Support",
]
_LINES = st.lists(st.sampled_from(_VOCAB), max_size=40).map("".join)
_ASCII_LINES = st.lists(st.sampled_from([w for w in _VOCAB if w.isascii()]), max_size=40).map(
    "".join
)


def _spans(it: object) -> list[tuple[int, int, str | None]]:
    assert hasattr(it, "__iter__")
    return [(m.start(), m.end(), m.group("q")) for m in it]


@settings(max_examples=500, deadline=None)
@given(_ASCII_LINES)
def test_ascii_twins_agree_on_ascii_text(text: str) -> None:
    scan = "\n" + text
    assert _spans(rt._scan_matches(scan)) == _spans(rt._SCAN.finditer(scan))
    mobile = rt._MOBILE_SCAN.search(scan)
    twin = rt._MOBILE_SCAN_ASCII.search(scan.lower())
    assert (mobile and mobile.span()) == (twin and twin.span())
    for line in text.split("\n"):
        assert rt._match(rt._ATTRIBUTION, rt._ATTRIBUTION_ASCII, line) == bool(
            rt._ATTRIBUTION.match(line)
        )
        assert rt._match(rt._WHO_WROTE, rt._WHO_WROTE_ASCII, line) == bool(
            rt._WHO_WROTE.match(line)
        )


def test_dotless_i_still_matches_ascii_i() -> None:
    # "yazdı" (Turkish) matches "yazdi" case-insensitively: the twin must keep that.
    line = "On Mon, X <x@y.example> yazdi:"
    assert rt._ATTRIBUTION.match(line)
    assert rt._match(rt._ATTRIBUTION, rt._ATTRIBUTION_ASCII, line)


def _plain_strip_signature(head: str) -> str:
    """The signature stripper as it was before the ASCII twin, for comparison."""
    scan = "\n" + head
    cut: int | None = None
    for sig in rt._SIG_SCAN.finditer(scan):
        if scan[: sig.start()].strip():
            cut = sig.start()
            break
    tail_start = max(0, len(scan) - rt._MOBILE_TAIL)
    tail_start = max(0, scan.rfind("\n", 0, tail_start + 1))
    low = scan[tail_start:].lower()
    if any(k in low for k in rt._MOBILE_KEYS):
        mobile = rt._MOBILE_SCAN.search(scan, tail_start)
        if mobile is not None:
            cut = mobile.start() if cut is None else min(cut, mobile.start())
    return head if cut is None else head[:cut]


def _plain_trim(head: str) -> str:
    if " \n" in head or "\t\n" in head or "\xa0\n" in head:
        head = rt._TRAILING_SPACE.sub("", head)
    return head.strip("\n").rstrip()


@settings(max_examples=400, deadline=None)
@given(_LINES, st.integers(0, 4000))
def test_signature_and_trim_agree(text: str, pad: int) -> None:
    for head in (text, "word " * (pad // 5) + "\n" + text):
        assert rt._strip_signature(head) == _plain_strip_signature(head)
        assert rt._trim(head) == _plain_trim(head)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([*rt._HTML_MARKERS, "<p>", "gmail", "cite", "é", "\ud800", "x"]),
                max_size=8).map("".join))
def test_html_marker_search_agrees(html: str) -> None:
    assert rt._has_html_marker(html) == any(m in html for m in rt._HTML_MARKERS)


def test_twins_drop_only_ignorecase() -> None:
    for pattern, twin in (
        (rt._SCAN, rt._SCAN_ASCII),
        (rt._MOBILE_SCAN, rt._MOBILE_SCAN_ASCII),
        (rt._ATTRIBUTION, rt._ATTRIBUTION_ASCII),
        (rt._WHO_WROTE, rt._WHO_WROTE_ASCII),
    ):
        assert pattern.flags & re.IGNORECASE
        assert not twin.flags & re.IGNORECASE
        assert twin.flags | re.IGNORECASE == pattern.flags


@settings(max_examples=500, deadline=None)
@given(_LINES)
def test_scan_proves_absence_of_quote_lines(text: str) -> None:
    cut, no_quote_lines = rt._scan_for_cut(text)
    assert cut == rt._find_cut(text)
    if cut is None and no_quote_lines:
        assert rt._QUOTE_SCAN.search("\n" + text) is None
