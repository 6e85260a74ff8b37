"""Reply extraction against real-client quoting styles (fixtures in tests/data/replies/).

Each ``NAME.txt`` (plain body) or ``NAME.html`` (HTML body, no text part) has a
``NAME.expected`` holding the new text the sender wrote.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from inboxd.core.parse import parse_message
from inboxd.core.reply_text import extract_new_text, find_quote_start

DATA = Path(__file__).resolve().parent.parent / "data" / "replies"
CASES = sorted(p for p in DATA.iterdir() if p.suffix in (".txt", ".html"))


def test_fixture_set_is_present() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_fixture(path: Path) -> None:
    expected = path.with_suffix(".expected").read_text(encoding="utf-8").rstrip("\n")
    body = path.read_text(encoding="utf-8")
    if path.suffix == ".html":
        assert extract_new_text("", body) == expected
    else:
        assert extract_new_text(body) == expected


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_fixture_through_parse_message(path: Path) -> None:
    """The same cases as whole mails, CRLF and all, through the parser."""
    expected = path.with_suffix(".expected").read_text(encoding="utf-8").rstrip("\n")
    ctype = "text/html" if path.suffix == ".html" else "text/plain"
    head = f"From: a@example.com\r\nSubject: Re: x\r\nContent-Type: {ctype}; charset=utf-8\r\n"
    body = path.read_text(encoding="utf-8").replace("\n", "\r\n").encode("utf-8")
    assert parse_message(head.encode() + b"\r\n" + body).new_text == expected


def test_html_marker_used_when_text_part_has_no_quote_marker() -> None:
    html = (DATA / "gmail_html.html").read_text(encoding="utf-8")
    # A text part that lost its attribution line (some webmail converters do that).
    text = "Thanks, that fixed it!\n\nAnna\n\nPlease restart the printer.\n"
    assert extract_new_text(text, html) == "Thanks, that fixed it!\n\nAnna"


def test_text_preferred_when_it_has_a_quote() -> None:
    html = "<div>ignored html</div><blockquote type=cite>q</blockquote>"
    text = "Real text\n\nOn Mon, Jan 1, 2024 at 9:00 AM X <x@y.z> wrote:\n> q\n"
    assert extract_new_text(text, html) == "Real text"


def test_html_without_markers_is_converted() -> None:
    assert extract_new_text("", "<p>Hello</p><p>World</p>") == "Hello\n\nWorld"


def test_empty_inputs() -> None:
    assert extract_new_text("") == ""
    assert extract_new_text("", "") == ""
    assert extract_new_text("   \n\n") == ""


def test_pure_forward_has_no_new_text() -> None:
    body = "-----Original Message-----\nFrom: a\nSent: b\nTo: c\nSubject: d\n\nold\n"
    assert extract_new_text(body) == ""


def test_find_quote_start_index() -> None:
    lines = ["new", "", "On Mon, Jan 1, 2024, X <x@y.z> wrote:", "> q"]
    assert find_quote_start(lines) == 2
    assert find_quote_start(["just", "text"]) is None


def test_dash_dash_at_top_is_not_a_signature() -> None:
    assert extract_new_text("--\nfoo") == "--\nfoo"


def test_huge_quote_is_bounded_and_fast_path_correct() -> None:
    quote = "\n".join(f"> line {i}" for i in range(50_000))
    text = "Short answer\n\nOn Mon, Jan 1, 2024 at 9:00 AM X <x@y.z> wrote:\n" + quote
    assert extract_new_text(text) == "Short answer"
