"""``inboxd status`` and ``check-config`` never print a database password."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from inboxd.cli import main
from inboxd.config import mask_url


def test_mask_url_hides_only_the_password() -> None:
    assert mask_url("postgresql+psycopg://inboxd:s3cr%40t@db:5432/x") == (
        "postgresql+psycopg://inboxd:***@db:5432/x"
    )
    assert mask_url("error talking to imap://u:pw@host/ and sqlite:///var/x.db") == (
        "error talking to imap://u:***@host/ and sqlite:///var/x.db"
    )
    assert mask_url("postgresql://inboxd@db/x") == "postgresql://inboxd@db/x"


def test_check_config_masks_the_database_password(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s\n")
    cfg = tmp_path / "inboxd.toml"
    cfg.write_text(
        '[database]\nurl = "postgresql+psycopg://inboxd:hunter2@db.example/inboxd"\n'
        '[helpdesk]\nsecret_file = "secret"\n'
        '[[mailbox]]\nname = "support"\naddress = "support@help.example"\n'
    )
    result = CliRunner().invoke(main, ["--config", str(cfg), "check-config"])
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output
    shown = json.loads(result.output)["database"]["url"]
    assert shown == "postgresql+psycopg://inboxd:***@db.example/inboxd"
