"""Child process for test_signalpipe: a main loop shaped like the daemon's,
under GIL contention, hit by a storm of SIGHUPs and then a SIGTERM.

``python signal_storm.py pipe|event COUNT``: ``pipe`` waits on a SignalPipe
(what the daemon does); ``event`` is the old design, a handler that sets a
threading.Event the loop waits on, kept so the harness can be shown to catch
the hang. Prints ``reloads=N`` and exits 0 once the SIGTERM is handled.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable

from inboxd.signalpipe import SignalPipe


def contend() -> None:
    """Keep the GIL busy so the main thread is paused at arbitrary bytecodes."""
    spin = 0
    while True:
        spin += 1


def storm(target: int, count: int) -> None:
    for _ in range(count):
        os.kill(target, signal.SIGHUP)
        time.sleep(0.0001)
    os.kill(target, signal.SIGTERM)


def pipe_loop() -> Callable[[], int]:
    signals = SignalPipe((signal.SIGHUP, signal.SIGTERM))
    return lambda: run_pipe(signals)


def run_pipe(signals: SignalPipe) -> int:
    reloads = 0
    stopping = False
    while not stopping:
        caught = signals.wait(timeout=1.0)
        stopping = signal.SIGTERM in caught
        reloads += bool(caught) and not stopping
    signals.close()
    return reloads


def event_loop() -> Callable[[], int]:
    wake = threading.Event()
    flags = {"stop": False}

    def on_hup(_signum: int, _frame: object) -> None:
        wake.set()

    def on_term(_signum: int, _frame: object) -> None:
        flags["stop"] = True
        wake.set()

    signal.signal(signal.SIGHUP, on_hup)
    signal.signal(signal.SIGTERM, on_term)

    def run() -> int:
        reloads = 0
        while not flags["stop"]:
            wake.wait(1.0)
            wake.clear()
            reloads += 1
        return reloads

    return run


def main() -> None:
    mode, count = sys.argv[1], int(sys.argv[2])
    sys.setswitchinterval(0.0001)
    threading.Thread(target=contend, daemon=True).start()
    loop = pipe_loop() if mode == "pipe" else event_loop()  # handlers in place first
    # the storm comes from another process so the signals really are asynchronous
    pid = os.getpid()
    child = os.fork()
    if child == 0:
        storm(pid, count)
        os._exit(0)
    reloads = loop()
    os.waitpid(child, 0)
    print(f"reloads={reloads}", flush=True)


if __name__ == "__main__":
    main()
