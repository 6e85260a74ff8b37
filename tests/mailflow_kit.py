"""A helpdesk in a test: SQLite file, real pipeline, the outbound flows, an outbox drain.

``Desk`` wires what the daemon wires (pipeline + reactors + interceptors + drain)
so flow tests feed raw mail in and look at what went out. ``mail()`` builds raw
customer/agent mails.
"""

from __future__ import annotations

import email
import functools
import textwrap
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from support.clock import Clock

from inboxd.config import SmtpConfig
from inboxd.core.inbound import Outcome, Source
from inboxd.db import outbox_queries as q
from inboxd.db import tickets
from inboxd.db.engine import make_engine, upgrade
from inboxd.delivery.outbox import OutboxDrain
from inboxd.delivery.smtp_send import SmtpSender
from inboxd.flows.agent_reply import AgentReplyInterceptor
from inboxd.flows.bounces import BounceInterceptor, DeliveryAlerts
from inboxd.flows.csat import SurveyInterceptor, Surveys
from inboxd.flows.mailflow import Flow, FlowConfig
from inboxd.flows.notify import AckNotifyReactor
from inboxd.flows.queued_mail import QueuedMailWriter
from inboxd.flows.render import TemplateRenderer
from inboxd.flows.sent_folder import SentFolderInterceptor
from inboxd.ingest.pipeline import IngestContext, Pipeline
from inboxd.rulesdir import RuleStore

SECRET = b"test-secret-for-flows"
SUPPORT = "support@help.example"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

RULES = textwrap.dedent(
    """
    version: 1
    teams:
      frontline:
        assignment: none
        agents:
          - {name: alice, email: alice@help.example, display_name: Alice Agent}
          - {name: bob, email: bob@help.example, display_name: Bob Agent}
      billing:
        agents:
          - {name: dana, email: dana@help.example, display_name: Dana Billing}
    rules:
      - name: default
        then: {team: frontline}
    """
)


@dataclass
class Desk:
    engine: Engine
    pipeline: Pipeline
    flow: Flow
    clock: Clock
    smtp_port: int = 0
    sent_folders: dict[str, str] = field(default_factory=dict)

    def deliver(self, raw: bytes, *, mailbox: str = "support", folder: str = "") -> Outcome:
        source = Source("imap", mailbox, folder or "INBOX", None)
        return self.pipeline.ingest(raw, source)

    def drain(self, **kw: Any) -> OutboxDrain:
        cfg = SmtpConfig(host="127.0.0.1", port=self.smtp_port, timeout=5.0)
        alerts = DeliveryAlerts(self.flow)
        return OutboxDrain(
            self.engine,
            lambda: SmtpSender(cfg, None),
            retry_for=cfg.retry_for,
            clock=self.clock,
            rng=lambda: 0.5,
            on_failed=alerts.on_failed,
            write=self.writer,
            **kw,
        )

    def outbox(self, kind: str | None = None) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = q.list_rows(conn, limit=1000)
        rows.reverse()
        return [r for r in rows if kind is None or r["kind"] == kind]

    def outbox_mails(self, kind: str | None = None) -> list[EmailMessage]:
        from sqlalchemy import select

        from inboxd.db.tables import Outbox

        table = Outbox.__table__  # type: ignore[attr-defined]
        stmt = select(table.c.id, table.c.kind).order_by(table.c.id)
        with self.engine.connect() as conn:
            ids = [r.id for r in conn.execute(stmt) if kind is None or r.kind == kind]
        return [parse(self.written(i)) for i in ids]

    @functools.cached_property
    def writer(self) -> QueuedMailWriter:
        """The drain's writer, on one read-only engine for the desk's life (each
        ``written`` row no longer makes an engine and its pool)."""
        url = self.engine.url.render_as_string(hide_password=False)
        return QueuedMailWriter(make_engine(url, read_only=True), self.flow.config.renderer)

    def written(self, row_id: int) -> bytes:
        """Outbox row ``row_id`` as the drain would send it (its intent rendered)."""
        with self.engine.connect() as conn:
            row = q.get(conn, row_id)
        assert row is not None
        return self.writer(row)

    def alice_answers(self, when: datetime, ticket: int, body: str, n: int) -> None:
        """Alice replies at ``when`` to her latest notification about ``ticket``."""
        self.clock.now = when
        notes = [
            m
            for m in self.outbox_mails("notify")
            if "alice@" in str(m["To"]) and f"[#{ticket}]" in str(m["Subject"])
        ]
        out = self.deliver(reply_to_notification(notes[-1], body=body, msgid=f"a{n}@help.example"))
        assert out.ticket_id == ticket and out.matched_by == "token", out

    def ticket(self, ticket_id: int) -> dict[str, Any]:
        """The ticket's fields by name (tags as a list), for short assertions."""
        with self.engine.connect() as conn:
            found = tickets.load(conn, ticket_id)
        assert found is not None
        fields = asdict(found)
        fields["tags"] = list(found.tags)
        return fields

    def events(self, ticket_id: int) -> list[tuple[str, str, dict[str, Any]]]:
        from sqlalchemy import select

        from inboxd.db.tables import Event

        table = Event.__table__  # type: ignore[attr-defined]
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(table.c.actor, table.c.kind, table.c.data)
                .where(table.c.ticket_id == ticket_id)
                .order_by(table.c.id)
            ).all()
        return [(r.actor, r.kind, dict(r.data)) for r in rows]

    def event_kinds(self, ticket_id: int) -> list[str]:
        return [kind for _, kind, _ in self.events(ticket_id)]


def make_desk(
    tmp_path: Path,
    *,
    rules: str = RULES,
    smtp_port: int = 0,
    acknowledge: bool = True,
    sent_folders: dict[str, str] | None = None,
    templates: Path = TEMPLATES,
    url: str = "",
    reopen_on_bad: bool = False,
) -> Desk:
    """``url``: the database (a fresh SQLite file in ``tmp_path`` when empty)."""
    engine = make_engine(url or f"sqlite:///{tmp_path / 'desk.db'}")
    upgrade(engine)
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir(exist_ok=True)
    (rules_dir / "00-test.yaml").write_text(rules)
    store = RuleStore()
    errors = store.reload(rules_dir)
    assert errors == [], errors
    renderer = TemplateRenderer(templates)
    clock = Clock(T0)
    flow = Flow(
        FlowConfig(
            secret=SECRET,
            domain="help.example",
            mailbox_addresses={"support": SUPPORT},
            renderer=lambda: renderer,
            rules=lambda: store.current,
            helpdesk_name="Example Support",
            acknowledge=acknowledge,
            sent_folders=sent_folders or {},
        )
    )
    ctx = IngestContext(
        secret=SECRET,
        support_addresses=frozenset({SUPPORT}),
        mailbox_addresses={"support": SUPPORT},
        rules=lambda: store.current,
        clock=clock,
        reactors=(AckNotifyReactor(flow),),
        interceptors=(
            SentFolderInterceptor(flow),
            BounceInterceptor(flow),
            SurveyInterceptor(Surveys(flow, reopen_on_bad=reopen_on_bad)),
            AgentReplyInterceptor(flow),
        ),
    )
    return Desk(engine, Pipeline(engine, ctx), flow, clock, smtp_port, sent_folders or {})


def mail(
    *,
    sender: str = "Carol Customer <carol@customer.example>",
    to: str = SUPPORT,
    cc: str = "",
    subject: str = "Printer broken",
    body: str = "Hello,\n\nthe printer on floor 3 shows E42.\n\nCarol\n",
    msgid: str = "c1@customer.example",
    in_reply_to: str = "",
    references: Sequence[str] = (),
    headers: Sequence[tuple[str, str]] = (),
    date: str = "Mon, 02 Mar 2026 09:00:00 +0000",
) -> bytes:
    lines = [
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {subject}",
        f"Message-ID: <{msgid}>",
        f"Date: {date}",
    ]
    if cc:
        lines.append(f"Cc: {cc}")
    if in_reply_to:
        lines.append(f"In-Reply-To: <{in_reply_to}>")
    if references:
        lines.append("References: " + " ".join(f"<{r}>" for r in references))
    lines += [f"{k}: {v}" for k, v in headers]
    lines += ["MIME-Version: 1.0", 'Content-Type: text/plain; charset="utf-8"', ""]
    return ("\r\n".join(lines) + "\r\n" + body.replace("\n", "\r\n")).encode()


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def body_text(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


def reply_to_notification(
    notification: EmailMessage,
    *,
    sender: str = "Alice Agent <alice@help.example>",
    body: str,
    msgid: str = "a1@help.example",
    quote: bool = True,
) -> bytes:
    """What an agent's mail client sends when replying to a notification."""
    reply_to = str(notification["Reply-To"] or notification["From"])
    addr = email.utils.parseaddr(reply_to)[1]
    refs = [*str(notification["References"] or "").split(), str(notification["Message-ID"])]
    quoted = ""
    if quote:
        quoted = "\nOn Mon, Support wrote:\n" + "\n".join(
            "> " + line for line in body_text(notification).splitlines()
        )
    return mail(
        sender=sender,
        to=addr,
        subject="Re: " + str(notification["Subject"]),
        body=body + "\n" + quoted + "\n",
        msgid=msgid,
        in_reply_to=str(notification["Message-ID"]).strip("<>"),
        references=[r.strip("<>") for r in refs],
    )


def dsn(
    *,
    original_id: str,
    failed: str = "carol@customer.example",
    to: str = SUPPORT,
    status: str = "5.1.1",
    action: str = "failed",
    msgid: str = "dsn1@mx.customer.example",
) -> bytes:
    """An RFC 3464 delivery status notification about ``original_id``."""
    boundary = "dsn-boundary-1"
    diagnostic = "smtp; 550 5.1.1 user unknown" if status.startswith("5") else "smtp; 451 later"
    text = "\r\n".join(
        [
            "From: Mail Delivery System <MAILER-DAEMON@mx.customer.example>",
            f"To: {to}",
            "Subject: Undelivered Mail Returned to Sender",
            f"Message-ID: <{msgid}>",
            "Date: Mon, 02 Mar 2026 09:05:00 +0000",
            "Auto-Submitted: auto-replied",
            "MIME-Version: 1.0",
            f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
            "",
            f"--{boundary}",
            "Content-Type: text/plain",
            "",
            "This is the mail system at host mx.customer.example.",
            "",
            "I'm sorry to have to inform you that your message could not",
            "be delivered to one or more recipients.",
            "",
            f"--{boundary}",
            "Content-Type: message/delivery-status",
            "",
            "Reporting-MTA: dns; mx.customer.example",
            "",
            f"Final-Recipient: rfc822; {failed}",
            f"Action: {action}",
            f"Status: {status}",
            f"Diagnostic-Code: {diagnostic}",
            "",
            f"--{boundary}",
            "Content-Type: text/rfc822-headers",
            "",
            f"From: Support <{SUPPORT}>",
            f"To: {failed}",
            "Subject: Re: [#1] Printer broken",
            f"Message-ID: <{original_id}>",
            "",
            f"--{boundary}--",
            "",
        ]
    )
    return text.encode()
