"""Buttons on the living message through Socket Mode: slack_sdk's builtin client
against a local websocket stand-in (tests/servers/slack_socket.py) and the local
Web API; a press by a known agent changes the ticket and the root, anyone else
is refused, merged and closed tickets answer sensibly, each press acts once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers.slack_api import Reply, SlackApiServer
from servers.slack_socket import SocketModeServer
from slack_kit import SlackDesk, make_slack_desk
from sqlmodel import Session

from inboxd.core.desk import transitions as tr
from inboxd.core.slack_actions import ButtonPress
from inboxd.core.slack_ticket import ACK, SNOOZE, TAKE
from inboxd.db import tickets
from inboxd.delivery.socket_mode import SocketModeListener
from inboxd.flows.slack_buttons import NOT_AN_AGENT, ButtonHandler
from inboxd.sched.sla_sweep import SlaSweep

PROFILES = {"UALICE": "Alice@help.example", "UEVE": "eve@elsewhere.example"}


@pytest.fixture
def api() -> Iterator[SlackApiServer]:
    with SlackApiServer() as server:
        yield server


@pytest.fixture
def desk(
    tmp_path: Path, db_url: str, api: SlackApiServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SlackDesk]:
    made = make_slack_desk(tmp_path, db_url, api, monkeypatch, buttons=True)
    api.answer("users.info", lambda body: Reply(200, user_info(str(body.get("user")))))
    yield made
    made.engine.dispose()


def user_info(user_id: str) -> dict[str, Any]:
    return {"ok": True, "user": {"id": user_id, "profile": {"email": PROFILES.get(user_id, "")}}}


def handler(desk: SlackDesk) -> ButtonHandler:
    return ButtonHandler(desk.engine, lambda: desk.rules, desk.living, clock=desk.clock)


def envelope(n: int, action: str, ticket_id: int, user: str) -> dict[str, Any]:
    return {
        "envelope_id": f"env-{n}",
        "type": "interactive",
        "accepts_response_payload": False,
        "payload": {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower()[1:]},
            "channel": {"id": "CALERTS"},
            "actions": [
                {
                    "action_id": action,
                    "block_id": f"inboxd_ticket_{ticket_id}",
                    "value": str(ticket_id),
                    "type": "button",
                    "action_ts": f"1700000100.{n:06d}",
                }
            ],
        },
    }


def wait_for(check: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def ephemerals(desk: SlackDesk) -> list[dict[str, object]]:
    return desk.calls("chat.postEphemeral")


def events(desk: SlackDesk, ticket_id: int) -> list[tuple[str, str]]:
    with Session(desk.engine) as session:
        return [(e.kind, e.actor) for e in tickets.event_rows(session, ticket_id)]


@pytest.fixture
def socket(desk: SlackDesk, api: SlackApiServer) -> Iterator[SocketModeServer]:
    server = SocketModeServer().start()
    api.answer("apps.connections.open", lambda body: Reply(200, {"ok": True, "url": server.url}))
    listener = SocketModeListener("xapp-test", desk.client, handler(desk))
    listener.start()
    try:
        assert server.connected.wait(10)
        yield server
    finally:
        listener.close()
        server.stop()


def test_press_by_known_agent_assigns_and_updates_the_root(
    desk: SlackDesk, socket: SocketModeServer
) -> None:
    ticket = desk.ticket()
    desk.alert(ticket.id, "new ticket", "a1")
    desk.drain.run_once()
    root = desk.calls("chat.postMessage")[0]
    assert "inboxd_take" in str(root["blocks"])  # the buttons are on the root

    sent = socket.push(envelope(1, TAKE, ticket.id, "UALICE"))
    wait_for(lambda: socket.ack_of("env-1") is not None)
    acked = socket.ack_of("env-1")
    assert acked is not None and acked - sent < 3.0  # within Slack's 3 seconds
    wait_for(lambda: ephemerals(desk))
    assert "assigned to you (alice)" in str(ephemerals(desk)[0]["text"])
    with desk.engine.connect() as conn:
        now = tickets.load(conn, ticket.id)
    assert now is not None and now.assignee == "alice"
    assert ("assigned", "slack:UALICE (alice)") in events(desk, ticket.id)

    assert desk.drain.run_once().sent == 1  # the root update the press queued
    update = desk.calls("chat.update")[-1]
    thread = desk.thread(ticket.id)
    assert thread is not None and update["ts"] == thread.ts
    assert "frontline / alice" in str(update["blocks"])

    # Slack delivers the same press again: acked, but acted on once
    socket.push(envelope(1, TAKE, ticket.id, "UALICE") | {"envelope_id": "env-1b"})
    wait_for(lambda: socket.ack_of("env-1b") is not None)
    time.sleep(0.3)
    assert events(desk, ticket.id).count(("assigned", "slack:UALICE (alice)")) == 1
    assert len(ephemerals(desk)) == 1


def test_unknown_user_is_refused_and_nothing_changes(
    desk: SlackDesk, socket: SocketModeServer
) -> None:
    ticket = desk.ticket()
    desk.alert(ticket.id, "new ticket", "a1")
    desk.drain.run_once()
    before = events(desk, ticket.id)
    socket.push(envelope(2, TAKE, ticket.id, "UEVE"))
    wait_for(lambda: ephemerals(desk))
    (refusal,) = ephemerals(desk)
    assert refusal["text"] == NOT_AN_AGENT and refusal["user"] == "UEVE"
    assert refusal["channel"] == "CALERTS"
    assert events(desk, ticket.id) == before
    with desk.engine.connect() as conn:
        assert tickets.load(conn, ticket.id).assignee is None  # type: ignore[union-attr]
    assert desk.drain.run_once().claimed == 0  # no root update either


def test_press_on_merged_or_closed_ticket_answers_and_changes_nothing(
    desk: SlackDesk, socket: SocketModeServer
) -> None:
    kept, merged, closed = desk.ticket("Kept"), desk.ticket("Merged"), desk.ticket("Closed")
    now = desk.clock()
    with desk.engine.begin() as conn:
        source, target = tr.merge(merged, kept, actor="agent:alice", now=now)
        tickets.save(conn, source)
        tickets.save(conn, target)
        tickets.save(conn, tr.change_status(closed, "closed", actor="agent:alice", now=now))
    socket.push(envelope(3, TAKE, merged.id, "UALICE"))
    wait_for(lambda: len(ephemerals(desk)) == 1)
    socket.push(envelope(4, TAKE, closed.id, "UALICE"))
    wait_for(lambda: len(ephemerals(desk)) == 2)
    texts = [str(e["text"]) for e in ephemerals(desk)]
    assert texts[0] == f"[#{merged.id}] was merged into [#{kept.id}]: act on [#{kept.id}] instead."
    assert texts[1].startswith(f"[#{closed.id}] is closed; nothing was changed")
    with desk.engine.connect() as conn:
        assert tickets.load(conn, merged.id).assignee is None  # type: ignore[union-attr]
        assert tickets.load(conn, closed.id).assignee is None  # type: ignore[union-attr]


class Fired:
    """Stands in for the flows' stage actions: which stages came."""

    def __init__(self) -> None:
        self.stages: list[str] = []

    def fire(self, conn: Any, rules: Any, ticket: Any, policy: Any, stage: Any, *_a: Any) -> None:
        self.stages.append(f"{ticket.id}:{stage.stage.key}")


def test_snooze_holds_stages_and_acknowledge_skips_the_rest_of_the_breach(
    desk: SlackDesk,
) -> None:
    press = handler(desk)
    listener = SocketModeListener("xapp-unused", desk.client, press)
    acked, snoozed = desk.ticket("Acked", sla=True), desk.ticket("Snoozed", sla=True)
    fired = Fired()
    sweep = SlaSweep(desk.engine, lambda: desk.rules, fired, clock=desk.clock)  # type: ignore[arg-type]

    def at(hour: int, minute: int) -> None:
        desk.clock.now = desk.clock.now.replace(hour=hour, minute=minute)
        sweep.run_once()

    def click(action: str, ticket_id: int, n: int) -> str:
        reply = listener.handle(
            ButtonPress(action, ticket_id, "UALICE", "alice", "CALERTS", f"17.{n}")
        )
        return reply.text

    desk.clock.advance(hours=1, minutes=59)  # 13:59: breach (14:00) one minute away
    assert "snoozed until 14:59 UTC" in click(SNOOZE, snoozed.id, 1)
    at(14, 1)
    assert fired.stages == [f"{acked.id}:alert@breach"]  # the snoozed ticket waits
    assert click(ACK, acked.id, 2).endswith("breach acknowledged.")
    at(14, 30)
    assert fired.stages == [f"{acked.id}:alert@breach"]  # still snoozed
    at(14, 59)  # the snooze is over: the held breach alert fires, late
    assert fired.stages == [f"{acked.id}:alert@breach", f"{snoozed.id}:alert@breach"]
    at(15, 1)  # breach+1h: skipped for the acknowledged ticket only
    assert fired.stages == [
        f"{acked.id}:alert@breach",
        f"{snoozed.id}:alert@breach",
        f"{snoozed.id}:alert@breach+1h",
    ]
    with Session(desk.engine) as session:
        skipped = [
            e.data["stage"]
            for e in tickets.event_rows(session, acked.id)
            if e.kind == "sla_stage" and e.data["skipped"]
        ]
    assert skipped == ["alert@breach+1h"]
    kinds = [k for k, _ in events(desk, acked.id)]
    assert "sla_acknowledged" in kinds and "sla_snoozed" in [k for k, _ in events(desk, snoozed.id)]
