"""core.queued: an outbox intent survives its JSON exactly, and a bad one is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from inboxd.core.compose import OutboundKind, OutboundMail, render_message
from inboxd.core.model import Address, Attachment
from inboxd.core.queued import AttachmentRef, IntentError, Letter, QueuedMail, decode, encode

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BERLIN = timezone(timedelta(hours=1))


def _queued(letter: Letter) -> QueuedMail:
    mail = OutboundMail(
        kind=OutboundKind.NOTIFY,
        ticket_id=7,
        from_addr=Address("support+tok@help.example", "Carol Müller via Support"),
        to=(Address("alice@help.example", "Alice"),),
        cc=(Address("dave@customer.example"),),
        reply_to=Address("support+tok@help.example"),
        subject="",
        text="",
        message_id="ibx.7.abc.def@help.example",
        in_reply_to="c1@customer.example",
        references=("root@customer.example", "c1@customer.example"),
        thread_topic="Drucker",
        thread_root_id="root@customer.example",
        thread_started=T0,
        thread_root_index="",
        extra_headers=(("X-Inboxd-Ticket", "7"),),
    )
    ref = AttachmentRef("ab" * 32, "display.png", "image/png", "cid1", True)
    return QueuedMail(mail, letter, T0 + timedelta(minutes=5), (ref,), "[#{id}]")


def test_a_template_intent_round_trips_with_its_datetimes_and_offsets() -> None:
    context = {
        "ticket": {"id": 7, "created_at": T0, "tags": ("a", "b")},
        "message": {"date": datetime(2026, 3, 2, 10, 0, tzinfo=BERLIN), "text": "Grüße\n"},
        "agent": {"name": "Alice"},
    }
    queued = _queued(Letter("notify", context, text_of=5))
    back = decode(encode(queued))
    assert back.letter.text_of == 5
    assert back.mail == queued.mail and back.date == queued.date
    assert back.attachments == queued.attachments and back.tag_format == "[#{id}]"
    assert back.letter.template == "notify"
    assert back.letter.context["message"]["date"] == context["message"]["date"]  # type: ignore[index]
    assert back.letter.context["message"]["date"].utcoffset() == timedelta(hours=1)  # type: ignore[index]
    assert back.letter.context["ticket"]["tags"] == ["a", "b"]  # type: ignore[index]


def test_a_rendered_intent_writes_the_same_bytes_as_the_mail_it_holds() -> None:
    queued = _queued(Letter(subject="Hello", text="Body\n", html="<p>Body</p>"))
    back = decode(encode(queued))
    data = b"\x89PNG..."
    att = (back.attachments[0].with_data(data),)
    written = render_message(back.outbound("Hello", "Body\n", "<p>Body</p>", att), date=back.date)
    direct = OutboundMail(
        **{
            **{f: getattr(queued.mail, f) for f in queued.mail.__dataclass_fields__},
            "subject": "[#7] Hello",
            "text": "Body\n",
            "html": "<p>Body</p>",
            "attachments": (Attachment("display.png", "image/png", data, "ab" * 32, "cid1", True),),
        }
    )
    assert written == render_message(direct, date=T0 + timedelta(minutes=5))


def test_a_context_json_cannot_hold_is_refused_at_queue_time() -> None:
    with pytest.raises(TypeError, match="object"):
        encode(_queued(Letter("notify", {"x": object()})))


@pytest.mark.parametrize(
    "text",
    ["", "not json", '{"v": 99}', '{"v": 1, "kind": "notify"}', '{"v": 1, "kind": "nope"}'],
)
def test_an_unreadable_intent_is_an_intent_error(text: str) -> None:
    with pytest.raises(IntentError):
        decode(text)
