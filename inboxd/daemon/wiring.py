"""Everything outbound, built from Settings, for the composition root to plug in.

``build_outbound`` returns the pipeline reactors and interceptors (in the order
they must run), the outbox drain and the reloadable template set. The daemon
adds them to its ``IngestContext`` (flows meet the pipeline's protocols with
the values of ``core.inbound``) and runs ``drain.run`` in a thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from inboxd.config import HelpdeskConfig, Settings
from inboxd.core.loops import HourlyCaps
from inboxd.core.rules import RuleSet
from inboxd.db.engine import make_engine
from inboxd.delivery.maildir_send import MaildirSender
from inboxd.delivery.outbox import OutboxDrain
from inboxd.delivery.smtp_send import SmtpSender
from inboxd.flows.agent_reply import AgentReplyInterceptor
from inboxd.flows.bounces import BounceInterceptor, DeliveryAlerts
from inboxd.flows.csat import SurveyInterceptor, Surveys
from inboxd.flows.mailflow import Flow, FlowConfig
from inboxd.flows.notify import AckNotifyReactor, CapAlert
from inboxd.flows.queued_mail import QueuedMailWriter
from inboxd.flows.render import TemplateRenderer
from inboxd.flows.sent_folder import SentFolderInterceptor


class TemplateStore:
    """The current template set; ``reload`` swaps only a set that checks clean.

    A renderer compiles each template once and never looks at the files again,
    so the set in use is what was on disk at start or at the last good reload
    (SIGHUP): ``check()`` compiles every template, which is why the first set is
    checked here too, its errors reported by ``reload`` and ``templates check``.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._current = TemplateRenderer(directory)
        # compile the whole set now, not on each template's first use; the caller logs
        self.start_errors = self._current.check()
        self._lock = threading.Lock()

    @property
    def current(self) -> TemplateRenderer:
        return self._current

    def reload(self) -> list[str]:
        with self._lock:
            candidate = TemplateRenderer(self.directory)
            errors = candidate.check()
            if not errors:
                self._current = candidate
            return errors


def hourly_caps(helpdesk: HelpdeskConfig) -> HourlyCaps:
    """The loop caps of ``[helpdesk]`` as ``core.loops`` takes them."""
    return HourlyCaps(
        ack_per_sender=helpdesk.ack_per_sender_per_hour,
        ack_per_domain=helpdesk.ack_per_domain_per_hour,
        ack_global=helpdesk.ack_per_hour,
        tickets_per_sender=helpdesk.tickets_per_sender_per_hour,
        tickets_per_domain=helpdesk.tickets_per_domain_per_hour,
    )


@dataclass(frozen=True)
class Outbound:
    flow: Flow
    templates: TemplateStore
    reactors: tuple[AckNotifyReactor, ...]
    interceptors: tuple[
        SentFolderInterceptor | BounceInterceptor | SurveyInterceptor | AgentReplyInterceptor, ...
    ]
    drain: OutboxDrain
    surveys: Surveys


def build_outbound(
    settings: Settings,
    *,
    engine: Engine,
    rules: Callable[[], RuleSet | None],
    secret: bytes,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    helpdesk_name: str = "Support",
    trusted_authserv_ids: tuple[str, ...] = (),
    caps: HourlyCaps | None = None,
    on_cap: CapAlert | None = None,
) -> Outbound:
    templates = TemplateStore(Path(settings.templates.dir))
    helpdesk = settings.helpdesk
    flow = Flow(
        FlowConfig(
            secret=secret,
            domain=helpdesk.domain,
            mailbox_addresses={box.name: box.address for box in settings.mailbox},
            renderer=lambda: templates.current,
            rules=rules,
            helpdesk_name=helpdesk_name,
            tag_format=helpdesk.subject_tag,
            acknowledge=helpdesk.acknowledge,
            ack_per_sender_per_hour=helpdesk.ack_per_sender_per_hour,
            sent_folders={b.name: b.sent_folder for b in settings.mailbox if b.sent_folder},
        )
    )
    smtp = settings.smtp
    password = smtp.read_password() if smtp.username else None
    drain = OutboxDrain(
        engine,
        (lambda: MaildirSender(smtp.path))
        if smtp.transport == "maildir"
        else (lambda: SmtpSender(smtp, password)),
        retry_for=smtp.retry_for,
        max_per_run=smtp.max_per_run,
        clock=clock,
        on_failed=DeliveryAlerts(flow).on_failed,
        # a snapshot reader: writing a mail never waits for an import's write lock
        write=QueuedMailWriter(
            make_engine(settings.database.url, read_only=True), lambda: templates.current
        ),
    )
    on_bad = settings.csat.on_bad
    surveys = Surveys(flow, reopen_on_bad="reopen" in on_bad, alert_lead="alert_lead" in on_bad)
    return Outbound(
        flow=flow,
        templates=templates,
        reactors=(AckNotifyReactor(flow, caps=caps or hourly_caps(helpdesk), on_cap=on_cap),),
        interceptors=(
            SentFolderInterceptor(flow),
            BounceInterceptor(flow),
            # before agent replies: answers to survey addresses are never anyone's command
            SurveyInterceptor(surveys),
            AgentReplyInterceptor(flow, trusted_authserv_ids=trusted_authserv_ids),
        ),
        drain=drain,
        surveys=surveys,
    )
