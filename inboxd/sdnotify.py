"""systemd's sd_notify in stdlib: READY, RELOADING, STOPPING, STATUS, WATCHDOG.

A no-op when ``$NOTIFY_SOCKET`` is unset (not under systemd), so the daemon
calls it unconditionally. PyPI's sdnotify was last released in 2017; this is
the whole protocol.
"""

from __future__ import annotations

import os
import socket
import time


class Notifier:
    def __init__(self, address: str | None) -> None:
        if address and address.startswith("@"):
            address = "\0" + address[1:]  # abstract namespace socket
        self.address = address

    @classmethod
    def from_env(cls) -> Notifier:
        return cls(os.environ.get("NOTIFY_SOCKET"))

    def send(self, *lines: str) -> bool:
        if not self.address:
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            try:
                sock.sendto("\n".join(lines).encode(), self.address)
            except OSError:
                return False
        return True

    def ready(self, status: str = "") -> None:
        self.send("READY=1", f"STATUS={status}")

    def reloading(self) -> None:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def watchdog(self, status: str = "") -> None:
        """The main loop is alive; ``status`` refreshes the one-line STATUS= too."""
        self.send("WATCHDOG=1", *([f"STATUS={status}"] if status else []))

    @staticmethod
    def watchdog_interval() -> float | None:
        """Seconds between WATCHDOG=1 pings: half of systemd's ``WatchdogSec=``
        (``$WATCHDOG_USEC``), None when no watchdog watches this process."""
        usec = os.environ.get("WATCHDOG_USEC", "")
        pid = os.environ.get("WATCHDOG_PID", "")
        if not usec.isdigit() or int(usec) <= 0 or (pid and pid != str(os.getpid())):
            return None
        return int(usec) / 2_000_000
