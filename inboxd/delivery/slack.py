"""The Slack drain: claim due notices, post them with chat.postMessage, record the result.

The same design as the outbox drain (``delivery.outbox``): a short transaction
claims due rows under a lease, each post is made and its result committed
before the next, and a row left ``sending`` by a dead process is due again
after its lease or at start (``recover``). A crash between Slack's ``ok`` and
our commit posts that one notice again; nothing else can double-post.

Results:
- ``ok``: ``sent`` (the message ``ts`` is logged).
- HTTP 429: slack_sdk's ``RateLimitErrorRetryHandler`` (attached by
  ``make_slack_client``) sleeps Retry-After and retries in place, as long as
  Retry-After is short (``max_rate_limit_wait``); a longer one comes back as an
  error and the row waits exactly Retry-After, not the backoff.
- a permanent Slack error (``channel_not_found``, ``not_in_channel``,
  ``invalid_auth``, ...): ``failed`` at once, with an event on the ticket.
  ``invalid_blocks``: posted again as text only, so a block bug loses no alert.
- anything else (connection refused, timeouts, 5xx, unknown errors): retried
  with ``core.retry`` backoff until ``retry_for`` after the row was queued.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from inboxd.config import ConfigError, SlackConfig
from inboxd.core.retry import next_attempt
from inboxd.db import repo
from inboxd.db import slack_queries as q
from inboxd.delivery.drainloop import DrainLoop

log = logging.getLogger("inboxd.slack")

# Errors a retry cannot fix: configuration or content. Everything else is retried.
PERMANENT_ERRORS = frozenset(
    {
        "access_denied",
        "account_inactive",
        "as_user_not_supported",
        "channel_not_found",
        "ekm_access_denied",
        "enterprise_is_restricted",
        "invalid_arguments",
        "invalid_auth",
        "invalid_blocks",
        "invalid_blocks_format",
        "is_archived",
        "missing_scope",
        "msg_too_long",
        "no_permission",
        "no_text",
        "not_allowed_token_type",
        "not_authed",
        "not_in_channel",
        "org_login_required",
        "posting_to_general_channel_denied",
        "restricted_action",
        "restricted_action_read_only_channel",
        "team_access_not_granted",
        "token_expired",
        "token_revoked",
        "two_factor_setup_required",
    }
)
BLOCK_ERRORS = frozenset({"invalid_blocks", "invalid_blocks_format"})


class ShortRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """Retries a 429 in place only when Retry-After is at most ``max_wait`` seconds.

    slack_sdk sleeps for the whole Retry-After; a long one would hold the drain
    thread (and a clean shutdown) hostage, so it is handed back to the drain,
    which reschedules the row for then instead.
    """

    def __init__(self, max_retry_count: int = 2, *, max_wait: float = 30.0) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = _retry_after({k: v[0] if v else "" for k, v in response.headers.items()})
        return wait is None or wait <= self.max_wait


def _retry_after(headers: Any) -> float | None:
    """Seconds from a Retry-After header (any case), or None."""
    if not headers:
        return None
    for key, value in dict(headers).items():
        if str(key).lower() == "retry-after":
            raw = value[0] if isinstance(value, list | tuple) else value
            try:
                return max(float(raw), 0.0)
            except (TypeError, ValueError):
                return None
    return None


def read_token(config: SlackConfig) -> str | None:
    """The bot token, or None when Slack is not configured at all."""
    if config.token_env:
        value = os.environ.get(config.token_env, "").strip()
        if not value:
            raise ConfigError(
                f"slack.token_env: environment variable {config.token_env} is not set"
            )
        return value
    if config.token_file:
        try:
            value = config.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"slack.token_file: {exc}") from exc
        if not value:
            raise ConfigError(f"slack.token_file: {config.token_file} is empty")
        return value
    return None


def make_slack_client(
    config: SlackConfig,
    *,
    timeout: int = 10,
    max_rate_limit_wait: float = 30.0,
    connection_retries: int = 1,
) -> WebClient | None:
    """A WebClient for ``config``, or None when no token is configured (Slack off).

    ``connection_retries`` in-place retries absorb a reset connection; a server
    that stays down is the drain's business (backoff, row by row).
    """
    token = read_token(config)
    if token is None:
        return None
    kwargs: dict[str, Any] = {}
    if config.base_url:
        kwargs["base_url"] = (
            config.base_url if config.base_url.endswith("/") else config.base_url + "/"
        )
    return WebClient(
        token=token,
        timeout=timeout,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=connection_retries),
            ShortRateLimitRetryHandler(max_retry_count=2, max_wait=max_rate_limit_wait),
        ],
        **kwargs,
    )


ClientFactory = Callable[[], WebClient]


@dataclass(frozen=True, slots=True)
class PostResult:
    status: str  # ok | temporary | permanent
    detail: str = ""
    ts: str = ""
    retry_after: float | None = None  # a 429 the client did not wait out
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class SlackReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    released: int = 0
    errors: list[str] = field(default_factory=list)


def post(client: WebClient, notice: q.SlackPost) -> PostResult:
    """One chat.postMessage, its outcome classified; never raises."""
    blocks = list(notice.blocks) or None
    try:
        response = client.chat_postMessage(channel=notice.channel, text=notice.text, blocks=blocks)
        return PostResult("ok", ts=str(response.get("ts") or ""))
    except SlackApiError as exc:
        error = str(exc.response.get("error") or "") if exc.response is not None else ""
        status = exc.response.status_code if exc.response is not None else 0
        if status == 429 or error == "ratelimited":
            wait = _retry_after(exc.response.headers if exc.response is not None else None)
            return PostResult("temporary", f"rate limited (429) {error}".strip(), retry_after=wait)
        if error in BLOCK_ERRORS and blocks:
            log.warning("slack blocks rejected id=%s error=%s: posting text only", notice.id, error)
            fallback = post(client, q.SlackPost(**{**_fields(notice), "blocks": ()}))
            if fallback.ok:
                return PostResult("ok", ts=fallback.ts, note=f"blocks rejected: {error}")
            return fallback
        if error in PERMANENT_ERRORS:
            return PostResult("permanent", error)
        return PostResult("temporary", f"HTTP {status} {error or exc}".strip())
    except Exception as exc:  # network down, timeout, bad JSON from a proxy ...
        return PostResult("temporary", f"{type(exc).__name__}: {exc}")


def _fields(notice: q.SlackPost) -> dict[str, Any]:
    return {name: getattr(notice, name) for name in q.SlackPost.__slots__}


class SlackDrain(DrainLoop):
    """Posts queued Slack notices. ``run_once`` for one round, ``run`` as a thread."""

    name = "slack"

    def __init__(
        self,
        engine: Engine,
        client_factory: ClientFactory,
        *,
        retry_for: float | timedelta = 86400.0,
        max_per_run: int = 50,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: Callable[[], float] = random.random,
        lease: timedelta = timedelta(minutes=5),
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        super().__init__()
        self.engine = engine
        self.client_factory = client_factory
        self.retry_for = retry_for
        self.max_per_run = max_per_run
        self.clock = clock
        self.rng = rng
        self.lease = lease
        self.should_stop = should_stop
        self._client: WebClient | None = None

    def recover(self) -> int:
        with self.engine.begin() as conn:
            count = q.release_stale(conn, now=self.clock())
        if count:
            log.warning("slack recovered=%d notices left sending by a previous run", count)
        return count

    def client(self) -> WebClient:
        if self._client is None:
            self._client = self.client_factory()
        return self._client

    def run_once(self) -> SlackReport:
        report = SlackReport()
        now = self.clock()
        with self.engine.begin() as conn:
            posts = q.claim(conn, now=now, lease_until=now + self.lease, limit=self.max_per_run)
        report.claimed = len(posts)
        pending = list(posts)
        try:
            while pending and not self.should_stop():
                notice = pending.pop(0)
                try:
                    result = post(self.client(), notice)
                except Exception as exc:  # e.g. the client factory failed
                    log.exception("slack post crashed id=%s", notice.id)
                    result = PostResult("temporary", f"client error: {exc!r}")
                self._settle(notice, result, report)
        finally:
            if pending:
                with self.engine.begin() as conn:
                    for notice in pending:
                        q.reschedule(
                            conn, notice.id, next_attempt_at=self.clock(), error="not sent: stopped"
                        )
                report.released = len(pending)
        return report

    # --- one result ------------------------------------------------------------------

    def _settle(self, notice: q.SlackPost, result: PostResult, report: SlackReport) -> None:
        now = self.clock()
        with self.engine.begin() as conn:
            if result.ok:
                q.mark_sent(conn, notice.id, now=now, note=result.note)
                report.sent += 1
                log.info(
                    "slack posted id=%s channel=%s ticket=%s ts=%s",
                    notice.id,
                    notice.channel,
                    notice.ticket_id,
                    result.ts,
                )
                return
            if result.status == "temporary":
                nxt = self._next(notice, result, now)
                if nxt is not None:
                    q.reschedule(conn, notice.id, next_attempt_at=nxt, error=result.detail)
                    report.retried += 1
                    log.info(
                        "slack retry id=%s channel=%s attempt=%d next=%s error=%s",
                        notice.id,
                        notice.channel,
                        notice.attempts,
                        nxt.isoformat(),
                        result.detail,
                    )
                    return
                reason = f"gave up after {notice.attempts} attempts: {result.detail}"
            else:
                reason = result.detail
            self._fail(conn, notice, reason, now)
            report.failed += 1
            report.errors.append(f"{notice.id}: {reason}")

    def _next(self, notice: q.SlackPost, result: PostResult, now: datetime) -> datetime | None:
        nxt = next_attempt(
            notice.attempts, now, self.rng(), self.retry_for, first_attempt_at=notice.created_at
        )
        if nxt is not None and result.retry_after is not None:
            # Slack said when: wait exactly that, but never past the retry deadline.
            window = self.retry_for
            if not isinstance(window, timedelta):
                window = timedelta(seconds=window)
            deadline = notice.created_at + window
            nxt = min(now + timedelta(seconds=result.retry_after), deadline)
        return nxt

    def _fail(self, conn: Connection, notice: q.SlackPost, reason: str, now: datetime) -> None:
        q.mark_failed(conn, notice.id, error=reason)
        log.warning(
            "slack failed id=%s channel=%s ticket=%s reason=%s",
            notice.id,
            notice.channel,
            notice.ticket_id,
            reason,
        )
        if notice.ticket_id is not None:
            repo.add_event(
                conn,
                notice.ticket_id,
                now,
                "system",
                "slack_failed",
                {"notice": notice.id, "channel": notice.channel, "reason": reason},
            )


__all__ = [
    "BLOCK_ERRORS",
    "PERMANENT_ERRORS",
    "PostResult",
    "ShortRateLimitRetryHandler",
    "SlackDrain",
    "SlackReport",
    "make_slack_client",
    "post",
    "read_token",
]
