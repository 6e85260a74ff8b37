"""What every local HTTP stand-in shares: a threaded server on 127.0.0.1 and its life.

A stand-in (``slack_api``, ``slack_webhook``) names its request handler and
server class; handlers reach the stand-in as ``self.server.owner``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class StandInHandler(BaseHTTPRequestHandler):
    """Reads a request body and sends a scripted answer; logs nothing (test output)."""

    def body_text(self) -> str:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length).decode("utf-8")

    def answer(
        self, status: int, content_type: str, data: bytes, headers: Mapping[str, str]
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return


class OwnedServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: Any


class LocalHttpServer:
    """Serves ``handler`` on ``port`` (0: a free one) in a thread until ``stop``."""

    handler: type[StandInHandler]
    server_class: type[OwnedServer] = OwnedServer

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._server: OwnedServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        server = self.server_class(("127.0.0.1", self._port), self.handler)
        server.owner = self
        self._server = server
        self._port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port
