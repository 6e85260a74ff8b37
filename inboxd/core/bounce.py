"""Delivery status notifications (RFC 3464) and the common non-RFC bounces.

A bounce must attach to the ticket whose mail bounced, never open a new one,
so the important output is the original Message-ID; recipients, status and
diagnostic are for the alert. ``Action: delayed`` is a warning, not a failure.
"""

from __future__ import annotations

import re
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32

import re2

from inboxd.core.headers import decode_bytes, parse_message_id
from inboxd.core.model import Bounce

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
    r"unable\s+to\s+deliver\s+(?:your\s+)?message\s+to\s+the\s+following\s+address)",
    re.IGNORECASE,
)
# Substrings that every _STRONG_BODY alternative contains: a cheap prefilter.
_STRONG_KEYS = (
    "qmail-send", "mail delivery software", "delivery has failed", "inform you that your",
    "the mail system", "delivered", "following recipient", "permanent fatal", "unable to deliver",
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
_DELAY = re.compile(
    r"(?:\(delay\)|delayed|still\s+being\s+retried|will\s+retry|has\s+not\s+yet\s+been\s+delivered|"
    r"warning:\s+could\s+not\s+send)",
    re.IGNORECASE,
)
_BODY_MSGID = re.compile(r"^[ \t>]*message-id:[ \t]*(<?[^\s<>]+@[^\s<>]+>?)", re.I | re.M)
_QMAIL_RCPT = re.compile(r"^<([^<>\s@]+@[^<>\s]+)>:", re.M)
_INDENTED_ADDR = re.compile(r"^[ \t]+<?([^<>\s@:]+@[^<>\s:]+?)>?[ \t]*(?::|$)", re.M)
_ENHANCED = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")


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
    """"rfc822; user@example.com" -> "user@example.com"."""
    value = value.split(";", 1)[1] if ";" in value else value
    return value.strip().strip("<>").strip().lower()


def _original_message_id(msg: Message) -> str:
    for part in _walk(msg):
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global", "text/rfc822-headers",
                     "message/rfc822-headers", "message/global-headers"):
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
    recipients = [b for b in blocks if "final-recipient" in b or "original-recipient" in b
                  or "action" in b or "status" in b]
    failed: list[str] = []
    chosen: dict[str, str] | None = None
    for block in recipients:
        action = block.get("action", "").strip().lower()
        addr = _after_type(block.get("final-recipient") or block.get("original-recipient", ""))
        if action in ("failed", "") and addr:
            failed.append(addr)
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
            _after_type(b.get("final-recipient", "")) for b in recipients
            if b.get("final-recipient")
        ]
    permanent = action == "failed" or (action == "" and status.startswith("5"))
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
        recipients = [a.lower() for a in _INDENTED_ADDR.findall(head)[:20]]
    status_match = _ENHANCED.search(head)
    delayed = bool(_DELAY.search(subject)) or bool(
        re.search(r"has\s+not\s+yet\s+been\s+delivered|will\s+(?:continue\s+to\s+)?retry|"
                  r"delivery\s+to\s+the\s+following\s+recipients?\s+has\s+been\s+delayed",
                  head, re.I)
    )
    mid = _original_message_id(msg)
    if not mid:
        found = _BODY_MSGID.search(text)
        if found:
            mid = parse_message_id(found.group(1))
    diagnostic = ""
    for line in head.split("\n"):
        stripped = line.strip()
        if re.match(r"^(?:remote\s+server\s+returned|diagnostic|\d{3}[ -]\d\.\d|\d{3}\s)",
                     stripped, re.I):
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


def detect_bounce(
    msg: Message,
    *,
    subject: str,
    text: str,
    return_path_empty: bool,
    x_failed_recipients: str = "",
    is_mailer_daemon: bool = False,
) -> Bounce | None:
    """A :class:`Bounce` when ``msg`` is a DSN or a recognizable bounce, else None."""
    ctype = msg.get_content_type()
    if ctype == "multipart/report":
        report_type = (msg.get_param("report-type") or "")
        report_type = str(report_type).strip().lower() if not isinstance(report_type, tuple) \
            else ""
        report = next(
            (p for p in _walk(msg) if p.get_content_type()
             in ("message/delivery-status", "message/global-delivery-status")),
            None,
        )
        if report_type in ("delivery-status", "global-delivery-status") or report is not None:
            return _from_dsn(msg, report)
        if report_type:  # disposition-notification, feedback-report: not a bounce
            return None
    if bounce_candidate(
        subject=subject,
        text=text,
        return_path_empty=return_path_empty,
        x_failed_recipients=x_failed_recipients,
        is_mailer_daemon=is_mailer_daemon,
    ):
        return _from_text(msg, text, subject, x_failed_recipients)
    return None


def bounce_candidate(
    *,
    subject: str,
    text: str,
    return_path_empty: bool,
    x_failed_recipients: str = "",
    is_mailer_daemon: bool = False,
) -> bool:
    """Whether the text and headers alone make this a bounce (no multipart/report).

    The parser's fast path has no compat32 tree; it builds one only when this says so.
    """
    head = text[:5000]
    if head.isascii():  # one RE2 pass; on ASCII, (?i) is exactly "in head.lower()"
        has_key = _STRONG_KEYS_RE2.search(head) is not None
    else:
        low = head.lower()
        has_key = any(key in low for key in _STRONG_KEYS)
    if has_key and _STRONG_BODY.search(head):
        return True
    machine = is_mailer_daemon or return_path_empty or bool(x_failed_recipients)
    return machine and bool(_SUBJECT.search(subject))
