"""The Prometheus metrics of one daemon (prometheus-client), and the HTTP endpoint.

Names follow Prometheus conventions: an ``inboxd_`` prefix, ``_total``
counters, seconds as the unit, and no ticket ids or addresses as labels
(labels are mailbox names, outcome kinds, rule and policy names: small sets).
Counters are incremented where the thing happens (after its commit); gauges
that describe the database (queue depth, the oldest row's age) are read at
scrape time by a collector the daemon registers.

``/metrics`` serves them; ``/healthz`` answers 200 while the process runs;
``/readyz`` answers 200 only when the checks the daemon gives pass (mailboxes
connected, database reachable, rules loaded), 503 with the failing ones
otherwise.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

REGISTRY = CollectorRegistry(auto_describe=True)

MAIL_INGESTED = Counter(
    "inboxd_mail_ingested",
    "Mail taken in, by mailbox and result (stored, duplicate, quarantined, skipped).",
    ["mailbox", "result"],
    registry=REGISTRY,
)
TICKETS_CREATED = Counter(
    "inboxd_tickets_created", "Tickets opened, by mailbox.", ["mailbox"], registry=REGISTRY
)
RULE_HITS = Counter(
    "inboxd_rule_hits", "Rules that fired on stored mail, by rule.", ["rule"], registry=REGISTRY
)
DELIVERIES_FAILED = Counter(
    "inboxd_deliveries_failed",
    "Outbound mails given up on (permanent failure or retry window over), by kind.",
    ["kind"],
    registry=REGISTRY,
)
SLACK_POSTS_FAILED = Counter(
    "inboxd_slack_posts_failed", "Slack calls given up on.", registry=REGISTRY
)
SLA_WARNINGS = Counter(
    "inboxd_sla_warnings", "SLA reminders sent, by policy.", ["policy"], registry=REGISTRY
)
SLA_BREACHES = Counter(
    "inboxd_sla_breaches", "SLA breach alerts sent, by policy.", ["policy"], registry=REGISTRY
)
MAILBOX_CONNECTED = Gauge(
    "inboxd_mailbox_connected",
    "1 while the mailbox's IMAP connection is up, 0 otherwise.",
    ["mailbox"],
    registry=REGISTRY,
)
MAILBOX_LAST_SYNC = Gauge(
    "inboxd_mailbox_last_sync_timestamp_seconds",
    "When the mailbox last synced without error (Unix time); time() minus it is the lag.",
    ["mailbox"],
    registry=REGISTRY,
)
INGEST_LATENCY = Histogram(
    "inboxd_ingest_latency_seconds",
    "From a mail's arrival at inboxd (LMTP DATA, IMAP fetch) to its commit.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    registry=REGISTRY,
)


@dataclass(frozen=True, slots=True)
class MailboxReport:
    """One mailbox as its fetcher last reported it (times are Unix time)."""

    connected: bool
    last_sync: float | None
    last_error: str
    last_error_at: float | None


class MailboxHealth:
    """What each mailbox's fetcher last reported: connected, last good sync, last error.

    The fetchers write it (from their threads), ``/readyz`` and the gauges read it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.connected: dict[str, bool] = {}
        self.last_sync: dict[str, float] = {}
        self.last_error: dict[str, str] = {}
        self.last_error_at: dict[str, float] = {}
        # the first failure since the last good sync: a login that works while every
        # SELECT fails is still an outage, so only ``synced`` ends one
        self.down_since: dict[str, float] = {}
        # mailboxes another daemon fetches (it holds their lease) -> that daemon: this
        # one is their standby, not unready (several daemons on one database)
        self.standby_for: dict[str, str] = {}

    def up(self, mailbox: str) -> None:
        with self._lock:
            self.connected[mailbox] = True
            self.standby_for.pop(mailbox, None)
        MAILBOX_CONNECTED.labels(mailbox).set(1)

    def standby(self, mailbox: str, holder: str) -> None:
        """Another daemon (``holder``) holds the mailbox's lease; this one waits for it."""
        with self._lock:
            self.connected[mailbox] = False
            self.standby_for[mailbox] = holder
        MAILBOX_CONNECTED.labels(mailbox).set(0)

    def down(self, mailbox: str, error: str, at: float | None = None) -> None:
        with self._lock:
            self.connected[mailbox] = False
            self.standby_for.pop(mailbox, None)  # it failed here: this daemon fetches it
            when = time.time() if at is None else at
            self.last_error[mailbox] = error[:500]
            self.last_error_at[mailbox] = when
            self.down_since.setdefault(mailbox, when)
        MAILBOX_CONNECTED.labels(mailbox).set(0)

    def synced(self, mailbox: str, at: float) -> None:
        with self._lock:
            self.connected[mailbox] = True
            self.standby_for.pop(mailbox, None)
            self.last_sync[mailbox] = at
            self.down_since.pop(mailbox, None)
        MAILBOX_CONNECTED.labels(mailbox).set(1)
        MAILBOX_LAST_SYNC.labels(mailbox).set(at)

    def outages(self) -> dict[str, tuple[float, str]]:
        """Mailboxes not synced since a failure: (since when, Unix time; the last error)."""
        with self._lock:
            return {m: (t, self.last_error.get(m, "")) for m, t in self.down_since.items()}

    def snapshot(self) -> dict[str, MailboxReport]:
        """Every mailbox a fetcher of this process reported on, for ``inboxd status``
        (which runs in another process and reads what the daemon persisted)."""
        with self._lock:
            return {
                m: MailboxReport(
                    connected,
                    self.last_sync.get(m),
                    self.last_error.get(m, ""),
                    self.last_error_at.get(m),
                )
                for m, connected in self.connected.items()
            }

    def not_connected(self, mailboxes: Iterable[str]) -> list[str]:
        """The mailboxes neither connected nor another daemon's to fetch."""
        with self._lock:
            return [
                m
                for m in mailboxes
                if not self.connected.get(m, False) and m not in self.standby_for
            ]


HEALTH = MailboxHealth()


class QueueCollector:
    """Outbox and Slack queue depth and the age of their oldest waiting row, by kind,
    read from the database at each scrape (so every daemon on one database agrees)."""

    def __init__(self, read: Callable[[], Iterable[tuple[str, str, int, float]]]) -> None:
        self.read = read  # (queue, kind, waiting rows, age of the oldest in seconds)

    def collect(self) -> Iterable[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "inboxd_queue_depth",
            "Rows waiting to be sent, by queue and kind.",
            labels=["queue", "kind"],
        )
        age = GaugeMetricFamily(
            "inboxd_queue_oldest_age_seconds",
            "Age of the oldest waiting row, by queue and kind.",
            labels=["queue", "kind"],
        )
        try:
            rows = list(self.read())
        except Exception:  # a scrape must not fail because the database blinked
            rows = []
        for queue, kind, count, oldest in rows:
            depth.add_metric([queue, kind], count)
            age.add_metric([queue, kind], oldest)
        yield depth
        yield age


Check = Callable[[], str | None]  # None: fine; else why not ready


class _Handler(BaseHTTPRequestHandler):
    server: MetricsServer

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY))
        elif path == "/healthz":
            self._send(200, "text/plain; charset=utf-8", b"ok\n")
        elif path == "/readyz":
            problems = self.server.problems()
            body = json.dumps({"ready": not problems, "problems": problems}).encode()
            self._send(503 if problems else 200, "application/json", body)
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found\n")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return  # scrapes every few seconds are not worth a log line


class MetricsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, checks: dict[str, Check]) -> None:
        super().__init__((host, port), _Handler)
        self.checks = checks
        self.collector: QueueCollector | None = None  # registered by the daemon
        self._thread = threading.Thread(target=self.serve_forever, name="metrics", daemon=True)

    def problems(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, check in self.checks.items():
            try:
                why = check()
            except Exception as exc:
                why = f"check failed: {exc.__class__.__name__}"
            if why:
                out[name] = why
        return out

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)
        if self.collector is not None:
            REGISTRY.unregister(self.collector)  # a daemon started again registers anew
            self.collector = None
