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


# --- classes added for issue 14 (our own short mails) --------------------------------------


@pytest.mark.parametrize(
    "attribution",
    [
        # Android in Russian, the address wrapped onto a second line
        '14.05.2025 09:41 пользователь "Ivan P" <\nivan@shop.example> написал:',
        # Yandex: date, time, name, address, no verb
        '14.05.2025, 09:41, "Ivan P" <ivan@shop.example>:',
        # mail.ru: RFC 2822 date, "от" and the sender
        "Wed, 14 May 2025 09:41:07 +0300 от Ivan P <ivan@shop.example>:",
        # Gmail in several locales: ISO date and time, then the sender
        "2025-05-14 9:41 GMT+03:00 Ivan P <ivan@shop.example>:",
    ],
)
def test_date_led_attribution_above_a_quote(attribution: str) -> None:
    body = f"Спасибо, всё работает.\n\n{attribution}\n\n> Попробуйте перезагрузить.\n"
    assert extract_new_text(body) == "Спасибо, всё работает."


def test_sentence_with_a_time_above_a_quote_is_kept() -> None:
    body = "The job failed at 10:32:\n> ERROR disk full\n\nWhat should I do?"
    assert extract_new_text(body) == "The job failed at 10:32:\n\nWhat should I do?"


def test_apple_quoted_attribution_right_below_the_answer() -> None:
    body = "Sure.\n> On 3 May 2025, at 10:00, Kim <kim@x.example> wrote:\n>\n> Can you?\n"
    assert extract_new_text(body) == "Sure."


def test_answers_between_quoted_blocks_are_kept() -> None:
    body = (
        "Hi,\nOn Tue, 6 May 2025 at 11:00, Lee <lee@x.example> wrote:\n> Which model?\n"
        "> And which firmware?\n\nThe X200.\n\n> Did you reboot?\n\nYes, twice.\n\n"
        "> -- \n> Lee\n"
    )
    assert extract_new_text(body) == "Hi,\n\nThe X200.\n\nYes, twice."


def test_wrapped_quote_line_is_not_an_answer() -> None:
    body = (
        "Done.\n\nOn Tue, 6 May 2025 at 11:00, Lee <lee@x.example> wrote:\n"
        "> please renew the certificate before it\nexpires on Friday\n> thanks\n"
    )
    assert extract_new_text(body) == "Done."


def test_signature_below_the_quote_is_not_an_answer() -> None:
    body = "Fixed.\n\nOn Tue, 6 May 2025, Lee <lee@x.example> wrote:\n> broken?\n\n-- \nAnn\n"
    assert extract_new_text(body) == "Fixed."


def test_outlook_rule_above_its_header_block_goes() -> None:
    body = (
        "Approved.\n\n ------------------------------\n\n*From:* Sam <sam@x.example>\n"
        "*Sent:* Monday, May 5, 2025 9:00 AM\n*To:* ops@x.example\n*Subject:* leave\n\nold\n"
    )
    assert extract_new_text(body) == "Approved."


def test_mailing_list_footer_goes() -> None:
    body = (
        "Same here on 2.3.\n\n_______________________________________________\n"
        "printers mailing list\nprinters@lists.x.example\nhttps://lists.x.example/listinfo\n"
    )
    assert extract_new_text(body) == "Same here on 2.3."


@pytest.mark.parametrize("sig", ["-Ann Lee", "--Ann", "— Ann", "~Kai"])
def test_dash_signed_name_goes(sig: str) -> None:
    assert extract_new_text(f"Works now, thanks.\n\n{sig}\n") == "Works now, thanks."


@pytest.mark.parametrize(
    "body", ["Please bring:\n\n- Milk", "Please bring:\n-Milk\n-Eggs", "Run it with\n\n-v"]
)
def test_list_items_and_flags_are_not_dash_signatures(body: str) -> None:
    assert extract_new_text(body) == body
