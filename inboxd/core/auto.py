"""Was this mail sent by a machine? (RFC 3834 and the de-facto markers).

Loop prevention depends on this: we never acknowledge auto-replies, lists or
bounces. Subject words alone ("Out of office") are not trusted, because people
write them too; they only count together with a header marker.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from inboxd.core.model import Address, AutoFlags, MessageKind

_MAILER_DAEMON = re.compile(
    r"^(?:mailer[-_.]?daemon|postmaster|mail[-_.]?delivery[-_.]?(?:system|subsystem)|"
    r"mmdf|mdaemon|bounces?|mailerdaemon)(?:[+-].*)?$",
    re.IGNORECASE,
)
_NOREPLY = re.compile(
    r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|dont[-_.]?reply|noreply[-_.]?\w*|"
    r"no[-_.]?answer|notifications?[-_.]?noreply)(?:[+-].*)?$",
    re.IGNORECASE,
)
_OOO_SUBJECT = re.compile(
    r"(?:out\s+of\s+(?:the\s+)?office|automatic\s+reply|auto(?:matic)?[-\s]?reply|autoreply|"
    r"away\s+from\s+(?:the\s+)?office|on\s+vacation|vacation\s+reply|"
    r"abwesenheitsnotiz|automatische\s+antwort|abwesend|außer\s+haus|"
    r"absence|réponse\s+automatique|absent|"
    r"respuesta\s+automática|fuera\s+de\s+la\s+oficina|"
    r"risposta\s+automatica|fuori\s+ufficio|"
    r"automatisch\s+antwoord|afwezig|"
    r"automatiskt\s+svar|frånvaro|autosvar|fraværende|"
    r"resposta\s+automática|ausente|"
    r"automatyczna\s+odpowiedź|nieobecność|"
    r"automaattinen\s+vastaus|poissa|"
    r"автоответ|отсутств|"
    r"自動応答|不在|自动回复)",
    re.IGNORECASE,
)


_AUTOREPLY_HEADERS = frozenset({"x-autoreply", "x-autorespond", "x-autoresponder", "x-auto-reply"})


def is_mailer_daemon(addr: Address | None) -> bool:
    return addr is not None and bool(_MAILER_DAEMON.match(addr.local or addr.email))


def is_noreply(addr: Address | None) -> bool:
    return addr is not None and bool(_NOREPLY.match(addr.local or addr.email))


def _first_values(headers: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Name -> first value, what ``_get`` answers, in one pass for several lookups."""
    first: dict[str, str] = {}
    for key, value in headers:
        if key not in first:
            first[key] = value
    return first


def auto_flags(headers: Sequence[tuple[str, str]], sender: Address | None) -> AutoFlags:
    """Collect the machine-sender markers from decoded, lowercased-name headers."""
    first = _first_values(headers)
    auto_submitted = first.get("auto-submitted", "").strip().lower()
    precedence = first.get("precedence", "").strip().lower()
    list_id = first.get("list-id", "").strip()
    return_path = first.get("return-path")
    rp_empty = return_path is not None and return_path.strip().strip("<>").strip() == ""
    return AutoFlags(
        auto_submitted=auto_submitted,
        precedence=precedence,
        list_id=list_id,
        has_list_unsubscribe="list-unsubscribe" in first,
        return_path_empty=rp_empty,
        x_auto_response_suppress=first.get("x-auto-response-suppress", "").strip(),
        is_mailer_daemon=is_mailer_daemon(sender),
        is_noreply=is_noreply(sender),
    )


def classify(headers: Sequence[tuple[str, str]], flags: AutoFlags, subject: str) -> MessageKind:
    """AUTO_REPLY, BULK or NORMAL (bounces are decided by ``core.bounce``)."""
    auto_value = flags.auto_submitted.split(";", 1)[0].strip()
    first = _first_values(headers)
    has_autoreply_header = not _AUTOREPLY_HEADERS.isdisjoint(first)
    ms_auto = ("x-ms-exchange-inbox-rules-loop" in first) or (
        first.get("x-ms-exchange-generated-message-source", "").lower().startswith("mailbox rules")
    )
    if auto_value == "auto-replied" or has_autoreply_header:
        return MessageKind.AUTO_REPLY
    header_marker = (
        bool(auto_value and auto_value != "no")
        or ms_auto
        or (flags.x_auto_response_suppress != "" or flags.return_path_empty)
        or flags.precedence in ("auto_reply", "bulk", "junk")
    )
    if header_marker and _OOO_SUBJECT.search(subject):
        return MessageKind.AUTO_REPLY
    if flags.precedence == "auto_reply":
        return MessageKind.AUTO_REPLY
    if flags.precedence in ("bulk", "junk", "list") or flags.list_id or flags.has_list_unsubscribe:
        return MessageKind.BULK
    if auto_value and auto_value != "no":
        # auto-generated notifications (monitoring, receipts): machine mail, not a person.
        return MessageKind.BULK
    return MessageKind.NORMAL
