"""A stand-in for the Slack Web API on 127.0.0.1 (stdlib http.server in a thread).

Point slack_sdk's real ``WebClient`` at it with ``base_url=server.base_url``.
It records every request (method, headers, decoded JSON or form body) and
answers ``{"ok": true, "ts": ...}`` unless a scripted reply is queued:
``server.script(Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}))``
or ``Reply.error("channel_not_found")``. Scripted replies are used in order,
one per request. ``stop()`` closes the port (the client then gets connection
refused); ``SlackApiServer(port=old_port).start()`` brings it back on the same
address. ``server.answer(method, make)`` answers one method with a function of
the request body (GET requests are recorded with their query as the body).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from servers.local_http import LocalHttpServer, OwnedServer, StandInHandler


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: dict[str, Any] = field(default_factory=lambda: {"ok": True})
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def error(cls, error: str) -> Reply:
        """Slack's way to fail: HTTP 200 with ``ok: false``."""
        return cls(200, {"ok": False, "error": error})

    @classmethod
    def rate_limited(cls, retry_after: int = 1) -> Reply:
        return cls(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)})


@dataclass(frozen=True)
class Request:
    method: str  # the API method, e.g. chat.postMessage
    headers: dict[str, str]
    body: dict[str, Any]
    status: int  # what we answered
    ok: bool  # ... and whether that answer said ok


class _Handler(StandInHandler):
    server: _Server

    def do_GET(self) -> None:  # users.info and other reads send their arguments in the URL
        path, _, query = self.path.partition("?")
        self._answer(path, {k: v[0] for k, v in parse_qs(query).items()})

    def do_POST(self) -> None:
        raw = self.body_text()
        ctype = self.headers.get("Content-Type") or ""
        if "json" in ctype:
            body: dict[str, Any] = json.loads(raw or "{}")
        else:
            body = {k: v[0] for k, v in parse_qs(raw).items()}
        self._answer(self.path.partition("?")[0], body)

    def _answer(self, path: str, body: dict[str, Any]) -> None:
        method = path.rsplit("/", 1)[-1]
        reply = self.server.owner.next_reply(method, body)
        self.server.owner.record(
            Request(
                method,
                {k.lower(): v for k, v in self.headers.items()},
                body,
                reply.status,
                bool(reply.body.get("ok")),
            )
        )
        data = json.dumps(reply.body).encode()
        self.answer(reply.status, "application/json; charset=utf-8", data, reply.headers)


class _Server(OwnedServer):
    owner: SlackApiServer


class SlackApiServer(LocalHttpServer):
    handler = _Handler
    server_class = _Server

    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        self._lock = threading.Lock()
        self._script: list[Reply] = []
        self._answers: dict[str, Callable[[dict[str, Any]], Reply]] = {}
        self._requests: list[Request] = []
        self._counter = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/api/"

    # --- behaviour ----------------------------------------------------------------------

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def answer(self, method: str, make: Callable[[dict[str, Any]], Reply]) -> None:
        """Answer every ``method`` request with ``make(body)`` (scripted replies still
        come first): e.g. ``users.info`` with a profile, ``apps.connections.open`` with
        a websocket URL."""
        with self._lock:
            self._answers[method] = make

    def next_reply(self, method: str, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self._script:
                return self._script.pop(0)
            make = self._answers.get(method)
        if make is not None:
            return make(body)
        with self._lock:
            self._counter += 1
            ts = f"1700000000.{self._counter:06d}"
        return Reply(200, {"ok": True, "channel": body.get("channel", ""), "ts": ts})

    def record(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def posts(self) -> list[Request]:
        """chat.postMessage requests that were answered ok (what reached the channel)."""
        return [r for r in self.requests if r.method == "chat.postMessage" and r.ok]
