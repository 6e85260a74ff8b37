"""The Slack drain: the generic ``Drain`` with a chat.postMessage deliverer.

Claim, lease, one post at a time, each result committed before the next, and
recovery are ``delivery.drain``'s. A crash between Slack's ``ok`` and our
commit posts that one notice again; nothing else can double-post.

Each row is one Web API call (``call``): a message of its own, a ticket's
living root message, a reply in its thread, or a chat.update of the root
(``SlackDeliverer``).

Results:
- ``ok``: ``sent`` (the message ``ts`` is logged; a root's is recorded).
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
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Unpack

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from inboxd.config import SlackConfig, read_secret
from inboxd.core.desk import events as ev
from inboxd.db import slack_queries as q
from inboxd.db import slack_threads as threads
from inboxd.db import tickets
from inboxd.delivery.drain import Deliverer, Delivery, Drain, Options, Record
from inboxd.metrics import SLACK_POSTS_FAILED

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
        wait = retry_after({k: v[0] if v else "" for k, v in response.headers.items()})
        return wait is None or wait <= self.max_wait


def retry_after(headers: Any) -> float | None:
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
    return read_secret(config.token_env, config.token_file, "slack.token")


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


def _error_of(exc: SlackApiError) -> tuple[str, int]:
    response = exc.response
    if response is None:
        return "", 0
    return str(response.get("error") or ""), response.status_code


def classify(exc: Exception) -> Delivery:
    """A failed Web API call as the drain sees it: rate limit, permanent or temporary."""
    if not isinstance(exc, SlackApiError):  # network down, timeout, bad JSON from a proxy
        return Delivery("temporary", f"{type(exc).__name__}: {exc}")
    error, status = _error_of(exc)
    if status == 429 or error == "ratelimited":
        wait = retry_after(exc.response.headers if exc.response is not None else None)
        return Delivery("temporary", f"rate limited (429) {error}".strip(), retry_after=wait)
    if error in PERMANENT_ERRORS:
        return Delivery("permanent", error)
    return Delivery("temporary", f"HTTP {status} {error or exc}".strip())


def post(
    client: WebClient,
    notice: q.SlackPost,
    *,
    channel: str | None = None,
    thread_ts: str | None = None,
    record: Callable[[str, str], Record] | None = None,
) -> Delivery:
    """One chat.postMessage, its outcome classified; never raises. ``record`` makes
    the settle hook from the (channel id, ts) Slack answered with."""
    blocks = list(notice.blocks) or None
    try:
        response = client.chat_postMessage(
            channel=channel or notice.channel, text=notice.text, blocks=blocks, thread_ts=thread_ts
        )
    except SlackApiError as exc:
        error, _status = _error_of(exc)
        if error in BLOCK_ERRORS and blocks:
            log.warning("slack blocks rejected id=%s error=%s: posting text only", notice.id, error)
            fallback = post(
                client,
                replace(notice, blocks=()),
                channel=channel,
                thread_ts=thread_ts,
                record=record,
            )
            if fallback.ok:
                return replace(fallback, note=f"blocks rejected: {error}")
            return fallback
        return classify(exc)
    except Exception as exc:
        return classify(exc)
    ts = str(response.get("ts") or "")
    hook = record(str(response.get("channel") or ""), ts) if record is not None else None
    return Delivery("ok", f"ts={ts}", record=hook)


# A root, reply or update whose thread is gone (its root failed for good): the row
# fails quietly, the failure was reported once with the root's.
THREAD_GONE = "thread gone: its root message could not be posted"
WAIT_FOR_ROOT = 5.0  # seconds a reply or update waits for its root to be posted


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SlackDeliverer(Deliverer[q.SlackPost]):
    """Makes each row's Slack call with the client ``client_factory`` makes on first use.

    ``post`` rows are messages of their own. A ``root`` is a ticket's living
    message: its channel id and ts are recorded in the settle transaction. A
    ``reply`` goes into the root's thread, an ``update`` is a chat.update of the
    root; both wait while the root is not posted yet. A root that was deleted in
    Slack (``message_not_found``) is posted again by the update.
    """

    def __init__(
        self,
        client_factory: ClientFactory,
        engine: Engine | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.client_factory = client_factory
        self.engine = engine
        self.clock = clock
        self._client: WebClient | None = None

    def client(self) -> WebClient:
        if self._client is None:
            self._client = self.client_factory()
        return self._client

    def deliver(self, row: q.SlackPost) -> Delivery:
        if row.call == q.POST or row.thread_id is None or self.engine is None:
            return post(self.client(), row)
        with self.engine.connect() as conn:
            thread = threads.get(conn, row.thread_id)
            root_due = threads.root_due(conn, row.thread_id) if thread and not thread.ts else None
        if thread is None:
            return Delivery("permanent", THREAD_GONE)
        if row.call == q.ROOT:
            if thread.ts:  # posted, and committed, by an earlier delivery
                return Delivery("ok", f"root already posted ts={thread.ts}")
            return post(self.client(), row, record=self._posted(thread, row.digest))
        if not thread.ts:  # try again just after the root's next attempt
            wait = WAIT_FOR_ROOT
            if root_due is not None:
                wait = max((root_due - self.clock()).total_seconds(), 0.0) + 1.0
            return Delivery("temporary", "waiting for the root message", retry_after=wait)
        if row.call == q.REPLY:
            return post(self.client(), row, channel=thread.target, thread_ts=thread.ts)
        return self._update(row, thread)

    def _posted(self, thread: threads.Thread, digest: str) -> Callable[[str, str], Record]:
        def hook(channel_id: str, ts: str) -> Record:
            def record(conn: Connection, now: datetime) -> None:
                threads.posted(
                    conn, thread.id, channel_id=channel_id, ts=ts, digest=digest, now=now
                )

            return record

        return hook

    def _update(self, row: q.SlackPost, thread: threads.Thread) -> Delivery:
        assert thread.ts is not None
        try:
            self.client().chat_update(
                channel=thread.target, ts=thread.ts, text=row.text, blocks=list(row.blocks)
            )
        except SlackApiError as exc:
            if _error_of(exc)[0] != "message_not_found":
                return classify(exc)
            log.info("slack root deleted ticket=%s: posting it again", row.ticket_id)
            again = post(
                self.client(), row, channel=thread.channel, record=self._posted(thread, row.digest)
            )
            return replace(again, note="root was deleted: posted again") if again.ok else again
        except Exception as exc:
            return classify(exc)
        hook = self._posted(thread, row.digest)(thread.channel_id, thread.ts)
        return Delivery("ok", f"updated ts={thread.ts}", record=hook)

    def describe(self, row: q.SlackPost) -> str:
        return f"call={row.call} channel={row.channel} ticket={row.ticket_id}"

    def failed(self, conn: Connection, row: q.SlackPost, reason: str, now: datetime) -> None:
        if reason == THREAD_GONE:
            return  # its root's failure was counted and reported
        SLACK_POSTS_FAILED.inc()
        if row.call in (q.ROOT, q.UPDATE) and row.thread_id is not None:
            threads.drop(conn, row.thread_id)  # the next alert tries a new root
        if row.ticket_id is not None:
            failed = ev.SlackFailed(at=now, notice=row.id, channel=row.channel, reason=reason)
            tickets.record(conn, row.ticket_id, failed)


class SlackDrain(Drain[q.SlackPost]):
    """Posts queued Slack notices. ``run_once`` for one round, ``run`` as a thread.

    With the bot token's ``client_factory`` (the Web API); or with another
    ``deliverer`` (``delivery.slack_webhook``: an incoming webhook)."""

    def __init__(
        self,
        engine: Engine,
        client_factory: ClientFactory | None = None,
        *,
        retry_for: float | timedelta = 86400.0,
        deliverer: Deliverer[q.SlackPost] | None = None,
        **options: Unpack[Options],
    ) -> None:
        options.setdefault("max_per_run", 50)
        options.setdefault("lease", timedelta(minutes=5))
        if deliverer is None:
            assert client_factory is not None, "a Web API client or a deliverer"
            deliverer = SlackDeliverer(client_factory, engine, options.get("clock", _utcnow))
        super().__init__(engine, q.QUEUE, deliverer, name="slack", retry_for=retry_for, **options)


__all__ = [
    "BLOCK_ERRORS",
    "PERMANENT_ERRORS",
    "THREAD_GONE",
    "ShortRateLimitRetryHandler",
    "SlackDeliverer",
    "SlackDrain",
    "classify",
    "make_slack_client",
    "post",
    "read_token",
    "retry_after",
]
