"""Logging to stderr for journald: one line per event, subsystem logger names.

Messages are written as ``key=value`` pairs by the callers; bodies and
secrets are never logged.
"""

from __future__ import annotations

import logging
import sys


def setup_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s", "%Y-%m-%dT%H:%M:%S")
    )
    root = logging.getLogger("inboxd")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
