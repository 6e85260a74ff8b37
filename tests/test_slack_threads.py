"""One living Slack message per ticket: the root, the alerts in its thread, chat.update
when the ticket changes, a deleted root posted again; slack_sdk's real WebClient
against the local Web API stand-in, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers.slack_api import Reply, SlackApiServer
from slack_kit import SlackDesk, make_slack_desk
from sqlmodel import Session

from inboxd.db import slack_queries as sq
from inboxd.db import tickets


@pytest.fixture
def api() -> Iterator[SlackApiServer]:
    with SlackApiServer() as server:
        yield server


@pytest.fixture
def desk(
    tmp_path: Path, db_url: str, api: SlackApiServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SlackDesk]:
    made = make_slack_desk(tmp_path, db_url, api, monkeypatch)
    yield made
    made.engine.dispose()


def flat(body: dict[str, object]) -> str:
    return json.dumps(body.get("blocks") or [])


def posted(desk: SlackDesk, ticket_id: int) -> str:
    """Post the first alert's root and reply; the root's ts."""
    assert desk.alert(ticket_id, "first alert", f"a1:{ticket_id}") is not None
    assert desk.drain.run_once().sent == 2
    thread = desk.thread(ticket_id)
    assert thread is not None and thread.ts
    return thread.ts


def test_first_alert_posts_root_then_later_alerts_go_into_its_thread(desk: SlackDesk) -> None:
    ticket = desk.ticket()
    ts = posted(desk, ticket.id)
    assert desk.alert(ticket.id, "second alert", "a2") is not None
    assert desk.alert(ticket.id, "second alert", "a2") is None  # the same alert: once
    assert desk.drain.run_once().sent == 1

    root, first, second = desk.calls("chat.postMessage")
    assert "thread_ts" not in root and root["channel"] == "#alerts"
    assert "Printer on fire" in str(root["text"]) and "Carol" in flat(root)
    assert "frontline" in flat(root)  # team / assignee
    assert first["thread_ts"] == ts and first["text"] == "first alert"
    assert second["thread_ts"] == ts and second["text"] == "second alert"
    with Session(desk.engine) as session:
        calls = sorted(str(r["call"]) for r in sq.list_rows(session, ticket_id=ticket.id))
    assert calls == ["reply", "reply", "root"]

    # another ticket gets its own root; the same ticket in another channel too
    other = desk.ticket("Other")
    desk.alert(other.id, "x", "o1")
    desk.alert(ticket.id, "elsewhere", "e1", channel="#leads")
    assert desk.drain.run_once().sent == 4
    roots = [b for b in desk.calls("chat.postMessage") if "thread_ts" not in b]
    assert [r["channel"] for r in roots] == ["#alerts", "#alerts", "#leads"]


def test_root_updated_after_assign_pending_solve_and_not_when_unchanged(
    desk: SlackDesk,
) -> None:
    ticket = desk.ticket()
    ts = posted(desk, ticket.id)
    assert desk.sync.run_once() == 0  # nothing changed: no chat.update

    shown: list[str] = []
    for how in ("assign", "pending", "solved"):
        desk.clock.advance(minutes=5)
        desk.change(ticket.id, how)
        assert desk.sync.run_once() == 1
        assert desk.sync.run_once() == 0  # the update is on its way: not queued twice
        assert desk.drain.run_once().sent == 1
        update = desk.calls("chat.update")[-1]
        assert update["ts"] == ts and update["channel"] == "#alerts"
        shown.append(flat(update))
        assert desk.sync.run_once() == 0  # Slack shows the ticket as it is now
    assert "alice" in shown[0] and "Status*\\nnew" in shown[0]
    assert "Status*\\npending" in shown[1]
    assert "Status*\\nsolved" in shown[2]
    assert len(desk.calls("chat.update")) == 3
    assert len(desk.calls("chat.postMessage")) == 2  # no new root was posted


def test_root_shows_the_breach_when_the_sla_target_passes(desk: SlackDesk) -> None:
    ticket = desk.ticket(sla=True)  # first response 2 business hours: due 14:00 on Monday
    posted(desk, ticket.id)
    root = desk.calls("chat.postMessage")[0]
    assert "first response due 2026-03-02 14:00 UTC" in flat(root)

    desk.clock.advance(hours=1)
    assert desk.sync.run_once() == 0  # still due at 14:00: the same message
    desk.clock.advance(hours=1, minutes=1)
    assert desk.sync.run_once() == 1
    desk.drain.run_once()
    update = desk.calls("chat.update")[-1]
    assert "first response breached since 2026-03-02 14:00 UTC" in flat(update)
    assert str(update["text"]).endswith(
        "SLA :rotating_light: first response breached since 2026-03-02 14:00 UTC"
    )


def test_deleted_root_is_posted_again_and_the_thread_follows_it(desk: SlackDesk) -> None:
    ticket = desk.ticket()
    old_ts = posted(desk, ticket.id)
    desk.change(ticket.id, "assign")
    desk.api.script(Reply.error("message_not_found"))  # someone deleted the root in Slack
    assert desk.sync.run_once() == 1
    report = desk.drain.run_once()
    assert (report.sent, report.failed) == (1, 0)
    methods = [r.method for r in desk.api.requests]
    assert methods[-2:] == ["chat.update", "chat.postMessage"]
    again = desk.calls("chat.postMessage")[-1]
    assert "thread_ts" not in again and "alice" in flat(again)
    thread = desk.thread(ticket.id)
    assert thread is not None and thread.ts and thread.ts != old_ts

    desk.alert(ticket.id, "later", "a-later")
    desk.drain.run_once()
    assert desk.calls("chat.postMessage")[-1]["thread_ts"] == thread.ts
    assert desk.sync.run_once() == 0  # the re-posted root shows the current state


def test_rate_limited_update_then_sent(desk: SlackDesk) -> None:
    ticket = desk.ticket()
    posted(desk, ticket.id)
    desk.change(ticket.id, "pending")
    desk.sync.run_once()
    desk.api.script(Reply.rate_limited(retry_after=1))
    started = time.monotonic()
    report = desk.drain.run_once()
    assert report.sent == 1 and report.retried == 0
    assert time.monotonic() - started >= 1.0  # Retry-After honoured before the retry
    statuses = [(r.method, r.status) for r in desk.api.requests][-2:]
    assert statuses == [("chat.update", 429), ("chat.update", 200)]


def test_permanent_error_on_update_is_reported_once(desk: SlackDesk) -> None:
    ticket = desk.ticket()
    posted(desk, ticket.id)
    desk.change(ticket.id, "assign")
    desk.sync.run_once()
    desk.api.script(Reply.error("channel_not_found"))
    assert desk.drain.run_once().failed == 1
    for _ in range(3):  # the ticket keeps changing; nothing retries the broken root
        desk.clock.advance(minutes=1)
        desk.change(ticket.id, "pending" if _ % 2 == 0 else "open")
        assert desk.sync.run_once() == 0
        assert desk.drain.run_once().claimed == 0
    with Session(desk.engine) as session:
        failed = [e for e in tickets.event_rows(session, ticket.id) if e.kind == "slack_failed"]
    assert [e.data["reason"] for e in failed] == ["channel_not_found"]
    assert [r.method for r in desk.api.requests].count("chat.update") == 1
    # the next alert starts a new root (say, after the bot was invited back)
    desk.alert(ticket.id, "again", "a-again")
    assert desk.drain.run_once().sent == 2
    assert desk.thread(ticket.id) is not None


def test_reply_waits_for_its_root(desk: SlackDesk) -> None:
    ticket = desk.ticket()
    desk.api.script(Reply(500, {"ok": False, "error": "internal_error"}))
    desk.alert(ticket.id, "first", "w1")
    report = desk.drain.run_once()
    assert (report.sent, report.retried) == (0, 2)  # the root failed; the reply waits for it
    assert [r.method for r in desk.api.requests] == ["chat.postMessage"]
    desk.clock.advance(minutes=2)
    assert desk.drain.run_once().sent == 2
    root, reply = desk.calls("chat.postMessage")[1:]
    thread = desk.thread(ticket.id)
    assert thread is not None and reply["thread_ts"] == thread.ts and "thread_ts" not in root
