"""The incoming-webhook set-up: every queued Slack row is one post to the webhook.

A webhook can only post, into the one channel it was made for: no threads, no
updates, no buttons. So each row (a post, a root, a reply, an update of a
spike that ended) goes out as a message of its own through slack_sdk's
``WebhookClient``, still through the queue and the drain (retries, backoff,
Retry-After, a failure reported once on the ticket).

Results: HTTP 200 ``ok``: sent. HTTP 429: the row waits Retry-After.
``invalid_blocks``: posted again as text only. A revoked or misdirected
webhook (404 ``no_service``, 403 ``invalid_token``, 410, ``channel_not_found``,
``channel_is_archived``, ``action_prohibited``, ...): failed at once. Anything
else (5xx, connection refused, timeouts): retried with backoff.

The URL is the secret: slack_sdk's own logger (which writes the URL at debug
level and on retries) is switched off, and no error, log line or row keeps the
URL (``scrub``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from slack_sdk.http_retry import ConnectionErrorRetryHandler
from slack_sdk.webhook import WebhookClient, WebhookResponse
from sqlalchemy import Connection

from inboxd.config import SlackConfig
from inboxd.core.desk import events as ev
from inboxd.db import slack_queries as q
from inboxd.db import tickets
from inboxd.delivery.drain import Deliverer, Delivery
from inboxd.delivery.slack import BLOCK_ERRORS, ShortRateLimitRetryHandler, retry_after
from inboxd.metrics import SLACK_POSTS_FAILED

log = logging.getLogger("inboxd.slack")

# What Slack answers (as the body, with a 4xx) when a webhook can never work.
PERMANENT_WEBHOOK_ERRORS = frozenset(
    {
        "action_prohibited",
        "channel_is_archived",
        "channel_not_found",
        "invalid_token",
        "missing_text_or_fallback_or_attachments",
        "no_active_hooks",
        "no_service",
        "no_service_id",
        "no_team",
        "no_text",
        "posting_to_general_channel_denied",
        "team_disabled",
        "too_many_attachments",
        "user_not_found",
    }
)
PERMANENT_STATUS = frozenset({401, 403, 404, 410})
SHOWN = "<webhook url>"


def _silent_logger() -> logging.Logger:
    """A logger for slack_sdk that writes nothing: it would print the URL."""
    quiet = logging.Logger("inboxd.slack.webhook.sdk", level=logging.CRITICAL + 1)
    quiet.disabled = True
    quiet.propagate = False
    return quiet


def make_webhook_client(
    config: SlackConfig, *, timeout: int = 10, max_rate_limit_wait: float = 30.0
) -> WebhookClient | None:
    """A WebhookClient for ``config``'s URL, or None when no webhook is configured."""
    url = config.read_webhook_url()
    if url is None:
        return None
    return WebhookClient(
        url,
        timeout=timeout,
        logger=_silent_logger(),
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=1),
            ShortRateLimitRetryHandler(max_retry_count=2, max_wait=max_rate_limit_wait),
        ],
    )


def scrub(text: str, url: str) -> str:
    """``text`` without the webhook URL or its secret path."""
    if not url:
        return text
    out = text.replace(url, SHOWN)
    path = url.split("://", 1)[-1].partition("/")[2]
    return out.replace(path, "***") if len(path) >= 8 else out


def classify_response(response: WebhookResponse) -> Delivery:
    status, body = response.status_code, str(response.body or "").strip()
    if status == 200:
        return Delivery("ok", "posted through the webhook")
    error = body[:100] if body.replace("_", "").isalnum() else ""
    if status == 429:
        wait = retry_after(response.headers)
        return Delivery("temporary", f"rate limited (429) {error}".strip(), retry_after=wait)
    if error in PERMANENT_WEBHOOK_ERRORS or error in BLOCK_ERRORS or status in PERMANENT_STATUS:
        return Delivery("permanent", f"HTTP {status} {error}".strip())
    return Delivery("temporary", f"HTTP {status} {error}".strip())


class WebhookDeliverer(Deliverer[q.SlackPost]):
    """Posts each row's text and blocks through the webhook the factory makes."""

    def __init__(self, client_factory: Callable[[], WebhookClient]) -> None:
        self.client_factory = client_factory
        self._client: WebhookClient | None = None

    def client(self) -> WebhookClient:
        if self._client is None:
            self._client = self.client_factory()
        return self._client

    def _send(self, text: str, blocks: list[dict[str, Any]] | None) -> Delivery:
        client = self.client()
        try:
            response = client.send(text=text, blocks=blocks)
        except Exception as exc:  # network down, timeout: never with the URL in it
            return Delivery("temporary", scrub(f"{type(exc).__name__}: {exc}", client.url))
        delivery = classify_response(response)
        return Delivery(
            delivery.status, scrub(delivery.detail, client.url), retry_after=delivery.retry_after
        )

    def deliver(self, row: q.SlackPost) -> Delivery:
        blocks = list(row.blocks) or None
        delivery = self._send(row.text, blocks)
        if blocks and not delivery.ok and any(e in delivery.detail for e in BLOCK_ERRORS):
            log.warning("slack blocks rejected id=%s: posting text only", row.id)
            fallback = self._send(row.text, None)
            return (
                Delivery("ok", fallback.detail, note="blocks rejected") if fallback.ok else fallback
            )
        return delivery

    def describe(self, row: q.SlackPost) -> str:
        return f"call={row.call} via=webhook ticket={row.ticket_id}"

    def failed(self, conn: Connection, row: q.SlackPost, reason: str, now: datetime) -> None:
        SLACK_POSTS_FAILED.inc()
        if row.ticket_id is not None:
            failed = ev.SlackFailed(at=now, notice=row.id, channel="webhook", reason=reason)
            tickets.record(conn, row.ticket_id, failed)


__all__ = [
    "PERMANENT_WEBHOOK_ERRORS",
    "WebhookDeliverer",
    "classify_response",
    "make_webhook_client",
    "scrub",
]
