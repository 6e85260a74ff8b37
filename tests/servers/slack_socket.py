"""A stand-in for Slack's Socket Mode websocket on 127.0.0.1 (the ``websockets``
package's threaded server).

Answer ``apps.connections.open`` on the HTTP stand-in with ``server.url``; a
client that connects gets Slack's ``hello``. ``push(envelope)`` sends an
envelope to the connected client; every message the client sends back that
carries an ``envelope_id`` (its ack) is kept in ``acks`` with the time it came.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve


class SocketModeServer:
    def __init__(self) -> None:
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._conn: ServerConnection | None = None
        self._lock = threading.Lock()
        self.connected = threading.Event()
        self.acks: list[tuple[str, float]] = []  # (envelope_id, time.monotonic())

    def start(self) -> SocketModeServer:
        self._server = serve(self._handle, "127.0.0.1", 0)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}/link"

    def _handle(self, conn: ServerConnection) -> None:
        hello = {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A1"}}
        conn.send(json.dumps(hello))
        with self._lock:
            self._conn = conn
        self.connected.set()
        try:
            for message in conn:
                data = json.loads(message)
                if isinstance(data, dict) and data.get("envelope_id"):
                    with self._lock:
                        self.acks.append((str(data["envelope_id"]), time.monotonic()))
        except ConnectionClosed:
            return

    def push(self, envelope: dict[str, Any]) -> float:
        """Send one envelope to the client; when it was sent (time.monotonic())."""
        with self._lock:
            conn = self._conn
        assert conn is not None, "no client connected"
        sent = time.monotonic()
        conn.send(json.dumps(envelope))
        return sent

    def ack_of(self, envelope_id: str) -> float | None:
        with self._lock:
            return next((at for eid, at in self.acks if eid == envelope_id), None)
