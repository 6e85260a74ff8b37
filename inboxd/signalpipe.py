"""Signals delivered to the daemon's main loop as bytes on a pipe.

Why not set a ``threading.Event`` from a Python signal handler: the handler
runs in the main thread between two bytecodes, and when that moment falls
inside the same Event's ``wait()`` or ``clear()`` (which hold the Event's
non-reentrant lock), ``set()`` blocks on that lock forever. CI caught it: a
SIGHUP sent right after READY=1 hung the daemon. Here the C-level handler
writes the signal number to a pipe (``signal.set_wakeup_fd``), the Python
handler does nothing, and the main loop reads the numbers with ``select``:
no lock is ever taken inside a handler.
"""

from __future__ import annotations

import os
import select
import signal
from collections.abc import Iterable
from types import FrameType
from typing import Any


def _ignore(_signum: int, _frame: FrameType | None) -> None:
    """A Python handler must exist, else the default action (exit) applies;
    the signal itself is read from the wakeup pipe."""


class SignalPipe:
    """Catch ``signums`` and hand them out in order through :meth:`wait`.

    Must be made in the main thread (``signal`` requires it). ``close`` puts
    back the previous handlers and wakeup fd.
    """

    def __init__(self, signums: Iterable[signal.Signals]) -> None:
        self._wanted = frozenset(signums)
        self._read_fd, self._write_fd = os.pipe()
        for fd in (self._read_fd, self._write_fd):
            os.set_blocking(fd, False)
            os.set_inheritable(fd, False)
        self._previous_fd = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        self._previous: dict[signal.Signals, Any] = {
            signum: signal.signal(signum, _ignore) for signum in self._wanted
        }

    def wait(self, timeout: float) -> list[signal.Signals]:
        """The signals caught since the last call, waiting up to ``timeout`` s
        for the first; empty on timeout. Other signals Python catches (they
        share the wakeup fd) are dropped here."""
        readable, _, _ = select.select([self._read_fd], [], [], timeout)
        if not readable:
            return []
        try:
            data = os.read(self._read_fd, 512)
        except BlockingIOError:
            return []
        return [signal.Signals(byte) for byte in data if byte in self._wanted]

    def close(self) -> None:
        signal.set_wakeup_fd(self._previous_fd)
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        os.close(self._read_fd)
        os.close(self._write_fd)
