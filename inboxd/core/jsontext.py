"""Compact JSON text, written and read by orjson with the standard library as the fallback.

Ingest writes JSON for every event, outbox row and tag list; orjson writes it
several times faster than ``json.dumps``. What orjson refuses and the standard
library takes (a lone surrogate from an undecodable header, an integer beyond
64 bits) is written by ``json.dumps`` instead, so no value that could be
stored before fails now; a value neither can write raises TypeError as before.
Reading is the same pair the other way round (reports read millions of rows).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

# datetimes go to ``default`` too (orjson would write a bare string); int keys become strings
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS


def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> str:
    """``json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=default)``."""
    try:
        return orjson.dumps(value, default=default, option=_OPTIONS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=default)


def loads(text: str | bytes) -> Any:
    """``json.loads(text)``; what orjson refuses to read (NaN, a lone surrogate's
    escape, written by older versions through ``json.dumps``) is read by ``json``."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
