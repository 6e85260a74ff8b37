"""Slack wired through the composition root: a rule's `slack:` action and the
ops alert for a broken rules edit reach slack-sdk's real client on a local API."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers.slack_api import SlackApiServer

from inboxd.config import parse_settings
from inboxd.daemon import App, Daemon
from inboxd.ingest.pipeline import Source
from inboxd.sdnotify import Notifier

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def slack_api() -> Iterator[SlackApiServer]:
    with SlackApiServer() as server:
        yield server


def build_app(
    tmp_path: Path, slack: SlackApiServer, monkeypatch: pytest.MonkeyPatch, extra: str = ""
) -> App:
    shutil.copytree(REPO / "rules", tmp_path / "rules")
    (tmp_path / "secret").write_text("slack-wiring\n")
    monkeypatch.setenv("INBOXD_TEST_SLACK_TOKEN", "xoxb-test")
    cfg = tmp_path / "inboxd.toml"
    text = f"""
[database]
url = "sqlite:///{tmp_path / "db.sqlite"}"
[helpdesk]
secret_file = "secret"
[templates]
dir = "{REPO / "templates"}"
[lmtp]
enabled = false
[slack]
token_env = "INBOXD_TEST_SLACK_TOKEN"
base_url = "{slack.base_url}"
ops_channel = "#ops"
{extra}
[[mailbox]]
name = "support"
address = "support@help.example"
"""
    return App.build(parse_settings(text, cfg))


VIP_MAIL = (
    b"From: Wile E <wile@acme.com>\r\nTo: support@help.example\r\nSubject: Rockets exploding\r\n"
    b"Message-ID: <vip-1@acme.com>\r\n\r\nThe rocket skates exploded again.\r\n"
)


def test_rule_slack_action_posts_once(
    tmp_path: Path, slack_api: SlackApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = build_app(tmp_path, slack_api, monkeypatch)
    assert app.slack is not None
    outcome = app.pipeline.ingest(VIP_MAIL, Source("lmtp", "support"))
    assert outcome.status == "stored"
    app.pipeline.ingest(VIP_MAIL, Source("lmtp", "support"))  # duplicate: no second post
    report = app.slack.run_once()
    posts = [r for r in slack_api.requests if r.method == "chat.postMessage"]
    # the ticket's living root, then the alert in its thread
    assert len(posts) == 2 and report is not None
    assert [p.body["channel"] for p in posts] == ["#support-vip"] * 2
    assert "thread_ts" not in posts[0].body and posts[1].body["thread_ts"]
    assert "Rockets exploding" in posts[0].body["text"]
    assert "Rockets exploding" in posts[1].body["text"]
    assert app.slack.run_once() is not None
    assert len([r for r in slack_api.requests if r.method == "chat.postMessage"]) == 2


def test_broken_rules_edit_alerts_ops_once_and_keeps_old_rules(
    tmp_path: Path, slack_api: SlackApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = build_app(tmp_path, slack_api, monkeypatch)
    assert app.slack is not None
    daemon = Daemon(app, notifier=Notifier(None))
    before = app.rules.current
    (tmp_path / "rules" / "50-broken.yaml").write_text(
        "rules:\n  - name: typo\n    when: {subjct: x}\n    then: {tag: y}\n"
    )
    assert daemon.reload_rules(trigger="test") is False
    assert daemon.reload_rules(trigger="test") is False  # same broken set: one alert only
    assert app.rules.current is before
    app.slack.run_once()
    posts = [r for r in slack_api.requests if r.method == "chat.postMessage"]
    assert len(posts) == 1 and posts[0].body["channel"] == "#ops"
    assert "1 error" in posts[0].body["text"]
    assert "50-broken.yaml:3" in str(posts[0].body["blocks"])
    # mail keeps flowing under the old rules
    assert app.pipeline.ingest(VIP_MAIL, Source("lmtp", "support")).status == "stored"


def test_socket_mode_wired_only_with_an_app_token(
    tmp_path: Path, slack_api: SlackApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = build_app(tmp_path, slack_api, monkeypatch)
    assert app.socket is None and app.roots is not None and not app.living.buttons
    jobs = [j.name for j in Daemon(app, notifier=Notifier(None))._jobs()]
    assert "slack-roots" in jobs
    app.close()

    monkeypatch.setenv("INBOXD_TEST_SLACK_APP_TOKEN", "xapp-test")
    (tmp_path / "b").mkdir()
    extra = 'app_token_env = "INBOXD_TEST_SLACK_APP_TOKEN"'
    interactive = build_app(tmp_path / "b", slack_api, monkeypatch, extra)
    assert interactive.socket is not None and interactive.living.buttons
    assert interactive.socket.app_token == "xapp-test"
    interactive.close()


def test_quiet_hours_wired_with_their_summary_job(
    tmp_path: Path, slack_api: SlackApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = build_app(tmp_path, slack_api, monkeypatch)
    assert app.summaries is None and app.living.quiet is None
    assert "slack-quiet" not in [j.name for j in Daemon(app, notifier=Notifier(None))._jobs()]
    app.close()

    (tmp_path / "q").mkdir()
    extra = '[slack.quiet_hours]\nkinds = ["new_vip", "sla_warning"]\ncalendar = "office-eu"'
    quiet = build_app(tmp_path / "q", slack_api, monkeypatch, extra)
    assert quiet.summaries is not None and quiet.living.quiet is not None
    assert quiet.living.quiet.kinds == {"new_vip", "sla_warning"}
    assert quiet.living.quiet.calendar_of("billing") == "office-eu"
    assert "slack-quiet" in [j.name for j in Daemon(quiet, notifier=Notifier(None))._jobs()]
    quiet.close()
