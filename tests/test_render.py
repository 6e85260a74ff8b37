"""Mail templates: the shipped set checks clean; sandbox, escaping and strictness hold."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from inboxd.flows.render import (
    MAIL_TEMPLATES,
    SAMPLE_CONTEXT,
    TemplateError,
    TemplateRenderer,
)

SHIPPED = Path(__file__).resolve().parent.parent / "templates"


@pytest.fixture
def tdir(tmp_path: Path) -> Path:
    target = tmp_path / "templates"
    shutil.copytree(SHIPPED, target)
    return target


def ctx(**overrides: Any) -> dict[str, Any]:
    out = dict(SAMPLE_CONTEXT)
    out.update(overrides)
    return out


def test_shipped_templates_check_clean() -> None:
    renderer = TemplateRenderer(SHIPPED)
    assert renderer.check() == []
    assert renderer.canned_names() == ["password-reset", "refund"]


@pytest.mark.parametrize("name", MAIL_TEMPLATES)
def test_every_mail_has_subject_text_and_html(name: str) -> None:
    subject, text, html = TemplateRenderer(SHIPPED).render(name, **SAMPLE_CONTEXT)
    assert subject and "\n" not in subject
    assert "[#123]" not in subject  # the tag is added by compose, once
    assert text.strip() and not text.lower().startswith("subject:")
    assert html.strip().startswith("<")


def test_html_is_autoescaped_text_is_not() -> None:
    evil = {"name": "<script>alert(1)</script>", "email": "c@x.example"}
    _subject, text, html = TemplateRenderer(SHIPPED).render("ack", **ctx(customer=evil))
    assert "<script>" in text  # plain text is not HTML: shown as written
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_subject_from_ticket_data_cannot_inject() -> None:
    ticket = dict(SAMPLE_CONTEXT["ticket"], subject="Hi\r\nBcc: victim@x.example")
    subject, _, _ = TemplateRenderer(SHIPPED).render("ack", **ctx(ticket=ticket))
    assert subject == "Re: Hi Bcc: victim@x.example"


def test_notify_html_sanitizes_customer_html() -> None:
    message = dict(
        SAMPLE_CONTEXT["message"],
        html='<p>hi</p><script>steal()</script><img src="https://t.example/p.gif">',
    )
    _, _, html = TemplateRenderer(SHIPPED).render("notify", **ctx(message=message))
    assert "<p>hi</p>" in html
    assert "steal" not in html
    assert "t.example" not in html


def test_notify_text_quotes_customer_text() -> None:
    _, text, _ = TemplateRenderer(SHIPPED).render("notify", **SAMPLE_CONTEXT)
    assert "> the printer shows error E42." in text


def test_reply_wraps_agent_text_and_escapes_it_in_html() -> None:
    _, text, html = TemplateRenderer(SHIPPED).render("reply", **ctx(text="Use <b>this</b>\nline 2"))
    assert text.startswith("Use <b>this</b>\nline 2")
    assert "Use &lt;b&gt;this&lt;/b&gt;<br>\nline 2" in html


def test_command_result_lists_errors() -> None:
    _, text, html = TemplateRenderer(SHIPPED).render(
        "command_result", **ctx(errors=["unknown command #clsoe"])
    )
    assert "unknown command #clsoe" in text
    assert "Nothing from your mail was executed" in text
    assert "<li>unknown command #clsoe</li>" in html


def test_undefined_variable_is_an_error(tdir: Path) -> None:
    (tdir / "ack.txt").write_text("Subject: hi {{ custmer.name }}\n\nbody\n")
    renderer = TemplateRenderer(tdir)
    with pytest.raises(TemplateError, match="custmer"):
        renderer.render("ack", **SAMPLE_CONTEXT)
    errors = renderer.check()
    assert len(errors) == 1 and "ack.txt" in errors[0] and "custmer" in errors[0]


def test_missing_attribute_is_an_error(tdir: Path) -> None:
    (tdir / "ack.html").write_text("<p>{{ ticket.nonexistent }}</p>\n")
    errors = TemplateRenderer(tdir).check()
    assert errors and "nonexistent" in errors[0]


def test_sandbox_blocks_attribute_walking(tdir: Path) -> None:
    (tdir / "ack.txt").write_text("Subject: x\n\n{{ ''.__class__.__mro__[1].__subclasses__() }}\n")
    with pytest.raises(TemplateError):
        TemplateRenderer(tdir).render("ack", **SAMPLE_CONTEXT)


def test_syntax_error_names_file_and_line(tdir: Path) -> None:
    (tdir / "notify.txt").write_text("Subject: x\n\nline\n{% if %}\n")
    errors = TemplateRenderer(tdir).check()
    assert any(e.startswith("notify.txt:4:") for e in errors), errors


def test_missing_subject_line(tdir: Path) -> None:
    (tdir / "ack.txt").write_text("Hello\n")
    errors = TemplateRenderer(tdir).check()
    assert errors == ["ack.txt: the first line must be 'Subject: ...'"]


def test_empty_subject(tdir: Path) -> None:
    (tdir / "ack.txt").write_text("Subject: {{ '' }}\n\nHello\n")
    assert TemplateRenderer(tdir).check() == ["ack.txt: the subject is empty"]


def test_missing_versions_are_reported(tdir: Path) -> None:
    (tdir / "sla_breach.html").unlink()
    (tdir / "bounce_alert.txt").unlink()
    errors = TemplateRenderer(tdir).check()
    assert "sla_breach.html: missing" in errors
    assert "bounce_alert.txt: missing" in errors
    assert any("bounce_alert.html: has no bounce_alert.txt" in e for e in errors)


def test_missing_directory() -> None:
    assert TemplateRenderer(Path("/nonexistent/templates")).check() != []


def test_canned_responses(tdir: Path) -> None:
    renderer = TemplateRenderer(tdir)
    text = renderer.render_canned("refund", **SAMPLE_CONTEXT)
    assert "Hello Carol Customer," in text
    assert "[#123]" in text
    with pytest.raises(TemplateError, match="no canned response 'nope'"):
        renderer.render_canned("nope", **SAMPLE_CONTEXT)
    for bad in ("../ack", "ack.txt", "Refund", ""):
        with pytest.raises(TemplateError):
            renderer.render_canned(bad, **SAMPLE_CONTEXT)


def test_broken_canned_response_is_reported(tdir: Path) -> None:
    (tdir / "canned" / "broken.txt").write_text("Hello {{ customer.nme }}\n")
    (tdir / "canned" / "Bad Name.txt").write_text("x\n")
    errors = TemplateRenderer(tdir).check()
    assert any("canned/broken.txt" in e and "nme" in e for e in errors), errors
    assert any("canned/Bad Name.txt" in e for e in errors), errors


def test_extra_templates_are_checked_too(tdir: Path) -> None:
    (tdir / "welcome.txt").write_text("Subject: hi\n\n{{ nobody }}\n")
    errors = TemplateRenderer(tdir).check()
    assert any("welcome.txt" in e for e in errors)


def test_edited_template_is_picked_up_on_reload_not_per_mail(tdir: Path) -> None:
    """A renderer keeps what it compiled (no file checks per mail); a new one reads the edit."""
    renderer = TemplateRenderer(tdir)
    assert renderer.render("note_ack", **SAMPLE_CONTEXT).subject.startswith("Note added")
    (tdir / "note_ack.txt").write_text("Subject: Changed {{ ticket.id }}\n\nbody\n")
    assert renderer.render("note_ack", **SAMPLE_CONTEXT).subject.startswith("Note added")
    assert TemplateRenderer(tdir).render("note_ack", **SAMPLE_CONTEXT).subject == "Changed 123"


def test_edited_or_removed_html_template_is_picked_up_on_reload(tdir: Path) -> None:
    renderer = TemplateRenderer(tdir)
    before = renderer.render("note_ack", **SAMPLE_CONTEXT).html
    assert before.startswith("<")
    (tdir / "note_ack.html").write_text("<p>changed {{ ticket.id }}</p>\n")
    assert renderer.render("note_ack", **SAMPLE_CONTEXT).html == before
    assert TemplateRenderer(tdir).render("note_ack", **SAMPLE_CONTEXT).html == (
        "<p>changed 123</p>\n"
    )
    (tdir / "note_ack.html").unlink()
    assert TemplateRenderer(tdir).render("note_ack", **SAMPLE_CONTEXT).html == ""


def test_added_html_template_is_picked_up_on_reload(tdir: Path) -> None:
    (tdir / "note_ack.html").unlink()
    renderer = TemplateRenderer(tdir)
    assert renderer.render("note_ack", **SAMPLE_CONTEXT).html == ""
    (tdir / "note_ack.html").write_text("<p>new {{ ticket.id }}</p>\n")
    assert renderer.render("note_ack", **SAMPLE_CONTEXT).html == ""
    assert TemplateRenderer(tdir).render("note_ack", **SAMPLE_CONTEXT).html == "<p>new 123</p>\n"


def test_nl2br_escapes_once_and_breaks_lines(tdir: Path) -> None:
    (tdir / "reply.html").write_text("{{ text | nl2br }}")
    html = TemplateRenderer(tdir).render("reply", **ctx(text="a <b> & c\nline 2\n\n")).html
    assert html == "a &lt;b&gt; &amp; c<br>\nline 2"


# a block tag ending a line that also holds text: trim_blocks drops the newline after it
_TEXT_BEFORE_LINE_END_TAG = re.compile(r"\S.*?\{%-?[^%]*-?%\}\s*$")
_ONLY_TAGS = re.compile(r"^\s*(\{%-?[^%]*-?%\}\s*)+$")


@pytest.mark.parametrize(
    "path", sorted(SHIPPED.glob("*.txt")) + sorted(SHIPPED.glob("canned/*.txt")), ids=str
)
def test_no_text_template_line_ends_in_a_block_tag_after_text(path: Path) -> None:
    """trim_blocks eats the newline after a line-ending block tag, joining two lines."""
    joined = [
        f"{path.name}:{n}: {line}"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if _TEXT_BEFORE_LINE_END_TAG.search(line) and not _ONLY_TAGS.match(line)
    ]
    assert joined == []


def test_notify_handover_keeps_the_line_break_before_the_customer_mail() -> None:
    _, text, _ = TemplateRenderer(SHIPPED).render(
        "notify", **ctx(event="assigned", assigned_by="bob")
    )
    assert "bob assigned ticket #123 to you.\nThe customer last wrote:\nFrom:     Carol" in text


def test_notify_handover_without_customer_mail_has_no_lead_in() -> None:
    message = dict(SAMPLE_CONTEXT["message"], from_email="")
    _, text, _ = TemplateRenderer(SHIPPED).render(
        "notify", **ctx(event="assigned", assigned_by="bob", message=message)
    )
    assert "The customer last wrote" not in text
    assert "bob assigned ticket #123 to you.\nFrom:" in text
