"""A desk's data out (export), retention (purge) and erasure (forget), on both databases."""

from __future__ import annotations

import json
import mailbox
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from mailflow_kit import Desk, mail, make_desk, reply_to_notification
from sqlalchemy import inspect, text

from inboxd.cli import main
from inboxd.core.desk import Status
from inboxd.core.desk import transitions as tr
from inboxd.db import tickets

CAROL = "carol@customer.example"
ATTACHED = (
    'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
    "Content-Type: text/plain\r\n\r\nMy invoice, see attached.\r\n--b\r\n"
    'Content-Type: application/pdf; name="invoice.pdf"\r\n'
    "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKY2Fyb2wncyBpbnZvaWNl\r\n--b--\r\n"
)


@pytest.fixture
def desk(tmp_path: Path, db_url: str) -> Desk:
    desk = make_desk(tmp_path, url=db_url)
    carol = desk.deliver(mail(body="It does not print.\nCall me, carol@customer.example\n"))
    [note] = [m for m in desk.outbox_mails("notify") if "alice" in str(m["To"])]
    desk.deliver(reply_to_notification(note, body="Hello Carol (CAROL@customer.example), fixed.\n"))
    raw = mail(sender="Carol <carol@customer.example>", subject="Invoice", msgid="c2@x")
    desk.deliver(raw)
    desk.deliver(
        mail(sender="Carol <carol@customer.example>", subject="Invoice 2", msgid="c3@x").split(
            b"MIME-Version"
        )[0]
        + b"MIME-Version: 1.0\r\n"
        + ATTACHED.encode()
    )
    desk.deliver(mail(sender="Dave <dave@other.example>", subject="Hello", msgid="d1@x"))
    assert carol.ticket_id is not None
    return desk


def config(tmp_path: Path, db_url: str) -> Path:
    (tmp_path / "secret").write_text("data-out-secret\n")
    cfg = tmp_path / "inboxd.toml"
    cfg.write_text(
        f'[database]\nurl = "{db_url}"\n[helpdesk]\nsecret_file = "secret"\n'
        f'[rules]\ndir = "{tmp_path / "rules"}"\n[[mailbox]]\nname = "support"\n'
        'address = "support@help.example"\n'
    )
    return cfg


def cli(cfg: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["--config", str(cfg), *args])
    assert result.exit_code == 0, result.output
    return result.output


def everything(desk: Desk) -> str:
    """Every row of every table as text, bytes included (what is in the database)."""
    chunks = []
    with desk.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        chunks.append(bytes(value).decode("latin-1"))
                    else:
                        chunks.append(str(value))
    return "\n".join(chunks).lower()


def test_export_is_the_documented_json_and_an_mbox(desk: Desk, tmp_path: Path, db_url: str) -> None:
    cfg = config(tmp_path, db_url)
    out = cli(cfg, "export", "--mbox", str(tmp_path / "all.mbox"))
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [t["requester"] for t in lines] == [CAROL, CAROL, CAROL, "dave@other.example"]
    shown = json.loads(cli(cfg, "tickets", "show", str(lines[0]["id"]), "--json"))
    assert {k: v for k, v in lines[0].items() if k != "sla"} == {
        k: v for k, v in shown.items() if k != "sla"
    }
    box = mailbox.mbox(str(tmp_path / "all.mbox"))
    assert len(box) == sum(len(t["messages"]) for t in lines) == 5
    assert {str(m["Message-ID"]) for m in box} >= {"<c1@customer.example>", "<d1@x>"}
    one = [
        json.loads(x)
        for x in cli(cfg, "export", "--ticket", str(lines[3]["id"])).splitlines()
        if x.startswith("{")
    ]
    assert [t["id"] for t in one] == [lines[3]["id"]]


def test_forget_leaves_no_trace_and_keeps_the_counts(
    desk: Desk, tmp_path: Path, db_url: str
) -> None:
    cfg = config(tmp_path, db_url)
    assert CAROL in everything(desk)
    before = cli(cfg, "tickets", "list", "--json")
    dry = cli(cfg, "forget", CAROL, "--dry-run")
    assert "would change 3 tickets" in dry and CAROL in everything(desk)
    cli(cfg, "forget", CAROL)
    assert CAROL not in everything(desk)
    if db_url.startswith("sqlite"):
        path = Path(db_url.removeprefix("sqlite:///"))
        on_disk = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        assert CAROL.encode() not in on_disk.lower()
    after = json.loads(cli(cfg, "tickets", "list", "--json"))
    assert len(after) == len(json.loads(before))
    exported = cli(cfg, "export", "--mbox", str(tmp_path / "after.mbox"))
    assert CAROL not in exported.lower()
    assert CAROL.encode() not in (tmp_path / "after.mbox").read_bytes().lower()
    dave = [t for t in after if t["requester"] == "dave@other.example"]
    assert len(dave) == 1
    with desk.engine.connect() as conn:
        kinds = [e.kind for e in tickets.typed_events(conn, after[0]["id"])]
    assert kinds[-1] == "forgotten"


def test_purge_removes_old_closed_tickets_and_their_raw_mail(
    desk: Desk, tmp_path: Path, db_url: str
) -> None:
    cfg = config(tmp_path, db_url)
    with desk.engine.begin() as conn:
        old = tickets.load(conn, 1)
        assert old is not None
        long_ago = old.created_at - timedelta(days=800)
        tickets.save(conn, tr.change_status(old, Status.CLOSED, actor="agent:a", now=long_ago))
    assert "would purge 1 tickets" in cli(cfg, "purge", "--older-than", "2y", "--dry-run")
    assert "purged 1 tickets" in cli(cfg, "purge", "--older-than", "2y")
    remaining = [t["id"] for t in json.loads(cli(cfg, "tickets", "list", "--json"))]
    assert 1 not in remaining and len(remaining) == 3
    assert "it does not print" not in everything(desk)
