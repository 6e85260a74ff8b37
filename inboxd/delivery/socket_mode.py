"""The Socket Mode edge: Slack's button presses in, without a public HTTP endpoint.

slack-sdk's builtin ``SocketModeClient`` holds a websocket to Slack opened with
the app-level token (``[slack] app_token_env`` / ``app_token_file``). Every
envelope is acknowledged at once, before any work (Slack wants the ack within
3 s and redelivers otherwise); then each press of one of our buttons gets the
presser's profile email (``users.info``, cached), is handed to the handler the
daemon wired (``flows.slack_buttons``), and the handler's answer, if any, is
shown to the presser only (``chat.postEphemeral``). Those two calls are made
here directly, not queued: they matter only in the seconds after the press.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from slack_sdk import WebClient
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from inboxd.config import SlackConfig, read_secret
from inboxd.core.slack_actions import ButtonPress, ButtonReply, presses

log = logging.getLogger("inboxd.slack")

Handler = Callable[[ButtonPress], ButtonReply]
FAILED = "inboxd could not do that just now (an internal error was logged); nothing was changed."


def read_app_token(config: SlackConfig) -> str | None:
    """The app-level token (xapp-...), or None when Socket Mode is not configured."""
    return read_secret(config.app_token_env, config.app_token_file, "slack.app_token")


class SocketModeListener:
    def __init__(
        self,
        app_token: str,
        web: WebClient,
        handler: Handler,
        *,
        email_ttl: float = 600.0,
    ) -> None:
        self.app_token = app_token
        self.web = web
        self.handler = handler
        self.email_ttl = email_ttl
        self._emails: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self.client: SocketModeClient | None = None

    def start(self) -> None:
        client = SocketModeClient(app_token=self.app_token, web_client=self.web, concurrency=4)
        client.socket_mode_request_listeners.append(self._on_request)
        client.connect()
        self.client = client
        log.info("slack socket mode connected")

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def run(self, stop: threading.Event) -> None:
        """The daemon's thread: connect (retrying), then hold until ``stop``."""
        for attempt in range(1_000_000):  # bounded; in practice until it connects
            if stop.is_set():
                return
            try:
                self.start()
                break
            except Exception as exc:
                wait = min(2.0**attempt, 300.0)
                log.warning("slack socket mode connect failed (%s); again in %.0f s", exc, wait)
                stop.wait(wait)
        stop.wait()
        self.close()

    # --- one envelope --------------------------------------------------------------

    def _on_request(self, client: BaseSocketModeClient, request: SocketModeRequest) -> None:
        client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))
        if request.type != "interactive":
            return
        for press in presses(request.payload, request.envelope_id):
            self.handle(press)

    def handle(self, press: ButtonPress) -> ButtonReply:
        """One press, after the ack: who pressed, the flows' work, the presser's answer."""
        try:
            reply = self.handler(replace(press, email=self.email_of(press.user_id)))
        except Exception:
            log.exception("slack press failed action=%s ticket=%s", press.action, press.ticket_id)
            reply = ButtonReply(FAILED)
        if reply.text:
            try:
                self.web.chat_postEphemeral(
                    channel=press.channel, user=press.user_id, text=reply.text
                )
            except Exception as exc:
                log.warning("slack ephemeral answer failed user=%s: %s", press.user_id, exc)
        return reply

    def email_of(self, user_id: str) -> str:
        """The email of a Slack user's profile ("" when Slack will not say)."""
        now = time.monotonic()
        with self._lock:
            cached = self._emails.get(user_id)
        if cached is not None and now - cached[0] < self.email_ttl:
            return cached[1]
        try:
            user = self.web.users_info(user=user_id).get("user") or {}
            email = str((user.get("profile") or {}).get("email") or "").strip().lower()
        except Exception as exc:
            log.warning("slack users.info failed user=%s: %s", user_id, exc)
            return ""
        with self._lock:
            self._emails[user_id] = (now, email)
        return email


__all__ = ["FAILED", "Handler", "SocketModeListener", "read_app_token"]
