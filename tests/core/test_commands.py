"""Agent commands: only the leading lines, strict arguments, typos never reach the customer."""

from __future__ import annotations

import pytest

from inboxd.core.commands import Command, parse_commands


def test_commands_then_text() -> None:
    parsed = parse_commands("#assign bob\n#priority HIGH\n\nHello Carol,\nfixed.\n")
    assert parsed.commands == (Command("assign", "bob"), Command("priority", "high"))
    assert parsed.errors == ()
    assert parsed.remaining_text == "Hello Carol,\nfixed."


def test_blank_lines_between_commands_are_allowed() -> None:
    parsed = parse_commands("\n\n  #close\n\n#tag billing\n\n\nThanks!")
    assert parsed.commands == (Command("close"), Command("tag", "billing"))
    assert parsed.remaining_text == "Thanks!"


def test_hash_line_after_prose_is_text() -> None:
    text = "Hello,\n#close\n#assign bob\n"
    parsed = parse_commands(text)
    assert parsed.commands == ()
    assert parsed.errors == ()
    assert parsed.remaining_text == "Hello,\n#close\n#assign bob"


def test_plain_text_without_commands_is_unchanged() -> None:
    parsed = parse_commands("Hi,\n\nthe fix is live.\n")
    assert parsed.commands == ()
    assert parsed.remaining_text == "Hi,\n\nthe fix is live."


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("#close", Command("close")),
        ("#Solve", Command("solve")),
        ("#PENDING", Command("pending")),
        ("#open", Command("open")),
        ("#note", Command("note")),
        ("#assign alice", Command("assign", "alice")),
        ("#assign Billing-Team", Command("assign", "Billing-Team")),
        ("#assign bob@help.example", Command("assign", "bob@help.example")),
        ("#priority urgent", Command("priority", "urgent")),
        ("#priority Low", Command("priority", "low")),
        ("#tag VIP", Command("tag", "vip")),
        ("#untag vip", Command("untag", "vip")),
        ("#merge 123", Command("merge", "123")),
        ("#merge #0042", Command("merge", "42")),
        ("#merge [#77]", Command("merge", "77")),
        ("#canned Refund", Command("canned", "refund")),
        ("#canned password-reset", Command("canned", "password-reset")),
    ],
)
def test_each_command(line: str, expected: Command) -> None:
    parsed = parse_commands(line + "\n")
    assert parsed.errors == ()
    assert parsed.commands == (expected,)
    assert parsed.remaining_text == ""


def test_several_tags_on_one_line() -> None:
    parsed = parse_commands("#tag billing urgent billing\ntext")
    assert parsed.commands == (Command("tag", "billing"), Command("tag", "urgent"))


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("#clsoe", "unknown command #clsoe"),
        ("#close now please", "#close takes no argument"),
        ("#close.", "#close takes no argument"),
        ("#assign", "#assign needs one"),
        ("#assign bob alice", "#assign needs one"),
        ("#priority", "#priority needs one of"),
        ("#priority asap", "#priority needs one of"),
        ("#tag", "#tag needs at least one tag"),
        ("#tag <script>", "not a valid tag"),
        ("#merge", "#merge needs one ticket number"),
        ("#merge abc", "#merge needs one ticket number"),
        ("#canned", "#canned needs one response name"),
        ("#canned ../../etc/passwd", "#canned needs one response name"),
        ("#canned a.b", "#canned needs one response name"),
    ],
)
def test_bad_commands_are_errors_and_never_text(line: str, fragment: str) -> None:
    parsed = parse_commands(f"{line}\n\nDear customer, all good.")
    assert parsed.commands == ()
    assert len(parsed.errors) == 1
    assert fragment in parsed.errors[0]
    assert parsed.remaining_text == "Dear customer, all good."
    assert line not in parsed.remaining_text


def test_good_commands_survive_next_to_bad_ones() -> None:
    parsed = parse_commands("#assign bob\n#priorty high\nText")
    assert parsed.commands == (Command("assign", "bob"),)
    assert parsed.errors and "unknown command #priorty" in parsed.errors[0]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("#close\n#open", "conflicting status commands"),
        ("#assign bob\n#assign alice", "#assign given more than once"),
        ("#priority low\n#priority high", "#priority given more than once"),
        ("#merge 1\n#merge 2", "#merge given more than once"),
        ("#tag x\n#untag x", "tagged and untagged at once: x"),
        ("#note\n#canned refund", "#note and #canned together"),
    ],
)
def test_conflicts(text: str, fragment: str) -> None:
    parsed = parse_commands(text)
    assert any(fragment in e for e in parsed.errors), parsed.errors


def test_repeated_identical_commands_are_fine() -> None:
    parsed = parse_commands("#close\n#close\n#assign bob\n#assign bob")
    assert parsed.errors == ()
    assert parsed.commands == (Command("close"), Command("assign", "bob"))


def test_note_keeps_its_words_and_the_rest() -> None:
    parsed = parse_commands("#note called the customer, all fine\n#tag phone\n\nMore detail.")
    assert parsed.is_note
    assert parsed.commands == (Command("note"), Command("tag", "phone"))
    assert parsed.remaining_text == "called the customer, all fine\nMore detail."


def test_hash_without_word_is_text() -> None:
    for text in ("#1 priority for us is the printer", "# heading", "#", "#123"):
        parsed = parse_commands(text)
        assert parsed.commands == () and parsed.errors == ()
        assert parsed.remaining_text == text


def test_crlf_and_bom() -> None:
    parsed = parse_commands("\ufeff#close\r\n\r\nBye\r\n")
    assert parsed.commands == (Command("close"),)
    assert parsed.remaining_text == "Bye"


def test_helpers() -> None:
    parsed = parse_commands("#tag a\n#tag b\n#assign bob")
    assert parsed.first("assign") == Command("assign", "bob")
    assert parsed.first("merge") is None
    assert [c.arg for c in parsed.all("tag")] == ["a", "b"]
    assert not parsed.is_note


def test_many_command_lines_all_count() -> None:
    parsed = parse_commands("#tag x\n" * 25 + "#tag y\ntail")
    assert parsed.commands == (Command("tag", "x"), Command("tag", "y"))
    assert parsed.remaining_text == "tail"
