"""--log-format json: one object per line, and a line about a ticket names it as fields."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from mailflow_kit import mail, make_desk

from inboxd.logs import setup_logging


def test_json_lines_carry_the_ticket_and_message_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    desk = make_desk(tmp_path)
    setup_logging(logging.INFO, "json")
    try:
        from inboxd.core.inbound import Source

        desk.pipeline.ingest(mail(), Source("lmtp", "support"))
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    finally:
        setup_logging(logging.INFO, "text")
    assert lines and all({"ts", "level", "logger", "msg"} <= set(line) for line in lines)
    [ingest] = [line for line in lines if line["msg"].startswith("ingest ")]
    assert ingest["ticket"] == 1 and ingest["msgid"] == "c1@customer.example"
    assert ingest["level"] == "info" and ingest["logger"] == "inboxd.ingest"
    queued = [line for line in lines if line["msg"].startswith("queued ")]
    assert queued and all(line["ticket"] == 1 for line in queued)
