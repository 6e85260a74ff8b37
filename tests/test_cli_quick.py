"""tickets list on SQLite through cli.quick prints exactly what the ORM path prints."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from mailflow_kit import mail, make_desk, reply_to_notification

from inboxd.cli import main, quick

RULES = """
version: 1
teams:
  frontline:
    agents:
      - {name: alice, email: alice@help.example}
rules:
  - name: printers
    when: {subject: printer}
    then: {tag: [printer, hardware], team: frontline, priority: high}
  - name: vip
    when: {from: ["*@vip.example"]}
    then: {vip: true, sla: gold}
sla_policies:
  gold: {first_response: 1h}
"""


@pytest.mark.parametrize("args", [[], ["--json"], ["--csv"], ["--status", "open", "--json"]])
def test_the_quick_path_prints_what_the_orm_path_prints(
    tmp_path: Path, args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = make_desk(tmp_path, rules=RULES)
    desk.deliver(mail())
    desk.deliver(mail(sender="Boss <boss@vip.example>", subject="Invoice", msgid="v1@x"))
    [note] = [m for m in desk.outbox_mails("notify") if "alice" in str(m["To"])][:1]
    desk.deliver(reply_to_notification(note, body="On it.\n"))  # ticket 1 opens
    (tmp_path / "secret").write_text("s\n")
    cfg = tmp_path / "inboxd.toml"
    cfg.write_text(
        '[database]\nurl = "sqlite:///desk.db"\n[helpdesk]\nsecret_file = "secret"\n'
        '[[mailbox]]\nname = "support"\naddress = "support@help.example"\n'
    )
    assert quick.sqlite_file(str(cfg)) == tmp_path / "desk.db"
    fast = CliRunner().invoke(main, ["--config", str(cfg), "tickets", "list", *args])
    monkeypatch.setattr(quick, "sqlite_file", lambda _config: None)
    slow = CliRunner().invoke(main, ["--config", str(cfg), "tickets", "list", *args])
    assert fast.exit_code == slow.exit_code == 0, (fast.output, slow.output)
    assert fast.output == slow.output
    assert "Printer broken" in fast.output or args[-2:] == ["open", "--json"]


def test_another_database_or_no_config_takes_the_ordinary_path(tmp_path: Path) -> None:
    cfg = tmp_path / "inboxd.toml"
    cfg.write_text('[database]\nurl = "postgresql+psycopg://x@127.0.0.1/x"\n')
    assert quick.sqlite_file(str(cfg)) is None
    assert quick.sqlite_file(str(tmp_path / "missing.toml")) is None
    cfg.write_text('[database]\nurl = "sqlite:///nothing-here.db"\n')
    assert quick.sqlite_file(str(cfg)) is None  # no file: the ordinary path says why
