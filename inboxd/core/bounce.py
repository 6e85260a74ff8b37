"""Delivery status notifications (RFC 3464) and the common non-RFC bounces.

A bounce must attach to the ticket whose mail bounced, never open a new one,
so the important output is the original Message-ID; recipients, status and
diagnostic are for the alert. ``Action: delayed`` is a warning, not a failure.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32

import re2
from flufl.bounce import all_failures

from inboxd.core.headers import decode_bytes, parse_message_id
from inboxd.core.model import Bounce

# flufl.bounce logs a detector's crash before re-raising it; we catch it, so no
# stderr fallback output (our daemon's handlers still see the record).
logging.getLogger("flufl.bounce").addHandler(logging.NullHandler())

_STRONG_BODY = re.compile(
    r"(?:hi\.\s+this\s+is\s+the\s+qmail-send\s+program|"
    r"this\s+message\s+was\s+created\s+automatically\s+by\s+mail\s+delivery\s+software|"
    r"delivery\s+has\s+failed\s+to\s+these\s+recipients\s+or\s+groups|"
    r"i'm\s+sorry\s+to\s+have\s+to\s+inform\s+you\s+that\s+your\s+message\s+could\s+not|"
    r"the\s+mail\s+system\s*\n+\s*<[^>\n]+>|"
    r"your\s+message\s+(?:could\s+not\s+be|wasn't|was\s+not)\s+delivered|"
    r"delivery\s+to\s+the\s+following\s+recipients?\s+(?:failed|has\s+been\s+delayed)|"
    r"message\s+could\s+not\s+be\s+delivered\s+to\s+the\s+following\s+recipients|"
    r"the\s+following\s+addresses\s+had\s+permanent\s+fatal\s+errors|"
    r"unable\s+to\s+deliver\s+(?:your\s+)?message\s+to\s+the\s+following\s+address|"
    r"could\s+not\s+be\s+delivered\s+to\s+the\s+following\s+recipients?|"
    r"-+\s*non-delivery\s+report\s*-+|"
    r"this\s+is\s+a\s+delivery\s+failure\s+notification)",
    re.IGNORECASE,
)
# Substrings that every _STRONG_BODY alternative contains: a cheap prefilter.
_STRONG_KEYS = (
    "qmail-send",
    "mail delivery software",
    "delivery has failed",
    "inform you that your",
    "the mail system",
    "delivered",
    "following recipient",
    "permanent fatal",
    "unable to deliver",
    "non-delivery report",
    "delivery failure notification",
)
_STRONG_KEYS_RE2 = re2.compile("(?i)" + "|".join(re.escape(key) for key in _STRONG_KEYS))
_SUBJECT = re.compile(
    r"^\s*(?:undeliverable|undelivered\s+mail|undeliverable\s+mail|"
    r"delivery\s+status\s+notification|mail\s+delivery\s+(?:failed|failure|system)|"
    r"returned\s+mail|failure\s+notice|delivery\s+failure|delivery\s+failed|"
    r"message\s+not\s+delivered|non\s+remis|unzustellbar|nicht\s+zustellbar|"
    r"onbestelbaar|no\s+se\s+puede\s+entregar|non\s+recapitabile|kan\s+inte\s+levereras|"
    r"warning:\s+(?:could\s+not\s+send|message\s+.*delayed)|delayed\s+mail|"
    r"mail\s+could\s+not\s+be\s+delivered|delivery\s+notification)",
    re.IGNORECASE,
)
# Who sends bounces, by From (display name or address) or Return-Path: MTAs, gateways and
# scanners that answer for them. Only evidence: the text must also speak of a failure.
_MACHINE_SENDER = re.compile(
    r"mailer[-_. ]?daemon|postmaster|mail\s*delivery|delivery\s*(?:sub)?system|mdaemon|"
    r"system\s+administrator|mail\s*(?:server|administrator|gateway)|smtp|antivirus|"
    r"virus\s*wall|interscan|imss",
    re.IGNORECASE,
)
# What a delivery failure or delay says, in the words of many MTAs (and a few languages).
_FAILURE = re.compile(
    r"undeliver|non[-\s]?deliver|not\s+(?:yet\s+)?(?:been\s+)?delivered|"
    r"could\s+not\s+(?:be\s+)?deliver|(?:unable|not\s+able|wasn't\s+able)\s+to\s+deliver|"
    r"delivery\s+(?:status|failure|failed|problem|error|warning|notification|report)|"
    r"delivery\s+(?:has|have)\s+failed|(?:mail|message)\s+(?:delivery\s+)?(?:failed|failure)|"
    r"failed\s+(?:mail|delivery|recipients?|address(?:es)?)|returned\s+mail|mail\s+returned|"
    r"returning\s+to\s+sender|user\s+unknown|unknown\s+(?:user|recipient)|"
    r"no\s+such\s+(?:user|mailbox|address|recipient)|mailbox\s+(?:unavailable|full|is\s+full)|"
    r"full\s+mailbox|quota\s+exceeded|over\s+quota|recipient\s+address\s+rejected|"
    r"automatically\s+rejected|permanent\s+(?:error|failure)|invalid\s+(?:recipient|mailbox)|"
    r"unzustellbar|nicht\s+zugestellt|non\s+remis|non\s+recapitabile|no\s+se\s+pudo\s+entregar|"
    r"onbestelbaar|не\s+(?:может\s+быть\s+)?доставлен|недоставлен|无法送达|无法发送|退信",
    re.IGNORECASE,
)
# An SMTP transcript or status code: what a person asking about a parcel never writes.
_SMTP_EVIDENCE = re.compile(
    r"\b[245]\d\d[ -][245]\.\d{1,3}\.\d{1,3}\b|smtp\s+error|rcpt\s+to\s*:|"
    r"(?:remote\s+(?:host|server)|server)\s+(?:said|returned|replied)|\[smtp:|"
    r"maximum\s+delivery\s+attempts",
    re.IGNORECASE,
)
_DELAY = re.compile(
    r"(?:\(delay\)|delayed|still\s+being\s+retried|will\s+retry|has\s+not\s+yet\s+been\s+delivered|"
    r"warning:\s+could\s+not\s+send)",
    re.IGNORECASE,
)
_BODY_MSGID = re.compile(r"^[ \t>]*message-id:[ \t]*(<?[^\s<>]+@[^\s<>]+>?)", re.I | re.M)
_QMAIL_RCPT = re.compile(r"^<([^<>\s@]+@[^<>\s]+)>:", re.M)
# An address alone on its line: indented (Exim, Sendmail), or in <> (many gateways).
_INDENTED_ADDR = re.compile(
    r"^(?:[ \t]+<?([^<>\s@:]+@[^<>\s:]+?)>?[ \t]*(?::|$)|<([^<>\s@:]+@[^<>\s:]+)>[ \t]*$)", re.M
)
_ENHANCED = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")


_STATUS_TYPES = ("message/delivery-status", "message/global-delivery-status")


def _fields_from_text(text: str) -> list[dict[str, str]]:
    """RFC 3464 blocks (per-message, then per-recipient) from raw text."""
    blocks: list[dict[str, str]] = []
    for chunk in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n")):
        fields: dict[str, str] = {}
        last = ""
        for line in chunk.split("\n"):
            if line[:1] in (" ", "\t") and last:
                fields[last] += " " + line.strip()
                continue
            name, sep, value = line.partition(":")
            if sep and name.strip():
                last = name.strip().lower()
                fields.setdefault(last, value.strip())
        if fields:
            blocks.append(fields)
    return blocks


def _status_blocks(part: Message) -> list[dict[str, str]]:
    payload = part.get_payload()
    blocks: list[dict[str, str]] = []
    if isinstance(payload, list):
        for sub in payload:
            if isinstance(sub, Message):
                fields: dict[str, str] = {}
                for key, value in sub.items():
                    fields.setdefault(key.lower(), " ".join(str(value).split()))
                if fields:
                    blocks.append(fields)
        return blocks
    data = part.get_payload(decode=True)
    if isinstance(data, bytes):
        text, _ = decode_bytes(data, "utf-8")
        return _fields_from_text(text)
    return blocks


def _after_type(value: str) -> str:
    """ "rfc822; user@example.com" -> "user@example.com"."""
    value = value.split(";", 1)[1] if ";" in value else value
    return value.strip().strip("<>").strip().lower()


def _mta_failures(msg: Message) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(temporary, permanent) failed addresses by flufl.bounce's MTA detectors.

    Mailman's detectors know the non-RFC formats of many MTAs (and RFC 3464 too);
    a detector that crashes on a broken mail leaves us with our own parsing.
    """
    try:
        temporary, permanent = all_failures(msg)
    except Exception:
        return (), ()

    def norm(found: frozenset[bytes]) -> tuple[str, ...]:
        return tuple(sorted({a.decode("ascii", "replace").strip().lower() for a in found}))

    return norm(temporary), norm(permanent)


def _original_message_id(msg: Message) -> str:
    for part in _walk(msg):
        ctype = part.get_content_type()
        if ctype in (
            "message/rfc822",
            "message/global",
            "text/rfc822-headers",
            "message/rfc822-headers",
            "message/global-headers",
        ):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                mid = parse_message_id(payload[0].get("message-id"))
                if mid:
                    return mid
                continue
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                text, _ = decode_bytes(data, "utf-8")
                headers = HeaderParser(policy=compat32).parsestr(text, headersonly=True)
                mid = parse_message_id(headers.get("message-id"))
                if mid:
                    return mid
                found = _BODY_MSGID.search(text)
                if found:
                    return parse_message_id(found.group(1))
    return ""


def _walk(msg: Message) -> list[Message]:
    out: list[Message] = []
    stack = [msg]
    while stack and len(out) < 500:
        part = stack.pop()
        out.append(part)
        payload = part.get_payload()
        if isinstance(payload, list) and part.get_content_type() != "message/delivery-status":
            stack.extend(reversed([p for p in payload if isinstance(p, Message)]))
    return out


def _from_dsn(msg: Message, report: Message | None) -> Bounce:
    blocks = _status_blocks(report) if report is not None else []
    recipients = [
        b
        for b in blocks
        if "final-recipient" in b or "original-recipient" in b or "action" in b or "status" in b
    ]
    failed: list[str] = []
    chosen: dict[str, str] | None = None
    for block in recipients:
        action = block.get("action", "").strip().lower()
        original = block.get("original-recipient", "")
        addr = _after_type(
            original
            if original.lower().startswith("rfc822")
            else block.get("final-recipient") or original
        )
        if addr and (action.startswith(("fail", "error", "delayed")) or action == ""):
            failed.append(addr)  # delayed ones too: "permanent" tells them apart
        if chosen is None or (action == "failed" and chosen.get("action", "").lower() != "failed"):
            chosen = block
    chosen = chosen or {}
    action = chosen.get("action", "").strip().lower()
    status = chosen.get("status", "").strip()
    status_match = _ENHANCED.search(status)
    status = status_match.group(1) if status_match else status[:32]
    diagnostic = chosen.get("diagnostic-code", "").strip()
    if ";" in diagnostic[:20]:
        diagnostic = diagnostic.split(";", 1)[1].strip()
    if not failed and action not in ("delayed", "delivered", "relayed", "expanded"):
        failed = [
            _after_type(b.get("final-recipient", ""))
            for b in recipients
            if b.get("final-recipient")
        ]
    permanent = action == "failed" or (action == "" and status.startswith("5"))
    if not failed:
        temporary, permanent_found = _mta_failures(msg)
        failed = [*permanent_found, *temporary]
    return Bounce(
        original_message_id=_original_message_id(msg),
        failed_recipients=tuple(dict.fromkeys(a for a in failed if a)),
        status=status,
        action=action,
        diagnostic=diagnostic[:2000],
        permanent=permanent,
    )


def _from_text(msg: Message, text: str, subject: str, x_failed: str) -> Bounce:
    head = text[:20000]
    recipients = [a.lower() for a in _QMAIL_RCPT.findall(head)]
    if x_failed:
        recipients += [a.strip().lower() for a in x_failed.split(",") if "@" in a]
    if not recipients:
        recipients = [(a or b).lower() for a, b in _INDENTED_ADDR.findall(head)[:20]]
    status_match = _ENHANCED.search(head)
    delayed = bool(_DELAY.search(subject)) or bool(
        re.search(
            r"has\s+not\s+yet\s+been\s+delivered|will\s+(?:continue\s+to\s+)?retry|"
            r"delivery\s+to\s+the\s+following\s+recipients?\s+has\s+been\s+delayed",
            head,
            re.I,
        )
    )
    temporary, permanent = _mta_failures(msg)
    if temporary or permanent:
        recipients = [*permanent, *temporary]
        delayed = delayed or not permanent
    mid = _original_message_id(msg)
    if not mid:
        found = _BODY_MSGID.search(text)
        if found:
            mid = parse_message_id(found.group(1))
    diagnostic = ""
    for line in head.split("\n"):
        stripped = line.strip()
        if re.match(
            r"^(?:remote\s+server\s+returned|diagnostic|\d{3}[ -]\d\.\d|\d{3}\s)", stripped, re.I
        ):
            diagnostic = stripped
            break
    return Bounce(
        original_message_id=mid,
        failed_recipients=tuple(dict.fromkeys(recipients)),
        status=status_match.group(1) if status_match else "",
        action="delayed" if delayed else "failed",
        diagnostic=diagnostic[:2000],
        permanent=not delayed,
    )


@dataclass(frozen=True, slots=True)
class Signals:
    """What the headers and text say about a mail, for the bounce decision.

    ``sender`` is the From header and ``return_path`` the Return-Path as sent;
    ``auto_reply`` is an RFC 3834 auto-reply (vacation) marker.
    """

    subject: str
    text: str
    return_path_empty: bool
    x_failed_recipients: str = ""
    is_mailer_daemon: bool = False
    sender: str = ""
    return_path: str = ""
    auto_reply: bool = False


def detect_bounce(msg: Message, signals: Signals) -> Bounce | None:
    """A :class:`Bounce` when ``msg`` is a DSN or a recognizable bounce, else None."""
    ctype = msg.get_content_type()
    if ctype in _STATUS_TYPES:  # a bare report, without its multipart/report
        return _from_dsn(msg, msg)
    if ctype == "multipart/report":
        report_type = msg.get_param("report-type") or ""
        report_type = str(report_type).strip().lower() if not isinstance(report_type, tuple) else ""
        report = next(
            (p for p in _walk(msg) if p.get_content_type() in _STATUS_TYPES),
            None,
        )
        if report_type in ("delivery-status", "global-delivery-status") or report is not None:
            return _from_dsn(msg, report)
        if report_type and report_type != "disposition-notification":
            return None  # feedback-report and the like: never a bounce
        # a disposition-notification is a read receipt unless its text is a bounce's
    if is_candidate(signals):
        return _from_text(msg, signals.text, signals.subject, signals.x_failed_recipients)
    return None


def bounce_candidate(
    *,
    subject: str,
    text: str,
    return_path_empty: bool,
    x_failed_recipients: str = "",
    is_mailer_daemon: bool = False,
) -> bool:
    """:func:`is_candidate` from the classic signals alone."""
    return is_candidate(
        Signals(subject, text, return_path_empty, x_failed_recipients, is_mailer_daemon)
    )


def is_candidate(signals: Signals) -> bool:
    """Whether the text and headers alone make this a bounce (no multipart/report).

    An MTA's own phrase; or a machine sender and a failure in the subject or text;
    or a bounce subject and an SMTP transcript. An empty Return-Path alone is no
    machine sender for an auto-reply: vacation replies have one too. The parser's
    fast path has no compat32 tree; it builds one only when this says so.
    """
    subject, text = signals.subject, signals.text
    head = text[:5000]
    if head.isascii():  # one RE2 pass; on ASCII, (?i) is exactly "in head.lower()"
        has_key = _STRONG_KEYS_RE2.search(head) is not None
    else:
        low = head.lower()
        has_key = any(key in low for key in _STRONG_KEYS)
    if has_key and _STRONG_BODY.search(head):
        return True
    machine = (
        signals.is_mailer_daemon
        or bool(signals.x_failed_recipients)
        or bool(
            _MACHINE_SENDER.search(signals.sender) or _MACHINE_SENDER.search(signals.return_path)
        )
        or (signals.return_path_empty and not signals.auto_reply)
    )
    bounce_subject = bool(_SUBJECT.search(subject))
    if machine and (bounce_subject or _FAILURE.search(subject) or _FAILURE.search(head)):
        return True
    return bounce_subject and bool(_SMTP_EVIDENCE.search(head))
