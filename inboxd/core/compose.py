"""Outbound mail as a value, and the one function that turns it into bytes.

Everything that leaves inboxd is an ``OutboundMail`` rendered here, so header
hygiene lives in one place:

- every header value built from ticket data passes ``header_safe`` (CR, LF and
  other control characters removed), so a customer's subject or display name
  cannot add headers;
- threading: our Message-ID, In-Reply-To and a capped References chain, plus
  Outlook's ``Thread-Topic``/``Thread-Index`` (all mails of one ticket share one
  Thread-Index root, so Outlook users see one conversation too);
- automatic mail (acknowledgements, notifications, reminders, alerts) carries
  ``Auto-Submitted`` (RFC 3834), ``X-Auto-Response-Suppress`` and
  ``Precedence: bulk``; a relayed agent reply carries none of them, because a
  person wrote it. See ``_automatic_headers`` for why each one is there.

The bytes use CRLF and 7-bit transfer encodings (quoted-printable or base64 for
non-ASCII), so they can be handed to any SMTP server, with or without 8BITMIME.
The one exception is an address whose local part is not ASCII (RFC 6530 mail,
``jörg@example.de``): no encoding can carry it, so it is written as UTF-8
(RFC 6532) and the mail must go out with SMTPUTF8 (see ``needs_smtputf8``).
Domains are always written as IDNA A-labels, in headers and in the envelope.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime

from inboxd.core.model import Address, Attachment
from inboxd.core.threadindex import decode_thread_index, thread_index_child, thread_index_root

# --- kinds and the automatic-mail policy ------------------------------------------------------


class OutboundKind(enum.StrEnum):
    ACK = "ack"  # acknowledgement of a new ticket, to the customer
    NOTIFY = "notify"  # "new ticket / customer wrote again", to the agent or team
    REPLY = "reply"  # an agent's answer relayed to the customer
    NOTE_ACK = "note_ack"  # "your #note was recorded", to the agent
    COMMAND_RESULT = "command_result"  # what the agent's commands did (or why not)
    SLA_REMINDER = "sla_reminder"
    SLA_BREACH = "sla_breach"
    BOUNCE_ALERT = "bounce_alert"  # "your mail to X bounced", to the agent
    CSAT = "csat"  # the one-question satisfaction survey, to the customer
    CSAT_ALERT = "csat_alert"  # "a customer rated bad", to the team lead
    DIGEST = "digest"  # the weekly figures of a team, to its lead


AUTO_REPLIED = "auto-replied"
AUTO_GENERATED = "auto-generated"


class Audience(enum.StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"


@dataclass(frozen=True, slots=True)
class MailKind:
    """Everything that follows from what kind of mail it is.

    ``template``: the template pair (``NAME.txt`` / ``NAME.html``) it is rendered
    from. ``auto_submitted``: RFC 3834 section 5, "auto-replied" for mail sent in
    direct response to a message, "auto-generated" for mail triggered by
    something else (a timer, a state change), "" for a person's mail. ``verp``:
    the envelope sender is ``support+TOKEN@`` so a bounce names the ticket;
    otherwise it is null (``<>``), as RFC 3834 3.3 asks of automatic answers, so
    nothing bounces back into a loop. ``alert_on_failure``: a mail that fails
    for good is told to the ticket's agents (never for the alerts themselves).
    """

    template: str
    audience: Audience
    auto_submitted: str
    verp: bool
    alert_on_failure: bool


_CUSTOMER, _AGENT = Audience.CUSTOMER, Audience.AGENT

# One row per outbound kind: adding a kind is a row here and its two templates.
KINDS: Mapping[OutboundKind, MailKind] = {
    OutboundKind.ACK: MailKind("ack", _CUSTOMER, AUTO_REPLIED, False, True),
    OutboundKind.NOTIFY: MailKind("notify", _AGENT, AUTO_GENERATED, True, True),
    OutboundKind.REPLY: MailKind("reply", _CUSTOMER, "", True, True),
    OutboundKind.NOTE_ACK: MailKind("note_ack", _AGENT, AUTO_REPLIED, False, False),
    OutboundKind.COMMAND_RESULT: MailKind("command_result", _AGENT, AUTO_REPLIED, False, False),
    OutboundKind.SLA_REMINDER: MailKind("sla_reminder", _AGENT, AUTO_GENERATED, True, True),
    OutboundKind.SLA_BREACH: MailKind("sla_breach", _AGENT, AUTO_GENERATED, True, True),
    OutboundKind.BOUNCE_ALERT: MailKind("bounce_alert", _AGENT, AUTO_GENERATED, False, False),
    OutboundKind.CSAT: MailKind("csat", _CUSTOMER, AUTO_GENERATED, False, False),
    OutboundKind.CSAT_ALERT: MailKind("csat_alert", _AGENT, AUTO_GENERATED, False, False),
    OutboundKind.DIGEST: MailKind("digest", _AGENT, AUTO_GENERATED, False, False),
}


def kind_of(kind: str) -> MailKind:
    """The table row of a kind, by enum or by its stored name."""
    return KINDS[OutboundKind(kind)]


# Exchange/Outlook: suppress out-of-office and other auto replies, delivery and read
# receipts; NOT non-delivery reports ("NDR"), because bounces are how we learn that
# an address is dead (issue 4: bounces mark the outbound mail failed). "All" would
# include NDR.
AUTO_RESPONSE_SUPPRESS = "DR, RN, NRN, OOF, AutoReply"

REFERENCES_CAP = 20  # ids kept in References: the root plus the 19 most recent

# Headers render_message owns; extra_headers may not set or duplicate them.
_RESERVED = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "subject",
        "date",
        "message-id",
        "in-reply-to",
        "references",
        "auto-submitted",
        "x-auto-response-suppress",
        "precedence",
        "thread-topic",
        "thread-index",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "content-disposition",
        "sender",
        "return-path",
    }
)

_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\u0085\u2028\u2029]+")
_FIELD_NAME_RE = re.compile(r"^[!-9;-~]{1,76}$")  # RFC 5322 ftext, short enough to fold
_MSGID_RE = re.compile(r"^[!-;=?-~]+@[!-;=?-~]+$")  # printable ASCII without <, >, space
_EMAIL_RE = re.compile(r"^[^\s<>()\[\]\\,;:\"@]+@[^\s<>()\[\]\\,;:\"@]+$")
_REPLY_PREFIX_RE = re.compile(
    r"^\s*(?:re|aw|antw|sv|vs|r|rif|odp|ynt|atb)(?:\s*\[\d+\]|\s*\(\d+\))?\s*:\s*", re.IGNORECASE
)
_FORWARD_PREFIX_RE = re.compile(
    r"^\s*(?:fwd?|wg|tr|rv|fs|enc|doorst)(?:\s*\[\d+\])?\s*:\s*", re.IGNORECASE
)


class ComposeError(ValueError):
    """The mail cannot be rendered (a bug in the caller, not in the customer's data)."""


# --- the value -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutboundMail:
    """One mail to send, before it becomes bytes.

    ``auto_submitted`` "" means "what the kind implies" (see ``auto_submitted_for``),
    so a caller cannot forget to mark an acknowledgement as automatic; pass a value
    only to override. ``message_id``, ``in_reply_to`` and ``references`` are bare ids
    without angle brackets; ``references`` is the parent's References chain, to
    which render_message appends ``in_reply_to``.

    Thread-Index: ``thread_root_id`` is the ticket's first Message-ID and
    ``thread_started`` the ticket's creation time; together they fix the 22-byte
    root every mail of the ticket shares. ``thread_root_index`` is the Thread-Index
    header of the ticket's first mail, when an Outlook user sent it: then its root
    is kept, so the customer's own Outlook conversation continues.
    """

    kind: OutboundKind
    ticket_id: int | None
    from_addr: Address
    to: tuple[Address, ...]
    subject: str
    text: str
    message_id: str
    reply_to: Address | None = None
    cc: tuple[Address, ...] = ()
    html: str = ""
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    auto_submitted: str = ""
    attachments: tuple[Attachment, ...] = ()
    thread_topic: str = ""
    thread_root_id: str = ""
    thread_started: datetime | None = None
    thread_root_index: str = ""
    extra_headers: tuple[tuple[str, str], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.auto_submitted not in ("", AUTO_REPLIED, AUTO_GENERATED):
            raise ComposeError(f"auto_submitted must be '', {AUTO_REPLIED} or {AUTO_GENERATED}")

    @property
    def effective_auto_submitted(self) -> str:
        return self.auto_submitted or auto_submitted_for(self.kind)

    @property
    def recipients(self) -> tuple[str, ...]:
        """Envelope recipients: To then Cc, each once, domains as IDNA A-labels."""
        return tuple(dict.fromkeys(envelope_address(a.email) for a in self.to + self.cc))


def auto_submitted_for(kind: OutboundKind) -> str:
    return kind_of(kind).auto_submitted


# --- header hygiene ------------------------------------------------------------------------


def header_safe(value: str) -> str:
    """``value`` with CR, LF and other control characters replaced by a space.

    TAB survives (it is folding white space); runs of white space collapse, so a
    header never ends up folded where we did not fold it.
    """
    if value.isprintable() and "  " not in value and value[:1] != " " and value[-1:] != " ":
        return value  # the common case, and the same result as below (isprintable: no Cc/Zl/Zs)
    return " ".join(_CONTROL_RE.sub(" ", value).split())


def clean_msgid(value: str) -> str:
    """A bare Message-ID from external data, or "" when it is not usable as one."""
    value = header_safe(value).strip().strip("<>").strip()
    return value if _MSGID_RE.match(value) else ""


def build_references(
    parent_refs: tuple[str, ...], parent_id: str, cap: int = REFERENCES_CAP
) -> tuple[str, ...]:
    """The References of a reply: the parent's chain plus the parent, each once.

    Long chains keep the first id (the thread root, which most clients thread on)
    and the most recent ones, as Thunderbird and the GNKSA advise; invalid ids from
    external mail are dropped.
    """
    chain = [c for c in (clean_msgid(r) for r in (*parent_refs, parent_id)) if c]
    chain = list(dict.fromkeys(chain[::-1]))[::-1]  # keep the LAST occurrence of each
    if len(chain) > cap:
        chain = [chain[0], *chain[len(chain) - (cap - 1) :]]
    return tuple(chain)


# --- subject tag ---------------------------------------------------------------------------


def subject_with_tag(subject: str, ticket_id: int, tag_format: str = "[#{id}]") -> str:
    """``subject`` carrying the ticket tag exactly once, after at most one prefix.

    "Re: [#1] Re: [#1] Printer" -> "Re: [#1] Printer"; "Printer [#1]" ->
    "[#1] Printer"; "AW: Printer" -> "Re: [#1] Printer". Reply and forward
    prefixes in any of the common languages collapse into one "Re:" or "Fwd:"
    (the first one seen); tags of OTHER tickets are kept.
    """
    tag = tag_format.replace("{id}", str(ticket_id))
    if not tag.strip():  # an empty tag would match everywhere: the loop below never ends
        raise ValueError(f"tag format {tag_format!r} makes an empty subject tag")
    rest = header_safe(subject)
    tag_re = _own_tag_re(tag) if _may_hold_tag(rest, tag) else None
    prefix = ""
    while True:
        stripped = rest.lstrip()
        own = tag_re.match(stripped) if tag_re is not None else None
        if own:
            rest = stripped[own.end() :]
            continue
        reply = _REPLY_PREFIX_RE.match(stripped)
        forward = _FORWARD_PREFIX_RE.match(stripped)
        match = forward if forward and (not reply or forward.end() >= reply.end()) else reply
        if match is None:
            break
        prefix = prefix or ("Fwd: " if match is forward else "Re: ")
        rest = stripped[match.end() :]
    if tag_re is not None:
        rest = tag_re.sub(" ", rest)
    rest = " ".join(rest.split())
    return f"{prefix}{tag} {rest}".rstrip()


def _own_tag_re(tag: str) -> re.Pattern[str]:
    # not a tag when digits continue it: "#1" must not match inside "#12"
    return re.compile(r"(?<!\d)" + re.escape(tag) + r"(?!\d)", re.IGNORECASE)


def _may_hold_tag(subject: str, tag: str) -> bool:
    """False when ``_own_tag_re(tag)`` cannot match anywhere in ``subject``.

    The pattern differs per ticket, so it is compiled for every mail (re's cache
    holds 512) at ~40 us; most subjects we tag do not hold the tag yet. A tag of
    ASCII without letters (the default ``[#{id}]``) is the same in any case, so a
    substring test decides; any other tag takes the regex.
    """
    if tag and tag.isascii() and not any(c.isalpha() for c in tag):
        return tag in subject
    return True


# --- Thread-Index ------------------------------------------------------------------------


def thread_index_for(mail: OutboundMail, date: datetime) -> str:
    """The Thread-Index header value for ``mail``, or "" when it has no thread root."""
    root = b""
    if mail.thread_root_index and decode_thread_index(mail.thread_root_index) is not None:
        root = base64.b64decode("".join(mail.thread_root_index.split()))[:22]
    elif mail.thread_root_id:
        root = thread_index_root(mail.thread_root_id, mail.thread_started or date)
    if not root:
        return ""
    return base64.b64encode(thread_index_child(root, date, mail.message_id)).decode("ascii")


# --- rendering -----------------------------------------------------------------------------
#
# A small RFC 5322 / MIME serializer instead of email.message.EmailMessage: with
# policy.SMTP every header assignment is parsed by headerregistry and every part
# goes through the content manager and generator, about 5 ms per mail, which made
# outbound mail the bulk of ingest time. What we write is narrow (our own headers,
# text parts, base64 attachments), so writing it directly is simple and about
# 30x cheaper; tests parse every kind back with policy.default.

_LINE = 78  # soft limit for header lines (RFC 5322 2.1.1); 998 is the hard one
_EW_MAX = 75  # one encoded word (RFC 2047 2)
_EW_OVERHEAD = len("=?utf-8?q??=")
# RFC 2047 5(3): in a phrase only these may stand unencoded in a "Q" word; used
# for every context so one encoder fits display names and unstructured text alike
_Q_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_Q_BYTE = [chr(b) if b in _Q_SAFE else f"={b:02X}" for b in range(256)]
_Q_BYTE[0x20] = "_"
_ATOM_PHRASE_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*$")  # atext and spaces
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM_RE = re.compile(rf"^{_ATEXT}(?:\.{_ATEXT})*$")
_NON_ASCII_RE = re.compile(r"[^\x00-\x7f]")
_MIME_TYPE_RE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*")
_CONTROL_BYTES = bytes([*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F])  # all but TAB, LF
_PARAM_SAFE = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$&+-.^_`|~"
)
_PCT_BYTE = [chr(b) if b in _PARAM_SAFE else f"%{b:02X}" for b in range(256)]


def _q_word(text: str) -> str:
    return "=?utf-8?q?" + "".join([_Q_BYTE[b] for b in text.encode("utf-8")]) + "?="


def _encoded_words(text: str, first_room: int = _EW_MAX) -> list[str]:
    """``text`` as RFC 2047 encoded words of at most 75 characters each.

    The first is at most ``first_room`` long, so it fits after the header name.
    "Q" keeps mostly-Latin text readable in raw form, "B" is shorter for the rest;
    a word never splits a character, so each decodes on its own.
    """
    raw = text.encode("utf-8")
    q_len = sum(len(_Q_BYTE[b]) for b in raw)
    use_b = q_len > (len(raw) + 2) // 3 * 4
    words: list[str] = []
    chunk: list[str] = []
    size = 0
    room = max(first_room, 24) - _EW_OVERHEAD
    for char in text:
        data = char.encode("utf-8")
        if use_b:
            grown = (size + len(data) + 2) // 3 * 4
        else:
            grown = size + sum(len(_Q_BYTE[b]) for b in data)
        if chunk and grown > room:
            words.append(_encode_chunk("".join(chunk), use_b))
            chunk, size, room = [], 0, _EW_MAX - _EW_OVERHEAD
        chunk.append(char)
        size = size + len(data) if use_b else size + sum(len(_Q_BYTE[b]) for b in data)
    if chunk:
        words.append(_encode_chunk("".join(chunk), use_b))
    return words


def _encode_chunk(text: str, use_b: bool) -> str:
    if use_b:
        return "=?utf-8?b?" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "?="
    return _q_word(text)


def _fold(name: str, pieces: list[str], sep: str = " ") -> str:
    """``Name: piece sep piece ...`` folded before a piece that would pass 78 columns.

    Folding only ever happens at a space that is part of ``sep`` (or between
    encoded words, where RFC 2047 6.2 drops it), so unfolding gives the value back.
    """
    line = f"{name}: " + sep.join(pieces)
    if len(line) <= _LINE:
        return line
    lines: list[str] = []
    line = f"{name}:"
    for n, piece in enumerate(pieces):
        glue = " " if n == 0 else sep
        too_long = len(line) + len(glue) + len(piece) > _LINE
        if too_long and (n or 1 + len(piece) <= _LINE):  # "Name:" alone on a line is fine
            lines.append(line + glue.rstrip(" "))
            line = " " + piece
        else:
            line += glue + piece
    lines.append(line)
    return "\r\n".join(lines)


def _needs_encoding(text: str) -> bool:
    return not text.isascii() or "=?" in text


def _unstructured(name: str, value: str) -> str:
    """A Subject-like header: ASCII words as they are, from the first word that
    needs it on, encoded words (the ticket tag stays readable to simple filters)."""
    if len(value) + len(name) + 2 <= _LINE and value.isascii() and "=?" not in value:
        return f"{name}: {value}"
    words = value.split(" ")
    first = next(
        (i for i, w in enumerate(words) if _needs_encoding(w) or len(w) > _LINE - 12), len(words)
    )
    pieces = words[:first]
    if first < len(words):
        pieces += _encoded_words(" ".join(words[first:]), _first_room(name, first))
    return _fold(name, pieces)


def _first_room(name: str, position: int) -> int:
    """Room for an encoded word that may open the header (after ``Name: ``)."""
    return _LINE - len(name) - 2 if position == 0 else _EW_MAX


def _phrase(name: str, first_room: int) -> list[str]:
    """A display name as header pieces: atoms, a quoted string or encoded words."""
    if _needs_encoding(name):
        return _encoded_words(name, first_room)
    if _ATOM_PHRASE_RE.match(name):
        return name.split(" ")
    quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return [quoted] if len(quoted) <= _LINE - 12 else _encoded_words(name, first_room)


def _split_address(email: str) -> tuple[str, str]:
    """(local part, domain as an IDNA A-label) of a usable address."""
    email = header_safe(email).replace(" ", "")
    if not _EMAIL_RE.match(email):
        raise ComposeError(f"not a usable address: {email!r}")
    local, _, domain = email.rpartition("@")
    try:
        domain = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError as exc:
        raise ComposeError(f"bad domain in {email!r}") from exc
    return local, domain


@functools.lru_cache(maxsize=4096)
def envelope_address(email: str) -> str:
    """``email`` as SMTP wants it in MAIL FROM/RCPT TO: the domain as an A-label
    (``jörg@bücher.example`` -> ``jörg@xn--bcher-kva.example``); "" stays "".

    Remembered: a backlog queues mail to the same agents and customers over and
    over (an unusable address raises each time, it is not remembered)."""
    if not email:
        return email
    local, domain = _split_address(email)
    return f"{local}@{domain}"


def needs_smtputf8(mail_from: str, rcpts: tuple[str, ...] | list[str]) -> bool:
    """Whether an envelope can only be sent with SMTPUTF8 (a non-ASCII local part)."""
    return not mail_from.isascii() or not all(r.isascii() for r in rcpts)


def _addr_spec(addr: Address) -> str:
    local, domain = _split_address(addr.email)
    # RFC 6532: a non-ASCII character counts as atext, so "jörg" is a dot-atom
    if not _DOT_ATOM_RE.match(local if local.isascii() else _NON_ASCII_RE.sub("a", local)):
        local = f'"{local}"'  # _EMAIL_RE already keeps quotes and backslashes out
    return f"{local}@{domain}"


def _address_header(name: str, addresses: tuple[Address, ...]) -> str:
    pieces: list[str] = []
    for n, addr in enumerate(addresses):
        spec = _addr_spec(addr)
        display = header_safe(addr.name)
        room = _first_room(name, n)
        mailbox = [*_phrase(display, room), f"<{spec}>"] if display else [spec]
        if n < len(addresses) - 1:
            mailbox[-1] += ","
        pieces += mailbox
    return _fold(name, pieces)


def _param(name: str, value: str) -> str:
    """``; name="value"``, or RFC 2231 ``name*0*=utf-8''...`` for non-ASCII or long values."""
    if value.isascii() and len(value) <= 60 and value.isprintable():
        return f'; {name}="' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    encoded = "".join([_PCT_BYTE[b] for b in value.encode("utf-8")])
    if len(encoded) <= 60:
        return f"; {name}*=utf-8''{encoded}"
    out = []
    n = 0
    pos = 0
    while pos < len(encoded):
        end = min(pos + 60, len(encoded))
        while end < len(encoded) and "%" in encoded[end - 2 : end]:
            end -= 1  # never split a %XX escape
        prefix = "utf-8''" if n == 0 else ""
        out.append(f";\r\n {name}*{n}*={prefix}{encoded[pos:end]}")
        pos, n = end, n + 1
    return "".join(out)


def _crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


@dataclass(slots=True)
class _Part:
    """A MIME entity: leaf (headers + body) or multipart (subtype + children)."""

    headers: list[str]
    body: str = ""
    subtype: str = ""  # multipart subtype; "" for a leaf
    children: list[_Part] = field(default_factory=list)


def _is_7bit(text: str) -> bool:
    """Sendable as is: ASCII, no control characters but TAB, lines of at most 998.

    The control check deletes the control bytes and compares lengths: a C loop,
    ~5 us for a typical 6 KB body where a regex search took ~30 us.
    """
    if not text.isascii():
        return False
    data = text.encode("ascii")
    return len(data.translate(None, _CONTROL_BYTES)) == len(data) and (
        len(text) <= 998 or max(map(len, text.split("\n"))) <= 998
    )


def _text_part(text: str, subtype: str) -> _Part:
    text = _normal_text(text)
    if _is_7bit(text):
        cte, body = "7bit", _crlf(text)
    else:
        qp = binascii.b2a_qp(text.encode("utf-8"), quotetabs=False, istext=True, header=False)
        cte, body = "quoted-printable", _crlf(qp.decode("ascii"))
    return _Part(
        [f'Content-Type: text/{subtype}; charset="utf-8"', f"Content-Transfer-Encoding: {cte}"],
        body,
    )


def _base64_body(data: bytes) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return "\r\n".join([encoded[i : i + 76] for i in range(0, len(encoded), 76)]) + "\r\n"


def _attachment_part(att: Attachment, *, inline_cid: str = "") -> _Part:
    filename = header_safe(att.filename).replace("/", "_").replace("\\", "_") or "attachment"
    maintype, subtype = _split_type(att.content_type)
    if maintype == "message" and subtype == "rfc822":
        # RFC 2046 5.2.1: no base64 for message/rfc822. A 7-bit mail is attached as
        # a message; anything else travels as an opaque file.
        text = att.data.decode("ascii", "replace") if att.data.isascii() else ""
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        if text and _is_7bit(text):
            return _Part(
                [
                    "Content-Type: message/rfc822",
                    f"Content-Disposition: attachment{_param('filename', filename)}",
                ],
                _crlf(text if text.endswith("\n") else text + "\n"),
            )
        maintype, subtype = "application", "octet-stream"
    headers = [f"Content-Type: {maintype}/{subtype}", "Content-Transfer-Encoding: base64"]
    if inline_cid:
        headers.append(f"Content-ID: <{inline_cid}>")
        headers.append(f"Content-Disposition: inline{_param('filename', filename)}")
    else:
        headers.append(f"Content-Disposition: attachment{_param('filename', filename)}")
    return _Part(headers, _base64_body(att.data))


def _body_tree(mail: OutboundMail) -> _Part:
    """text; or alternative(text, html); html becomes related(html, inline images);
    with attachments all of it goes first in a mixed."""
    body = _text_part(mail.text, "plain")
    attachments: list[_Part] = []
    related: list[_Part] = []
    for att in mail.attachments:
        cid = clean_msgid(att.content_id) if att.content_id else ""
        is_message = _split_type(att.content_type) == ("message", "rfc822")
        if att.inline and cid and mail.html and not is_message:
            related.append(_attachment_part(att, inline_cid=cid))
        else:
            attachments.append(_attachment_part(att))
    if mail.html:
        html = _text_part(mail.html, "html")
        if related:
            html = _Part([], subtype="related", children=[html, *related])
        body = _Part([], subtype="alternative", children=[body, html])
    if attachments:
        body = _Part([], subtype="mixed", children=[body, *attachments])
    return body


def _serialize(part: _Part, boundary_seed: str, out: list[str], depth: int = 0) -> None:
    """Append ``part`` (headers, blank line, body) to ``out``."""
    if not part.subtype:
        out.extend(h + "\r\n" for h in part.headers)
        out.append("\r\n")
        out.append(part.body)
        return
    children: list[list[str]] = []
    for child in part.children:
        chunk: list[str] = []
        _serialize(child, boundary_seed, chunk, depth + 1)
        children.append(chunk)
    content = "".join("".join(c) for c in children)
    boundary = f"=_ibx{depth}_{boundary_seed}"
    for n in range(1, 100):  # "=_" cannot occur in QP or base64; a 7-bit body may hold it
        if f"--{boundary}" not in content:
            break
        boundary = f"=_ibx{depth}_{boundary_seed}_{n}"
    else:  # pragma: no cover - needs a body quoting 99 boundaries
        raise ComposeError("could not find a MIME boundary")
    out.extend(h + "\r\n" for h in part.headers)
    out.append(f'Content-Type: multipart/{part.subtype};\r\n boundary="{boundary}"\r\n\r\n')
    # the CRLF before each delimiter belongs to the delimiter (RFC 2046 5.1.1), not
    # to the body above it, so a body ending in a line break needs one more
    for n, chunk in enumerate(children):
        out.append(f"--{boundary}\r\n" if n == 0 else f"\r\n--{boundary}\r\n")
        out.extend(chunk)
    out.append(f"\r\n--{boundary}--\r\n")


def _normal_text(text: str) -> str:
    """Line ends normalised and a final newline, as every MIME text part wants."""
    if "\r" in text:  # rare: templates and parsed text already use LF
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text if text.endswith("\n") else text + "\n"


def _split_type(content_type: str) -> tuple[str, str]:
    maintype, _, subtype = header_safe(content_type).lower().partition("/")
    if not _MIME_TYPE_RE.fullmatch(maintype) or not _MIME_TYPE_RE.fullmatch(subtype):
        return "application", "octet-stream"
    return maintype, subtype


def _automatic_headers(auto_submitted: str) -> list[str]:
    """Headers that keep other machines from answering our machine mail.

    - ``Auto-Submitted`` (RFC 3834) is the standard marker every modern responder
      checks (Sieve vacation, Exchange, Gmail, inboxd itself).
    - ``X-Auto-Response-Suppress`` is what Exchange/Outlook honour instead: it keeps
      out-of-office replies away from acknowledgements and, importantly, away from
      agent notifications (an agent's OOF answering support+TOKEN would otherwise
      look like an agent reply). NDRs stay allowed: bounces are wanted.
    - ``Precedence: bulk`` is non-standard, but vacation(1)-style responders and
      many procmail/Sieve recipes check only that. RT and OTRS set it on their
      automatic mail for the same reason. It is never set on a relayed agent
      reply, where a "bulk" mark could hurt deliverability of a real answer.
    """
    if not auto_submitted:
        return []
    return [
        f"Auto-Submitted: {auto_submitted}",
        f"X-Auto-Response-Suppress: {AUTO_RESPONSE_SUPPRESS}",
        "Precedence: bulk",
    ]


def render_message(mail: OutboundMail, *, date: datetime) -> bytes:
    """RFC 5322 bytes with CRLF line ends and 7-bit content, ready for SMTP DATA;
    UTF-8 only in an address with a non-ASCII local part (then send with SMTPUTF8)."""
    message_id = clean_msgid(mail.message_id)
    tree = _body_tree(mail)
    tree.headers[:0] = message_headers(mail, date=date)
    out: list[str] = []
    seed = hashlib.sha256(message_id.encode("ascii")).hexdigest()[:24]
    _serialize(tree, seed, out)
    return "".join(out).encode("utf-8")  # ASCII unless an address needs SMTPUTF8


def check_addressing(mail: OutboundMail, *, date: datetime) -> str:
    """Raise ComposeError for whatever in ``mail``'s addressing ``render_message``
    would refuse; returns the clean Message-ID. A mail queued to be written later
    is checked with this at queue time, where the flow can still say so on the
    ticket; the body (templates, attachments) is the drain's."""
    if not mail.to:
        raise ComposeError("a mail needs at least one To address")
    message_id = clean_msgid(mail.message_id)
    if not message_id or message_id != mail.message_id.strip():
        raise ComposeError(f"invalid Message-ID {mail.message_id!r}")
    if date.tzinfo is None:
        raise ComposeError("date must be timezone-aware")
    for addr in (mail.from_addr, *mail.to, *mail.cc):
        _addr_spec(addr)
    if mail.reply_to is not None:
        _addr_spec(mail.reply_to)
    for name, _ in mail.extra_headers:
        if not _FIELD_NAME_RE.match(name) or name.lower() in _RESERVED:
            raise ComposeError(f"extra header {name!r} is not allowed")
    return message_id


def message_headers(mail: OutboundMail, *, date: datetime) -> list[str]:
    """The header lines of ``render_message`` (no body headers)."""
    message_id = check_addressing(mail, date=date)

    headers = [_address_header("From", (mail.from_addr,)), _address_header("To", mail.to)]
    if mail.cc:
        headers.append(_address_header("Cc", mail.cc))
    if mail.reply_to is not None:
        headers.append(_address_header("Reply-To", (mail.reply_to,)))
    headers.append(_unstructured("Subject", header_safe(mail.subject)))
    headers.append(f"Date: {format_datetime(date.astimezone(UTC))}")
    headers.append(f"Message-ID: <{message_id}>")
    parent = clean_msgid(mail.in_reply_to)
    if parent:
        headers.append(f"In-Reply-To: <{parent}>")
    references = build_references(mail.references, parent)
    if references:
        headers.append(_fold("References", [f"<{r}>" for r in references]))
    headers += _automatic_headers(mail.effective_auto_submitted)
    topic = header_safe(mail.thread_topic)
    if topic:
        headers.append(_unstructured("Thread-Topic", topic))
    index = thread_index_for(mail, date)
    if index:
        headers.append(f"Thread-Index: {index}")
    for name, value in mail.extra_headers:
        headers.append(_unstructured(name, header_safe(value)))
    headers.append("MIME-Version: 1.0")
    return headers
