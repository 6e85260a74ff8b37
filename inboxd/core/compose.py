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
"""

from __future__ import annotations

import base64
import enum
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage, MIMEPart
from email.parser import BytesParser
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


AUTO_REPLIED = "auto-replied"
AUTO_GENERATED = "auto-generated"

# RFC 3834 section 5: "auto-replied" for mail sent in direct response to a message,
# "auto-generated" for mail triggered by something else (a timer, a state change).
_DEFAULT_AUTO_SUBMITTED: dict[OutboundKind, str] = {
    OutboundKind.ACK: AUTO_REPLIED,
    OutboundKind.NOTIFY: AUTO_GENERATED,
    OutboundKind.REPLY: "",
    OutboundKind.NOTE_ACK: AUTO_REPLIED,
    OutboundKind.COMMAND_RESULT: AUTO_REPLIED,
    OutboundKind.SLA_REMINDER: AUTO_GENERATED,
    OutboundKind.SLA_BREACH: AUTO_GENERATED,
    OutboundKind.BOUNCE_ALERT: AUTO_GENERATED,
}

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

_POLICY = policy.SMTP.clone(cte_type="7bit")
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
        """Envelope recipients: To then Cc, each once."""
        return tuple(dict.fromkeys(a.email for a in self.to + self.cc))


def auto_submitted_for(kind: OutboundKind) -> str:
    return _DEFAULT_AUTO_SUBMITTED[OutboundKind(kind)]


# --- header hygiene ------------------------------------------------------------------------


def header_safe(value: str) -> str:
    """``value`` with CR, LF and other control characters replaced by a space.

    TAB survives (it is folding white space); runs of white space collapse, so a
    header never ends up folded where we did not fold it.
    """
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


def _header_address(addr: Address) -> HeaderAddress:
    email = header_safe(addr.email).replace(" ", "")
    if not _EMAIL_RE.match(email):
        raise ComposeError(f"not a usable address: {email!r}")
    local, _, domain = email.rpartition("@")
    if not local.isascii():
        raise ComposeError(f"non-ASCII local part needs SMTPUTF8: {email!r}")
    try:
        domain = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError as exc:
        raise ComposeError(f"bad domain in {email!r}") from exc
    return HeaderAddress(display_name=header_safe(addr.name), username=local, domain=domain)


# --- subject tag ---------------------------------------------------------------------------


def subject_with_tag(subject: str, ticket_id: int, tag_format: str = "[#{id}]") -> str:
    """``subject`` carrying the ticket tag exactly once, after at most one prefix.

    "Re: [#1] Re: [#1] Printer" -> "Re: [#1] Printer"; "Printer [#1]" ->
    "[#1] Printer"; "AW: Printer" -> "Re: [#1] Printer". Reply and forward
    prefixes in any of the common languages collapse into one "Re:" or "Fwd:"
    (the first one seen); tags of OTHER tickets are kept.
    """
    tag = tag_format.replace("{id}", str(ticket_id))
    # not a tag when digits continue it: "#1" must not match inside "#12"
    tag_re = re.compile(r"(?<!\d)" + re.escape(tag) + r"(?!\d)", re.IGNORECASE)
    rest = header_safe(subject)
    prefix = ""
    while True:
        stripped = rest.lstrip()
        own = tag_re.match(stripped)
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
    rest = tag_re.sub(" ", rest)
    rest = " ".join(rest.split())
    return f"{prefix}{tag} {rest}".rstrip()


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


def _body_cte(text: str) -> str:
    if text.isascii() and all(len(line) <= 998 for line in text.splitlines()):
        return "7bit"
    return "quoted-printable"


def _normal_text(text: str) -> str:
    """Line ends normalised and a final newline, as every MIME text part wants."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text if text.endswith("\n") else text + "\n"


def _split_type(content_type: str) -> tuple[str, str]:
    maintype, _, subtype = header_safe(content_type).lower().partition("/")
    if not re.fullmatch(r"[a-z0-9][a-z0-9!#$&^_.+-]*", maintype) or not re.fullmatch(
        r"[a-z0-9][a-z0-9!#$&^_.+-]*", subtype
    ):
        return "application", "octet-stream"
    return maintype, subtype


def _attach(msg: EmailMessage, html_part: MIMEPart | None, att: Attachment) -> None:
    filename = header_safe(att.filename).replace("/", "_").replace("\\", "_") or "attachment"
    maintype, subtype = _split_type(att.content_type)
    cid = clean_msgid(att.content_id) if att.content_id else ""
    if maintype == "message" and subtype == "rfc822":
        # RFC 2046 5.2.1: no base64 for message/rfc822. A 7-bit mail is attached as
        # a message; anything else travels as an opaque file.
        if att.data.isascii():
            inner = BytesParser(policy=_POLICY).parsebytes(att.data)
            msg.add_attachment(inner, filename=filename)
            return
        maintype, subtype = "application", "octet-stream"
    if att.inline and cid and html_part is not None:
        html_part.add_related(
            att.data,
            maintype=maintype,
            subtype=subtype,
            cid=f"<{cid}>",
            filename=filename,
            disposition="inline",
        )
        return
    msg.add_attachment(att.data, maintype=maintype, subtype=subtype, filename=filename)


def _automatic_headers(msg: EmailMessage, auto_submitted: str) -> None:
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
        return
    msg["Auto-Submitted"] = auto_submitted
    msg["X-Auto-Response-Suppress"] = AUTO_RESPONSE_SUPPRESS
    msg["Precedence"] = "bulk"


def build_message(mail: OutboundMail, *, date: datetime) -> EmailMessage:
    """The EmailMessage for ``mail``; ``render_message`` is this as bytes."""
    if not mail.to:
        raise ComposeError("a mail needs at least one To address")
    message_id = clean_msgid(mail.message_id)
    if not message_id or message_id != mail.message_id.strip():
        raise ComposeError(f"invalid Message-ID {mail.message_id!r}")
    if date.tzinfo is None:
        raise ComposeError("date must be timezone-aware")

    msg = EmailMessage(policy=_POLICY)
    msg["From"] = _header_address(mail.from_addr)
    msg["To"] = [_header_address(a) for a in mail.to]
    if mail.cc:
        msg["Cc"] = [_header_address(a) for a in mail.cc]
    if mail.reply_to is not None:
        msg["Reply-To"] = _header_address(mail.reply_to)
    msg["Subject"] = header_safe(mail.subject)
    msg["Date"] = format_datetime(date.astimezone(UTC))
    msg["Message-ID"] = f"<{message_id}>"
    parent = clean_msgid(mail.in_reply_to)
    if parent:
        msg["In-Reply-To"] = f"<{parent}>"
    references = build_references(mail.references, parent)
    if references:
        msg["References"] = " ".join(f"<{r}>" for r in references)
    _automatic_headers(msg, mail.effective_auto_submitted)
    topic = header_safe(mail.thread_topic)
    if topic:
        msg["Thread-Topic"] = topic
    index = thread_index_for(mail, date)
    if index:
        msg["Thread-Index"] = index
    for name, value in mail.extra_headers:
        if not _FIELD_NAME_RE.match(name) or name.lower() in _RESERVED:
            raise ComposeError(f"extra header {name!r} is not allowed")
        msg[name] = header_safe(value)

    text = _normal_text(mail.text)
    msg.set_content(text, charset="utf-8", cte=_body_cte(text))
    html_part: MIMEPart | None = None
    if mail.html:
        html = _normal_text(mail.html)
        msg.add_alternative(html, subtype="html", charset="utf-8", cte=_body_cte(html))
        html_part = msg.get_body(preferencelist=("html",))
    for att in mail.attachments:
        _attach(msg, html_part, att)
    return msg


def render_message(mail: OutboundMail, *, date: datetime) -> bytes:
    """RFC 5322 bytes with CRLF line ends, ready for SMTP DATA."""
    return build_message(mail, date=date).as_bytes(policy=_POLICY)
