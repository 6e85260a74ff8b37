"""Logging to stderr: text for a terminal, or one JSON object per line.

Messages are written as ``key=value`` pairs by the callers (``ticket=12
msgid=<...>``); the JSON format lifts those pairs into fields of their own,
so every line about a ticket carries its id and Message-ID as fields a log
pipeline can filter on. Bodies and secrets are never logged.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Literal

_PAIR = re.compile(r"(?<![\w-])([a-z_][a-z0-9_]*)=(\S+)")

LogFormat = Literal["text", "json"]


class JsonFormatter(logging.Formatter):
    """One object a line: time, level, logger, message, the message's key=value pairs."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        data: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": message,
        }
        for key, value in _PAIR.findall(message):
            if key not in data:
                data[key] = int(value) if value.isdigit() else value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def setup_logging(level: int = logging.INFO, fmt: LogFormat = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s", "%Y-%m-%dT%H:%M:%S")
        )
    root = logging.getLogger("inboxd")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
