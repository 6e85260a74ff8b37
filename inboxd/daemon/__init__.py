"""Composition root: the only place that turns Settings into running parts.

``App`` wires engine, rules and pipeline (used by the CLI's one-shot commands
too); ``Daemon`` adds the long-running parts: one thread per mailbox folder,
the LMTP listener, rule hot reload (SIGHUP and file changes), signals and a
clean shutdown.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from inboxd.config import MailboxConfig, QuietHoursConfig, Settings
from inboxd.core.quiet_hours import QuietHours
from inboxd.core.rules import RuleSet
from inboxd.core.thread import tag_pattern
from inboxd.daemon.wiring import Outbound, build_outbound, hourly_caps
from inboxd.db.engine import ensure_schema, make_engine
from inboxd.flows.sla_notices import SlaStageActions
from inboxd.flows.slack_notices import CapAlerts, SlackRuleReactor, rules_error_notice
from inboxd.flows.slack_threads import LivingMessages
from inboxd.flows.spikes import TagArrivals
from inboxd.ingest.imap import MailboxFetcher
from inboxd.ingest.lease import MailboxLease
from inboxd.ingest.pipeline import IngestContext, Pipeline, Reactor
from inboxd.ingest.workers import IngestWorkers
from inboxd.rulesdir import RuleStore
from inboxd.sched.csat_surveys import SurveyJob
from inboxd.sched.digest import DigestJob
from inboxd.sched.outage import OutageJob
from inboxd.sched.quiet_summaries import QuietSummaries
from inboxd.sched.scheduler import Job, Scheduler
from inboxd.sched.sla_sweep import SlaSweep, recompute_changed
from inboxd.sched.slack_roots import RootSync
from inboxd.sched.spikes import SpikeJob
from inboxd.sdnotify import Notifier
from inboxd.signalpipe import SignalPipe

if TYPE_CHECKING:  # imported where used: one-shot commands need neither (0.4 s of start-up)
    from inboxd.db.status import RulesLoad
    from inboxd.delivery.slack import SlackDrain
    from inboxd.delivery.socket_mode import SocketModeListener
    from inboxd.ingest.lmtp import InboundController
    from inboxd.metrics import MailboxReport, MetricsServer

log = logging.getLogger("inboxd.daemon")


def utcnow() -> datetime:
    return datetime.now(UTC)


def quiet_hours(config: QuietHoursConfig) -> QuietHours | None:
    """``[slack.quiet_hours]`` as ``core.quiet_hours`` takes it; None when no kind waits."""
    if not config.kinds:
        return None
    return QuietHours(frozenset(config.kinds), config.calendar, dict(config.teams))


def _check_quiet_calendars(quiet: QuietHours, current: RuleSet | None) -> None:
    """Say so at start when a quiet-hours calendar is not in the rule files: the
    alerts it would hold go at once."""
    named = {quiet.calendar, *quiet.teams.values()} - {""}
    missing = sorted(named - set(current.calendars)) if current is not None else []
    if missing:
        log.warning(
            "slack.quiet_hours: no calendar %s in the rule files; those alerts go at once",
            ", ".join(missing),
        )


# what inboxd creates (the SQLite file and its WAL, maildirs) holds customer mail:
# the owner's only, also when started from a shell (umask 022: world-readable)
PRIVATE_UMASK = 0o077


def private_files() -> None:
    """Files and directories created from now on are the owner's only; a stricter
    umask inherited stays (the systemd unit's 0027 becomes 0077)."""
    inherited = os.umask(PRIVATE_UMASK)
    os.umask(inherited | PRIVATE_UMASK)


def warn_without_agents(current: RuleSet | None) -> bool:
    """Say loudly at start when the rules list no agents (an empty rules directory,
    a checkout under way): nobody is notified, and agents' answers to notifications
    sent before are kept as notes and answered with the reason. The daemon still
    starts, so mail keeps being taken in; a reload refuses to drop agents later."""
    if current is None or current.agents:
        return False
    log.error(
        "rules: no agents in %d rule files: nobody is notified and agents' answers are "
        "kept as notes until the rules list them",
        len(current.source_files),
    )
    return True


def _from_unix(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


@dataclass
class App:
    settings: Settings
    engine: Engine
    rules: RuleStore
    pipeline: Pipeline
    secret: bytes
    outbound: Outbound
    clock: Callable[[], datetime] = field(default=utcnow)
    slack: SlackDrain | None = None  # None: Slack not configured, `slack:` actions ignored
    # processes that fetch and parse big backlogs; shared by all mailboxes
    workers: IngestWorkers = field(default_factory=lambda: IngestWorkers(0))
    sla: SlaSweep | None = None  # the SLA sweep the scheduler runs
    living: LivingMessages = field(default_factory=LivingMessages)  # Slack roots and threads
    roots: RootSync | None = None  # keeps the living Slack roots up to date (Slack on)
    socket: SocketModeListener | None = None  # Slack buttons (Socket Mode configured)
    surveys: SurveyJob | None = None  # satisfaction surveys ([csat] enabled)
    digests: DigestJob | None = None  # the weekly digest ([digest] enabled)
    spikes: SpikeJob | None = None  # spike alerts per tag (Slack on)
    outage: OutageJob | None = None  # one alert per unreachable mailbox (Slack and ops_channel)
    summaries: QuietSummaries | None = None  # quiet-hours summaries ([slack.quiet_hours])

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
        create_schema: bool = True,
    ) -> App:
        engine = make_engine(settings.database.url)
        ensure_schema(engine, create_if_empty=create_schema)
        rules = RuleStore(templates=Path(settings.templates.dir))
        errors = rules.reload(Path(settings.rules.dir))
        for error in errors:
            log.error("rules: %s", error)
        secret = settings.helpdesk.read_secret()
        slack = None
        if settings.slack.webhook:  # the simpler set-up: posts only
            from inboxd.delivery.slack import SlackDrain
            from inboxd.delivery.slack_webhook import WebhookDeliverer, make_webhook_client

            hook = make_webhook_client(settings.slack)
            if hook is not None:
                slack = SlackDrain(
                    engine,
                    retry_for=settings.slack.retry_for,
                    deliverer=WebhookDeliverer(lambda: hook),
                    clock=clock,
                )
        elif settings.slack.token_env or settings.slack.token_file:
            from inboxd.delivery.slack import SlackDrain, make_slack_client

            client = make_slack_client(settings.slack)
            if client is not None:
                retry_for = settings.slack.retry_for
                slack = SlackDrain(engine, lambda: client, retry_for=retry_for, clock=clock)
        ops = settings.slack.ops_channel
        on_cap = CapAlerts(ops) if slack is not None and ops else None
        caps = hourly_caps(settings.helpdesk)
        outbound = build_outbound(
            settings,
            engine=engine,
            rules=lambda: rules.current,
            secret=secret,
            clock=clock,
            helpdesk_name=settings.helpdesk.name,
            trusted_authserv_ids=tuple(settings.helpdesk.trusted_authserv_ids),
            caps=caps,
            on_cap=on_cap,
        )
        for problem in outbound.templates.start_errors:
            log.error("templates: %s", problem)
        reactors: tuple[Reactor, ...] = outbound.reactors
        on_commit: tuple[Callable[[], None], ...] = (outbound.drain.wake,)
        tag_format = settings.helpdesk.subject_tag
        living = LivingMessages(
            tag_format=tag_format,
            buttons=settings.slack.interactive,
            quiet=quiet_hours(settings.slack.quiet_hours),
            threads=not settings.slack.webhook,
        )
        roots = spikes = outage = summaries = None
        if slack is not None:
            reactors += (SlackRuleReactor(tag_format=tag_format, living=living), TagArrivals())
            on_commit += (slack.wake,)
            if not settings.slack.webhook:  # a webhook cannot update a message
                roots = RootSync(
                    engine, lambda: rules.current, living.refresh, clock=clock, on_queued=slack.wake
                )
            if living.quiet is not None:
                summaries = QuietSummaries(engine, clock=clock, on_queued=slack.wake)
                _check_quiet_calendars(living.quiet, rules.current)
            spikes = SpikeJob(
                engine,
                lambda: rules.current,
                channel=ops or "",
                clock=clock,
                on_queued=slack.wake,
                grouped=not settings.slack.webhook,
            )
            if ops and any(box.uses_imap for box in settings.mailbox):
                from inboxd.metrics import HEALTH

                outage = OutageJob(
                    engine,
                    HEALTH.outages,
                    channel=ops,
                    after=timedelta(minutes=settings.slack.outage_after),
                    clock=clock,
                    on_queued=slack.wake,
                )
        socket = None
        if slack is not None and settings.slack.interactive and not settings.slack.webhook:
            from inboxd.delivery.slack import make_slack_client
            from inboxd.delivery.socket_mode import SocketModeListener, read_app_token
            from inboxd.flows.slack_buttons import ButtonHandler

            app_token, web = read_app_token(settings.slack), make_slack_client(settings.slack)
            if app_token is not None and web is not None:
                buttons = ButtonHandler(
                    engine, lambda: rules.current, living, clock=clock, on_change=slack.wake
                )
                socket = SocketModeListener(app_token, web, buttons)
        ctx = IngestContext(
            secret=secret,
            support_addresses=settings.support_addresses,
            mailbox_addresses={box.name: box.address for box in settings.mailbox},
            rules=lambda: rules.current,
            clock=clock,
            reopen_window=timedelta(days=settings.helpdesk.reopen_window_days),
            tag_re=tag_pattern(settings.helpdesk.subject_tag),
            max_bytes=settings.lmtp.max_message_size,
            reactors=reactors,
            interceptors=outbound.interceptors,
            on_commit=on_commit,
            caps=caps,
            on_cap=on_cap,
        )
        pipeline = Pipeline(engine, ctx)
        workers = IngestWorkers(settings.ingest.workers)
        actions = SlaStageActions(
            outbound.flow,
            tag_format=tag_format,
            living=living,
            breach_mention=settings.slack.breach_mention,
            team_mentions=settings.slack.breach_mentions,
        )
        sweep = SlaSweep(engine, lambda: rules.current, actions, clock=clock)
        surveys = None
        if settings.csat.enabled:
            delay = timedelta(seconds=settings.csat.delay)
            sender = outbound.surveys
            surveys = SurveyJob(engine, lambda: rules.current, sender, delay=delay, clock=clock)
        digests = None
        if settings.digest.enabled:
            from inboxd.flows.digest import DigestMail

            mailer = DigestMail(outbound.flow, cc=settings.digest.cc)
            digests = DigestJob(engine, lambda: rules.current, mailer, settings.digest, clock=clock)
        return cls(
            settings,
            engine,
            rules,
            pipeline,
            secret,
            outbound,
            clock,
            slack=slack,
            workers=workers,
            sla=sweep,
            living=living,
            roots=roots,
            socket=socket,
            surveys=surveys,
            digests=digests,
            spikes=spikes,
            outage=outage,
            summaries=summaries,
        )

    def fetcher(self, box: MailboxConfig, *, leased: bool = False) -> MailboxFetcher:
        """``leased``: the daemon's fetcher, which fetches only while it holds the
        mailbox's lease (several daemons on one database); ``sync --once`` takes none."""
        lease = None
        if leased:
            seconds = self.settings.ingest.lease_seconds
            lease = MailboxLease(self.engine, box.name, seconds=seconds, clock=self.clock)
        return MailboxFetcher(
            box,
            self.pipeline,
            password=box.read_password(),
            workers=self.workers,
            max_bytes=self.pipeline.ctx.max_bytes,
            lease=lease,
        )

    def sync_once(self) -> dict[str, int]:
        """Fetch and store everything pending in every mailbox; returns counts per mailbox."""
        counts: dict[str, int] = {}
        for box in self.settings.mailbox:
            if not box.uses_imap:
                continue
            result = self.fetcher(box).sync_once()
            counts[box.name] = result.fetched
        self.persist_health(f"{socket.gethostname()}:{os.getpid()} sync --once", {})
        return counts

    def persist_health(self, reported_by: str, written: dict[str, MailboxReport]) -> None:
        """Write what this process's fetchers reported (``HEALTH``) for ``inboxd status``;
        only mailboxes whose report changed since ``written`` (updated in place)."""
        from inboxd.db import status
        from inboxd.metrics import HEALTH

        changed = {m: r for m, r in HEALTH.snapshot().items() if written.get(m) != r}
        if not changed:
            return
        with self.engine.begin() as conn:
            for mailbox, report in changed.items():
                status.save_mailbox(
                    conn,
                    mailbox,
                    connected=report.connected,
                    last_sync_at=_from_unix(report.last_sync),
                    last_error=report.last_error,
                    last_error_at=_from_unix(report.last_error_at),
                    reported_by=reported_by,
                    now=self.clock(),
                )
        written.update(changed)

    def close(self) -> None:
        """Stop the ingest workers and close database connections."""
        self.workers.close()
        self.engine.dispose()


class Daemon:
    def __init__(self, app: App, notifier: Notifier | None = None) -> None:
        self.app = app
        self.stop = threading.Event()
        self.notifier = notifier or Notifier.from_env()
        self.threads: list[threading.Thread] = []
        self.controller: InboundController | None = None
        self.scheduler: Scheduler | None = None
        self.metrics: MetricsServer | None = None
        self._reload_lock = threading.Lock()
        self.ident = f"{socket.gethostname()}:{os.getpid()}"
        self._status_id: int | None = None  # this daemon's row for ``inboxd status``
        self._health_written: dict[str, MailboxReport] = {}

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        settings = self.app.settings
        # first: /healthz answers while the rest starts, and /readyz says what is not up
        # yet (a scrape right after the first mail was stored found no endpoint)
        self._start_metrics()
        if settings.lmtp.enabled:
            from inboxd.ingest.lmtp import InboundController, InboundHandler, quarantine_to

            handler = InboundHandler(
                {box.address: box.name for box in settings.mailbox},
                self.app.pipeline.ingest,
                lmtp=settings.lmtp.protocol == "lmtp",
                quarantine=quarantine_to(self.app.engine, self.app.clock),
            )
            host, port = settings.lmtp.host_port
            self.controller = InboundController(handler, host, port, settings.lmtp.max_message_size)
            self.controller.start()
            log.info("listening protocol=%s addr=%s:%d", settings.lmtp.protocol, host, port)
        for box in settings.mailbox:
            if box.uses_imap:
                self._spawn(f"imap-{box.name}", self.app.fetcher(box, leased=True).run)
        self._spawn("rules-watch", self._watch_rules)
        self._spawn("outbox", self.app.outbound.drain.run)
        if self.app.slack is not None:
            self._spawn("slack", self.app.slack.run)
        if self.app.socket is not None:
            self._spawn("slack-socket", self.app.socket.run)
        if self.app.rules.last_errors:
            self._alert_ops(list(self.app.rules.last_errors), "start")
        warn_without_agents(self.app.rules.current)
        self._register()
        self.scheduler = Scheduler(self._jobs())
        self.scheduler.start()
        self.notifier.ready(f"{len(settings.mailbox)} mailboxes")

    def _start_metrics(self) -> None:
        """/metrics, /healthz and /readyz, when ``[metrics] listen`` names an address."""
        config = self.app.settings.metrics
        if not config.listen:
            return
        from inboxd.metrics import REGISTRY, MetricsServer, QueueCollector

        host, port = config.host_port
        self.metrics = MetricsServer(host, port, self._readiness()).start()
        self.metrics.collector = QueueCollector(self._queue_rows)
        REGISTRY.register(self.metrics.collector)
        log.info("metrics listening addr=%s:%d", host, self.metrics.server_port)

    def _queue_rows(self) -> list[tuple[str, str, int, float]]:
        from inboxd.db import outbox_queries, slack_queries

        now = self.app.clock()
        rows: list[tuple[str, str, int, float]] = []
        with self.app.engine.connect() as conn:
            for queue, found in (
                ("outbox", outbox_queries.QUEUE.waiting(conn, "kind")),
                ("slack", slack_queries.QUEUE.waiting(conn)),
            ):
                rows += [(queue, k, n, (now - oldest).total_seconds()) for k, n, oldest in found]
        return rows

    def _readiness(self) -> dict[str, Callable[[], str | None]]:
        from sqlalchemy import text

        from inboxd.metrics import HEALTH

        imap = [box.name for box in self.app.settings.mailbox if box.uses_imap]

        def database() -> str | None:
            with self.app.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return None

        def rules() -> str | None:
            return None if self.app.rules.current is not None else "no rule set loaded"

        def mailboxes() -> str | None:
            down = HEALTH.not_connected(imap)
            return f"not connected: {', '.join(down)}" if down else None

        return {"database": database, "rules": rules, "mailboxes": mailboxes}

    def _jobs(self) -> list[Job]:
        """The periodic work: the SLA sweep, and a wake-up for each queue drain so a
        row whose backoff ended goes out even when nothing new was committed."""
        from inboxd.db.status import HEARTBEAT_SECONDS

        jobs = [
            Job("outbox-wake", self.app.outbound.drain.wake, 30.0),
            Job("status", self._heartbeat, HEARTBEAT_SECONDS, first_in=2.0),
        ]
        if self.app.slack is not None:
            jobs.append(Job("slack-wake", self.app.slack.wake, 30.0))
        if self.app.sla is not None:
            jobs.append(
                Job("sla-sweep", self.app.sla.run_once, self.app.settings.sla.sweep_interval)
            )
        if self.app.roots is not None:
            every = self.app.settings.slack.sync_interval
            jobs.append(Job("slack-roots", self.app.roots.run_once, every, first_in=5.0))
        if self.app.spikes is not None:
            jobs.append(Job("spikes", self.app.spikes.run_once, 60.0, first_in=15.0))
        if self.app.outage is not None:
            jobs.append(Job("mailbox-outage", self.app.outage.run_once, 30.0, first_in=30.0))
        if self.app.summaries is not None:
            every = self.app.settings.slack.quiet_hours.interval
            jobs.append(Job("slack-quiet", self.app.summaries.run_once, every, first_in=20.0))
        if self.app.surveys is not None:
            every = self.app.settings.csat.interval
            jobs.append(Job("csat-surveys", self.app.surveys.run_once, every, first_in=10.0))
        if self.app.digests is not None:
            every = self.app.settings.digest.interval
            jobs.append(Job("digest", self.app.digests.run_once, every, first_in=15.0))
        return jobs

    def _spawn(self, name: str, target: Callable[[threading.Event], object]) -> None:
        thread = threading.Thread(target=target, args=(self.stop,), name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def run_forever(self) -> None:
        """Start, then wait for SIGTERM/SIGINT; SIGHUP reloads rules.

        Signals arrive through a :class:`SignalPipe`, never through a handler
        that takes a lock (see that module for the hang this avoids)."""
        private_files()
        signals = SignalPipe((signal.SIGTERM, signal.SIGINT, signal.SIGHUP))
        watchdog = self.notifier.watchdog_interval()
        try:
            self.start()
            while not self.stop.is_set():
                self.on_signals(signals.wait(timeout=min(watchdog or 60.0, 60.0)))
                # from the main loop itself: a loop that hangs stops the pings and
                # systemd (WatchdogSec=) restarts the daemon
                self.notifier.watchdog(self.status_line())
            self.shutdown()  # still catching: a second SIGTERM must not cut it short
        finally:
            signals.close()

    def status_line(self) -> str:
        """systemd's one-line STATUS=: what runs and what waits."""
        alive = sum(1 for t in self.threads if t.is_alive())
        rules = f"rules gen {self.app.rules.generation}"
        if self.app.rules.last_errors:
            rules += f" ({len(self.app.rules.last_errors)} errors, last good kept)"
        return f"{len(self.app.settings.mailbox)} mailboxes, {alive} threads, {rules}"

    def on_signals(self, caught: list[signal.Signals]) -> None:
        """Act on the signals caught together: a stop wins over a reload, and a
        burst of SIGHUPs is one reload. Runs in the main loop, so it may take locks."""
        stops = [signum for signum in caught if signum != signal.SIGHUP]
        if stops:
            log.info("signal=%s stopping", stops[0].name)
            self.stop.set()
        elif caught:
            self.reload_rules(trigger="SIGHUP")

    def reload_rules(self, trigger: str = "manual") -> bool:
        """Validate and swap in the rules directory; the log line names the trigger
        (SIGHUP, file change) so an admin can tell which edit was picked up."""
        with self._reload_lock:  # SIGHUP and the file watcher may fire together
            return self._reload(trigger)

    def _reload(self, trigger: str) -> bool:
        self.notifier.reloading()
        before = self.app.rules.current
        errors = self.app.rules.reload(Path(self.app.settings.rules.dir))
        if not errors:
            self._recompute_sla(before)
        for error in errors:
            log.error("rules: %s", error)
        for problem in self.app.outbound.templates.reload():
            log.error("templates: %s (keeping the last good templates)", problem)
        if errors:
            self._alert_ops(errors, trigger)
        status = (
            f"rules: {len(errors)} errors, keeping last good set" if errors else "rules reloaded"
        )
        log.log(
            logging.ERROR if errors else logging.INFO,
            "%s trigger=%s generation=%d",
            status,
            trigger.replace(" ", "_"),
            self.app.rules.generation,
        )
        self._record_rules(trigger, errors)
        self.notifier.ready(status)
        return not errors

    # --- what ``inboxd status`` reads -------------------------------------------------

    def _rules_load(self, trigger: str, errors: list[Any]) -> RulesLoad:
        from inboxd.db.status import RulesLoad

        first = str(errors[0]) if errors else ""
        return RulesLoad(self.app.rules.generation, self.app.clock(), trigger, len(errors), first)

    def _register(self) -> None:
        """This daemon's status row, with the rule load of its start. A database that
        fails here costs the status, never the start."""
        from inboxd import installed_version
        from inboxd.db import status

        load = self._rules_load("start", list(self.app.rules.last_errors))
        host, _, pid = self.ident.rpartition(":")
        try:
            with self.app.engine.begin() as conn:
                self._status_id = status.register(
                    conn, host, int(pid), installed_version(), self.app.clock(), load
                )
        except Exception:
            log.exception("could not record the daemon's status row")

    def _record_rules(self, trigger: str, errors: list[Any]) -> None:
        from inboxd.db import status

        if self._status_id is None:
            return
        try:
            with self.app.engine.begin() as conn:
                status.rules_loaded(conn, self._status_id, self._rules_load(trigger, errors))
        except Exception:
            log.exception("could not record the rule reload")

    def _heartbeat(self, *, stopped: bool = False) -> None:
        """The daemon's heartbeat and its mailboxes' health, for ``inboxd status``."""
        from inboxd.db import status

        if self._status_id is None:
            return
        with self.app.engine.begin() as conn:
            status.heartbeat(conn, self._status_id, self.app.clock(), stopped=stopped)
        self.app.persist_health(self.ident, self._health_written)

    def _recompute_sla(self, before: RuleSet | None) -> None:
        """Policies applied, not frozen: tickets under a changed policy or calendar get
        their clocks recomputed from their events by the next sweep, run at once."""
        try:
            changed = recompute_changed(
                self.app.engine, before, self.app.rules.current, self.app.clock()
            )
        except Exception:
            log.exception("could not mark the tickets of changed SLA policies")
            return
        if changed and self.scheduler is not None:
            self.scheduler.run_now("sla-sweep")

    def _alert_ops(self, errors: list[Any], trigger: str) -> None:
        """Queue one Slack alert per distinct broken rule set, when Slack is configured."""
        ops = self.app.settings.slack.ops_channel
        if not (self.app.slack and ops):
            return
        try:
            with self.app.engine.begin() as conn:
                rules_error_notice(
                    conn,
                    ops,
                    errors,
                    self.app.clock(),
                    generation=self.app.rules.generation,
                    directory=str(self.app.settings.rules.dir),
                    trigger=trigger,
                )
            self.app.slack.wake()
        except Exception:
            log.exception("could not queue the rules alert")

    def _watch_rules(self, stop: threading.Event) -> None:
        """Reload on any change under the rules or the templates directory (a
        template is compiled once, so an edit takes effect through a reload)."""
        from watchfiles import watch

        settings = self.app.settings
        directories = [d for d in (settings.rules.dir, settings.templates.dir) if d.is_dir()]
        if not directories:
            return
        for _changes in watch(*directories, stop_event=stop, debounce=300, rust_timeout=1000):
            self.reload_rules(trigger="file_change")

    def shutdown(self) -> None:
        self.notifier.stopping()
        self.stop.set()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
        if self.metrics is not None:
            self.metrics.stop()
        self.app.outbound.drain.wake()
        if self.app.slack is not None:
            self.app.slack.wake()
        if self.controller is not None:
            self.controller.stop()
        for thread in self.threads:
            thread.join(timeout=15)
        alive = [t.name for t in self.threads if t.is_alive()]
        log.info("stopped threads=%d still_alive=%s", len(self.threads), ",".join(alive) or "none")
        try:
            self._heartbeat(stopped=True)
        except Exception:
            log.exception("could not record the stop")
        self.app.close()
