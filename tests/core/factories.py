"""Build ParsedMessage values directly, for tests of code that consumes them.

``parsed_message()`` gives an ordinary customer mail; override any field by
keyword. ``auto=`` takes AutoFlags keyword overrides as a dict, so a test says
only what it is about:

    parsed_message(auto={"precedence": "bulk"}, kind=MessageKind.BULK)
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from inboxd.core.model import Address, AutoFlags, MessageKind, ParsedMessage

DEFAULT_DATE = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def addr(text: str) -> Address:
    """``"Alice <alice@x>"`` or ``"alice@x"`` -> Address (email lowercased)."""
    if "<" in text:
        name, _, rest = text.partition("<")
        return Address(rest.rstrip(">").strip().lower(), name.strip().strip('"'))
    return Address(text.strip().lower())


def parsed_message(
    *,
    auto: dict[str, Any] | AutoFlags | None = None,
    headers: dict[str, str] | tuple[tuple[str, str], ...] | None = None,
    **overrides: Any,
) -> ParsedMessage:
    """A plain customer mail to support@help.example; keywords override fields.

    ``from_``/``to``/``cc``/``reply_to`` accept strings as well as Address values;
    ``headers`` accepts a dict (names are lowercased). The usual headers (from, to,
    subject, message-id) are generated unless ``headers`` is given.
    """
    for key in ("to", "cc", "reply_to"):
        value = overrides.get(key)
        if isinstance(value, str):
            overrides[key] = (addr(value),)
        elif isinstance(value, (list, tuple)):
            overrides[key] = tuple(addr(v) if isinstance(v, str) else v for v in value)
    if isinstance(overrides.get("from_"), str):
        overrides["from_"] = addr(overrides["from_"])

    text = overrides.get("text", "Hello, my printer is broken.\n")
    base = ParsedMessage(
        message_id="m1@customer.example",
        message_id_synthesized=False,
        in_reply_to=(),
        references=(),
        from_=Address("alice@customer.example", "Alice"),
        reply_to=(),
        to=(Address("support@help.example"),),
        cc=(),
        date=DEFAULT_DATE,
        subject="Printer broken",
        normalized_subject="printer broken",
        text=text,
        html="",
        new_text=text,
        attachments=(),
        headers=(),
        auto=AutoFlags(),
        kind=MessageKind.NORMAL,
        bounce=None,
        defects=(),
        raw_sha256=hashlib.sha256(text.encode()).hexdigest(),
        content_digest=hashlib.sha256(b"digest:" + text.encode()).hexdigest(),
        size=len(text),
    )
    msg = replace(base, **overrides)
    if isinstance(auto, AutoFlags):
        msg = replace(msg, auto=auto)
    elif auto:
        msg = replace(msg, auto=replace(AutoFlags(), **auto))
    if headers is None:
        sender = msg.from_
        generated = [
            ("from", f"{sender.name} <{sender.email}>" if sender else ""),
            ("to", ", ".join(a.email for a in msg.to)),
            ("subject", msg.subject),
            ("message-id", f"<{msg.message_id}>"),
        ]
        msg = replace(msg, headers=tuple(generated))
    else:
        items = headers.items() if isinstance(headers, dict) else headers
        msg = replace(msg, headers=tuple((k.lower(), v) for k, v in items))
    return msg
