"""A stand-in for a Slack incoming webhook on 127.0.0.1 (stdlib http.server in a thread).

Point slack_sdk's real ``WebhookClient`` at ``server.url`` (a path that looks like
``/services/T.../B.../SECRET``). It records every POST (path and JSON body) and
answers ``200 ok`` as Slack does, unless a scripted reply is queued:
``server.script(HookReply(429, "rate_limited", {"Retry-After": "120"}))`` or
``HookReply(404, "no_service")``; used in order, one per request. ``stop()``
closes the port (connection refused).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from servers.local_http import LocalHttpServer, OwnedServer, StandInHandler


@dataclass(frozen=True)
class HookReply:
    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HookRequest:
    path: str
    body: dict[str, Any]
    status: int  # what we answered


class _Handler(StandInHandler):
    server: _Server

    def do_POST(self) -> None:
        body = json.loads(self.body_text() or "{}")
        owner = self.server.owner
        reply = owner.next_reply()
        owner.record(HookRequest(self.path, body, reply.status))
        self.answer(reply.status, "text/html", reply.body.encode(), reply.headers)


class _Server(OwnedServer):
    owner: WebhookServer


class WebhookServer(LocalHttpServer):
    SECRET_PATH = "/services/T0TEST/B0TEST/sEcReTwEbHoOkToKeN42"
    handler = _Handler
    server_class = _Server

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._script: list[HookReply] = []
        self._requests: list[HookRequest] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.SECRET_PATH}"

    def script(self, *replies: HookReply) -> None:
        with self._lock:
            self._script.extend(replies)

    def next_reply(self) -> HookReply:
        with self._lock:
            return self._script.pop(0) if self._script else HookReply()

    def record(self, request: HookRequest) -> None:
        with self._lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[HookRequest]:
        with self._lock:
            return list(self._requests)

    def posts(self) -> list[dict[str, Any]]:
        """The bodies answered 200 ok (what reached the channel)."""
        return [r.body for r in self.requests if r.status == 200]
