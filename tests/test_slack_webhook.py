"""The incoming-webhook set-up: alerts through slack_sdk's real WebhookClient to a local
webhook on 127.0.0.1, still through the queue (429 Retry-After, a permanent error
reported once, a server down then back), no threads, no updates, no buttons; and the
URL, a secret, in no log line, error, row or JSON output. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from servers.slack_webhook import HookReply, WebhookServer
from sqlalchemy import select
from sqlalchemy.engine import Engine
from support.clock import Clock

from inboxd.cli import main
from inboxd.config import ConfigError, SlackConfig, parse_settings
from inboxd.core.desk import events as ev
from inboxd.daemon import App, Daemon
from inboxd.db import slack_queries as sq
from inboxd.db import tickets
from inboxd.db.engine import make_engine, upgrade
from inboxd.db.tables import SlackNotice, SlackThread
from inboxd.delivery.slack import SlackDrain
from inboxd.delivery.slack_webhook import WebhookDeliverer, make_webhook_client
from inboxd.ingest.pipeline import Source
from inboxd.sdnotify import Notifier

REPO = Path(__file__).resolve().parents[1]
SECRET = WebhookServer.SECRET_PATH.rsplit("/", 1)[-1]
NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
VIP_MAIL = (
    b"From: Wile E <wile@acme.com>\r\nTo: support@help.example\r\nSubject: Rockets exploding\r\n"
    b"Message-ID: <vip-1@acme.com>\r\n\r\nThe rocket skates exploded again.\r\n"
)


@pytest.fixture
def hook() -> Iterator[WebhookServer]:
    with WebhookServer() as server:
        yield server


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    made = make_engine(db_url)
    upgrade(made)
    yield made
    made.dispose()


def settings_text(tmp_path: Path, db_url: str, slack: str) -> str:
    shutil.copytree(REPO / "rules", tmp_path / "rules")
    (tmp_path / "secret").write_text("webhook-wiring\n")
    return f"""
[database]
url = "{db_url}"
[helpdesk]
secret_file = "secret"
[templates]
dir = "{REPO / "templates"}"
[lmtp]
enabled = false
[slack]
ops_channel = "#ops"
{slack}
[[mailbox]]
name = "support"
address = "support@help.example"
"""


def a_ticket(engine: Engine) -> int:
    with engine.begin() as conn:
        made = tickets.create(
            conn,
            subject="Printer on fire",
            normalized_subject="printer on fire",
            requester="carol@customer.example",
            requester_name="Carol",
            mailbox="support",
            now=NOON,
            source="lmtp",
            actor="customer:carol@customer.example",
        )
    return made.id


def queue(
    engine: Engine, clock: Clock, ticket_id: int | None, text: str, call: str = sq.POST
) -> int:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    with engine.begin() as conn:
        row = sq.enqueue(
            conn,
            channel="#alerts",
            text=text,
            blocks=blocks,
            now=clock(),
            ticket_id=ticket_id,
            call=call,
        )
    assert row is not None
    return row


def webhook_drain(engine: Engine, url: str, clock: Clock) -> SlackDrain:
    client = make_webhook_client(SlackConfig(webhook_url=url), timeout=5)  # type: ignore[arg-type]
    assert client is not None
    return SlackDrain(
        engine,
        retry_for=3600,
        deliverer=WebhookDeliverer(lambda: client),
        clock=clock,
        rng=lambda: 0.0,
    )


def rows(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        found = conn.execute(select(SlackNotice.__table__).order_by(SlackNotice.id))  # type: ignore[attr-defined]
        return [dict(r._mapping) for r in found]


def test_daemon_posts_a_rule_alert_through_the_webhook_and_nothing_else(
    tmp_path: Path, db_url: str, hook: WebhookServer
) -> None:
    (tmp_path / "hook").write_text(hook.url + "\n")
    text = settings_text(tmp_path, db_url, f'webhook_url_file = "{tmp_path / "hook"}"')
    app = App.build(parse_settings(text, tmp_path / "inboxd.toml"))
    try:
        assert app.slack is not None and app.roots is None and app.socket is None
        assert not app.living.threads
        assert app.spikes is not None and not app.spikes.grouped  # no thread to promise
        jobs = [j.name for j in Daemon(app, notifier=Notifier(None))._jobs()]
        assert "slack-roots" not in jobs and "slack-wake" in jobs
        assert app.pipeline.ingest(VIP_MAIL, Source("lmtp", "support")).status == "stored"
        assert app.slack.run_once().sent == 1
        (posted,) = hook.posts()
        assert posted["text"].startswith("New ticket [#1] [high VIP] Rockets exploding")
        assert posted["blocks"][0]["type"] == "header"
        assert "thread_ts" not in posted and "channel" not in posted
        with app.engine.connect() as conn:
            threads = conn.execute(select(SlackThread.__table__)).all()  # type: ignore[attr-defined]
        assert threads == []  # no living root: a webhook cannot update one
        assert [(r["call"], r["status"]) for r in rows(app.engine)] == [("post", "sent")]
    finally:
        app.close()


def test_retry_after_then_sent_a_permanent_error_reported_once_down_then_back(
    engine: Engine, hook: WebhookServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = Clock(NOON)
    drain = webhook_drain(engine, hook.url, clock)
    ticket_id = a_ticket(engine)

    hook.script(HookReply(429, "rate_limited", {"Retry-After": "120"}))
    limited = queue(engine, clock, ticket_id, "first")
    assert drain.run_once().retried == 1
    clock.advance(seconds=119)
    assert drain.run_once().sent == 0
    clock.advance(seconds=1)
    assert drain.run_once().sent == 1  # exactly Retry-After later

    hook.script(HookReply(400, "invalid_blocks"))
    queue(engine, clock, ticket_id, "*bold*", call=sq.UPDATE)  # an ended spike, say: a new post
    assert drain.run_once().sent == 1
    assert "blocks" in hook.requests[-2].body and "blocks" not in hook.requests[-1].body

    hook.script(HookReply(404, "no_service"))
    gone = queue(engine, clock, ticket_id, "revoked")
    assert drain.run_once().failed == 1
    clock.advance(hours=2)
    before = len(hook.requests)
    assert drain.run_once().sent == 0 and len(hook.requests) == before  # not retried
    with engine.connect() as conn:
        failed = [e for e in tickets.typed_events(conn, ticket_id) if isinstance(e, ev.SlackFailed)]
    assert [(e.notice, e.reason) for e in failed] == [(gone, "HTTP 404 no_service")]

    hook.stop()
    down = queue(engine, clock, ticket_id, "while down")
    assert drain.run_once().retried == 1
    hook.start()  # the same port again
    clock.advance(minutes=10)
    assert drain.run_once().sent == 1
    assert [p["text"] for p in hook.posts()] == ["first", "*bold*", "while down"]

    by_id = {r["id"]: r for r in rows(engine)}
    assert by_id[limited]["status"] == "sent" and by_id[down]["status"] == "sent"
    everything = caplog.text + json.dumps([str(r) for r in rows(engine)]) + str(failed)
    assert "Connection refused" in everything or "URLError" in everything  # it was logged
    assert SECRET not in everything and "/services/" not in everything


def test_the_url_is_in_no_output_or_error(tmp_path: Path, db_url: str, hook: WebhookServer) -> None:
    path = tmp_path / "inboxd.toml"
    text = settings_text(tmp_path, db_url, f'webhook_url = "{hook.url}"')
    path.write_text(text)
    out = CliRunner().invoke(main, ["--config", str(path), "check-config"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["slack"]["webhook_url"] == "**********"
    assert SECRET not in out.output
    assert SECRET not in repr(parse_settings(text, path).slack)

    for bad in (
        f'webhook_url = "ftp://x/{SECRET}"',
        f'webhook_url = "{hook.url}"\ntoken_env = "T"',
    ):
        with pytest.raises(ConfigError) as caught:
            parse_settings(f"[slack]\n{bad}\n", path)
        assert SECRET not in str(caught.value)
    (tmp_path / "not-a-url").write_text(f"{SECRET}\n")
    config = SlackConfig(webhook_url_file=tmp_path / "not-a-url")
    with pytest.raises(ConfigError, match="not an http") as caught:
        make_webhook_client(config)
    assert SECRET not in str(caught.value)
    with pytest.raises(ValueError, match="not both"):
        SlackConfig.model_validate({"webhook_url_env": "H", "token_env": "T"})
