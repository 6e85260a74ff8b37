"""A queued mail as the outbox holds it: what to write, not the written bytes.

Flows queue mail inside the ingest transaction. Writing it there (templates,
MIME, a base64 copy of every attachment per agent) made the transaction the
slowest part of ingest, so a row holds a ``QueuedMail`` instead: the
addressing and threading fixed at queue time (Message-ID, Date, recipients),
the template and its context, and attachments by blob. The drain renders it
(``letter`` + ``mail`` -> ``OutboundMail`` -> ``render_message``); the same
intent and templates give the same bytes, so a retry sends the mail it sent.

The JSON is ours and versioned (``v``); datetimes keep their offset.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from inboxd.core import jsontext
from inboxd.core.compose import OutboundKind, OutboundMail, subject_with_tag
from inboxd.core.model import Address, Attachment

VERSION = 1
_DT = "$dt"  # the key a datetime is tagged with in the context


class IntentError(ValueError):
    """A stored intent that cannot be read (another version, a damaged row)."""


@dataclass(frozen=True, slots=True)
class AttachmentRef:
    """An attachment by its blob: the bytes are read when the mail is written."""

    sha256: str
    filename: str
    content_type: str
    content_id: str = ""
    inline: bool = False

    @classmethod
    def of(cls, att: Attachment) -> AttachmentRef:
        return cls(att.sha256, att.filename, att.content_type, att.content_id, att.inline)

    def with_data(self, data: bytes) -> Attachment:
        return Attachment(
            self.filename, self.content_type, data, self.sha256, self.content_id, self.inline
        )


@dataclass(frozen=True, slots=True)
class Letter:
    """What the mail says: template ``template`` with ``context``, or, when
    ``template`` is "", the ``subject``/``text``/``html`` rendered already.

    ``text_of``: the row id of a stored mail whose text the context's ``message``
    quotes; its ``text`` and ``html`` are then left out of the row and read from
    that mail when the letter is written (a notification per agent would otherwise
    store a copy of the customer's whole mail each)."""

    template: str = ""
    context: Mapping[str, Any] = field(default_factory=dict)
    subject: str = ""
    text: str = ""
    html: str = ""
    text_of: int = 0


@dataclass(frozen=True, slots=True)
class QueuedMail:
    """``mail``: the headers' half of the mail (subject, text, html and attachments
    empty); ``tag_format``: the ticket tag the rendered subject gets ("" for mail
    about no ticket); ``date``: its Date header."""

    mail: OutboundMail
    letter: Letter
    date: datetime
    attachments: tuple[AttachmentRef, ...] = ()
    tag_format: str = ""

    def outbound(
        self, subject: str, text: str, html: str, attachments: tuple[Attachment, ...]
    ) -> OutboundMail:
        """The whole mail, once the letter is rendered and the attachments read."""
        tagged = subject
        if self.tag_format and self.mail.ticket_id is not None:
            tagged = subject_with_tag(subject, self.mail.ticket_id, self.tag_format)
        return replace(self.mail, subject=tagged, text=text, html=html, attachments=attachments)


# --- JSON -------------------------------------------------------------------------------


def _address(a: Address) -> list[str]:
    return [a.email, a.name]


def _default(value: object) -> object:
    """What JSON has no type for: a datetime becomes ``{"$dt": ISO}``, a mapping a dict."""
    if isinstance(value, datetime):
        return {_DT: value.isoformat()}
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} cannot be queued in a template context")


def _hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and _DT in obj:
        return datetime.fromisoformat(obj[_DT])
    return obj


def encode(queued: QueuedMail) -> str:
    """The row's ``intent`` text. Raises TypeError for a context value JSON cannot hold."""
    m, letter = queued.mail, queued.letter
    data: dict[str, Any] = {
        "v": VERSION,
        "kind": m.kind.value,
        "ticket": m.ticket_id,
        "from": _address(m.from_addr),
        "to": [_address(a) for a in m.to],
        "cc": [_address(a) for a in m.cc],
        "reply_to": _address(m.reply_to) if m.reply_to is not None else None,
        "message_id": m.message_id,
        "in_reply_to": m.in_reply_to,
        "references": list(m.references),
        "auto_submitted": m.auto_submitted,
        "topic": m.thread_topic,
        "root_id": m.thread_root_id,
        "started": m.thread_started,
        "root_index": m.thread_root_index,
        "headers": [list(h) for h in m.extra_headers],
        "date": queued.date,
        "tag": queued.tag_format,
        "attachments": [
            [r.sha256, r.filename, r.content_type, r.content_id, r.inline]
            for r in queued.attachments
        ],
    }
    if letter.template:
        data["template"] = letter.template
        data["context"] = letter.context
        if letter.text_of:
            data["text_of"] = letter.text_of
    else:
        data["rendered"] = [letter.subject, letter.text, letter.html]
    return jsontext.dumps(data, default=_default)


def decode(text: str) -> QueuedMail:
    """The ``QueuedMail`` of an ``intent`` text; IntentError when it is not one."""
    try:
        data = json.loads(text, object_hook=_hook)
        if data.get("v") != VERSION:
            raise IntentError(f"intent version {data.get('v')!r}, this inboxd reads {VERSION}")
        mail = OutboundMail(
            kind=OutboundKind(data["kind"]),
            ticket_id=data["ticket"],
            from_addr=Address(*data["from"]),
            to=tuple(Address(*a) for a in data["to"]),
            cc=tuple(Address(*a) for a in data["cc"]),
            reply_to=Address(*data["reply_to"]) if data["reply_to"] else None,
            subject="",
            text="",
            message_id=data["message_id"],
            in_reply_to=data["in_reply_to"],
            references=tuple(data["references"]),
            auto_submitted=data["auto_submitted"],
            thread_topic=data["topic"],
            thread_root_id=data["root_id"],
            thread_started=data["started"],
            thread_root_index=data["root_index"],
            extra_headers=tuple((str(k), str(v)) for k, v in data["headers"]),
        )
        if "template" in data:
            letter = Letter(
                template=data["template"],
                context=data["context"],
                text_of=int(data.get("text_of", 0)),
            )
        else:
            subject, body, html = data["rendered"]
            letter = Letter(subject=subject, text=body, html=html)
        refs = tuple(AttachmentRef(s, f, c, i, bool(n)) for s, f, c, i, n in data["attachments"])
        return QueuedMail(mail, letter, data["date"], refs, data["tag"])
    except IntentError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise IntentError(f"unreadable intent: {type(exc).__name__}: {exc}") from exc
