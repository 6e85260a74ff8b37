"""The Slack drain: the generic ``Drain`` with a chat.postMessage deliverer.

Claim, lease, one post at a time, each result committed before the next, and
recovery are ``delivery.drain``'s. A crash between Slack's ``ok`` and our
commit posts that one notice again; nothing else can double-post.

Results:
- ``ok``: ``sent`` (the message ``ts`` is logged).
- HTTP 429: slack_sdk's ``RateLimitErrorRetryHandler`` (attached by
  ``make_slack_client``) sleeps Retry-After and retries in place, as long as
  Retry-After is short (``max_rate_limit_wait``); a longer one comes back as an
  error and the row waits exactly Retry-After (``Delivery.retry_after``), not
  the backoff, but never past the retry deadline.
- a permanent Slack error (``channel_not_found``, ``not_in_channel``,
  ``invalid_auth``, ...): ``failed`` at once, with an event on the ticket.
  ``invalid_blocks``: posted again as text only, so a block bug loses no alert.
- anything else (connection refused, timeouts, 5xx, unknown errors): retried
  with ``core.retry`` backoff until ``retry_for`` after the row was queued.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Unpack

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from inboxd.config import ConfigError, SlackConfig
from inboxd.core.desk import events as ev
from inboxd.db import slack_queries as q
from inboxd.db import tickets
from inboxd.delivery.drain import Deliverer, Delivery, Drain, Options

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


def post(client: WebClient, notice: q.SlackPost) -> Delivery:
    """One chat.postMessage, its outcome classified; never raises."""
    blocks = list(notice.blocks) or None
    try:
        response = client.chat_postMessage(channel=notice.channel, text=notice.text, blocks=blocks)
        return Delivery("ok", f"ts={response.get('ts') or ''}")
    except SlackApiError as exc:
        error = str(exc.response.get("error") or "") if exc.response is not None else ""
        status = exc.response.status_code if exc.response is not None else 0
        if status == 429 or error == "ratelimited":
            wait = _retry_after(exc.response.headers if exc.response is not None else None)
            return Delivery("temporary", f"rate limited (429) {error}".strip(), retry_after=wait)
        if error in BLOCK_ERRORS and blocks:
            log.warning("slack blocks rejected id=%s error=%s: posting text only", notice.id, error)
            fallback = post(client, replace(notice, blocks=()))
            if fallback.ok:
                return replace(fallback, note=f"blocks rejected: {error}")
            return fallback
        if error in PERMANENT_ERRORS:
            return Delivery("permanent", error)
        return Delivery("temporary", f"HTTP {status} {error or exc}".strip())
    except Exception as exc:  # network down, timeout, bad JSON from a proxy ...
        return Delivery("temporary", f"{type(exc).__name__}: {exc}")


class SlackDeliverer(Deliverer[q.SlackPost]):
    """Posts notices with the client ``client_factory`` makes on first use."""

    def __init__(self, client_factory: ClientFactory) -> None:
        self.client_factory = client_factory
        self._client: WebClient | None = None

    def client(self) -> WebClient:
        if self._client is None:
            self._client = self.client_factory()
        return self._client

    def deliver(self, row: q.SlackPost) -> Delivery:
        return post(self.client(), row)

    def describe(self, row: q.SlackPost) -> str:
        return f"channel={row.channel} ticket={row.ticket_id}"

    def failed(self, conn: Connection, row: q.SlackPost, reason: str, now: datetime) -> None:
        if row.ticket_id is not None:
            failed = ev.SlackFailed(at=now, notice=row.id, channel=row.channel, reason=reason)
            tickets.record(conn, row.ticket_id, failed)


class SlackDrain(Drain[q.SlackPost]):
    """Posts queued Slack notices. ``run_once`` for one round, ``run`` as a thread."""

    def __init__(
        self,
        engine: Engine,
        client_factory: ClientFactory,
        *,
        retry_for: float | timedelta = 86400.0,
        **options: Unpack[Options],
    ) -> None:
        options.setdefault("max_per_run", 50)
        options.setdefault("lease", timedelta(minutes=5))
        deliverer = SlackDeliverer(client_factory)
        super().__init__(engine, q.QUEUE, deliverer, name="slack", retry_for=retry_for, **options)


__all__ = [
    "BLOCK_ERRORS",
    "PERMANENT_ERRORS",
    "ShortRateLimitRetryHandler",
    "SlackDeliverer",
    "SlackDrain",
    "make_slack_client",
    "post",
    "read_token",
]
