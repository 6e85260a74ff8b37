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


def test_tickets_list_pages_and_says_when_there_is_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15: ``--json`` returned the oldest 1,000 tickets and said nothing of the
    rest. ``--limit``/``--after ID`` page by id (stable while mail arrives), and a
    full page says on stderr how to ask for the next, stdout staying a JSON list;
    the quick and the ORM path page alike."""
    import json

    desk = make_desk(tmp_path, rules=RULES)
    for n in range(3):
        desk.deliver(mail(subject=f"Question {n}", msgid=f"q{n}@customer.example"))
    (tmp_path / "secret").write_text("s\n")
    cfg = tmp_path / "inboxd.toml"
    cfg.write_text(
        '[database]\nurl = "sqlite:///desk.db"\n[helpdesk]\nsecret_file = "secret"\n'
        '[[mailbox]]\nname = "support"\naddress = "support@help.example"\n'
    )

    def pages() -> list[tuple[list[int], str]]:
        out = []
        for args in (["--limit", "2"], ["--limit", "2", "--after", "2"]):
            done = CliRunner().invoke(
                main, ["--config", str(cfg), "tickets", "list", "--json", *args]
            )
            assert done.exit_code == 0, done.output
            out.append(([t["id"] for t in json.loads(done.stdout)], done.stderr))
        return out

    fast = pages()
    assert [ids for ids, _ in fast] == [[1, 2], [3]]
    assert "--after 2" in fast[0][1] and fast[1][1] == ""
    monkeypatch.setattr(quick, "sqlite_file", lambda _config: None)
    assert pages() == fast
