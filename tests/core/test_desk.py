"""The ticket domain: transitions are pure, agree on the rules, and say why in events."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from inboxd.core.desk import Change, Status, Ticket, TransitionError, events, may_transition
from inboxd.core.desk import transitions as tr

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)


def ticket(**kw: object) -> Ticket:
    base = Ticket(
        id=7,
        subject="Printer",
        status=Status.NEW,
        requester="carol@customer.example",
        mailbox="support",
        created_at=T0,
        updated_at=T0,
        status_changed_at=T0,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def kinds(change: Change) -> list[str]:
    return [e.kind for e in change.events]


# --- customer mail ---------------------------------------------------------------------


def test_customer_reply_ends_a_wait_on_the_customer() -> None:
    change = tr.customer_mail(ticket(status=Status.PENDING), now=T1, person=True, reopen=False)
    assert change.after.status == Status.OPEN
    assert change.after.last_customer_mail_at == T1 and change.after.updated_at == T1
    [event] = change.events
    assert isinstance(event, events.StatusChanged)
    assert event.data() == {"from": "pending", "to": "open", "why": "customer replied"}


def test_machine_mail_neither_reopens_nor_counts_as_the_customer() -> None:
    change = tr.customer_mail(ticket(status=Status.PENDING), now=T1, person=False, reopen=False)
    assert change.after.status == Status.PENDING
    assert change.after.last_customer_mail_at is None
    assert change.events == ()
    assert change.fields == {"updated_at": T1}


def test_reopening_a_solved_ticket_counts_a_reopen() -> None:
    solved = ticket(status=Status.SOLVED, solved_at=T0)
    change = tr.customer_mail(solved, now=T1, person=True, reopen=True)
    assert change.after.status == Status.OPEN
    assert change.after.reopened_count == 1
    assert change.after.solved_at == T0  # when it was solved stays known


def test_pending_back_to_open_is_no_reopen() -> None:
    change = tr.customer_mail(ticket(status=Status.PENDING), now=T1, person=True, reopen=False)
    assert change.after.reopened_count == 0


# --- agents -----------------------------------------------------------------------------


def test_first_public_reply_is_the_first_response_and_opens_a_new_ticket() -> None:
    first = tr.agent_replied(ticket(), actor="agent:alice", now=T1, message=3, message_id="m@x")
    assert first.after.first_agent_reply_at == T1
    assert first.after.status == Status.OPEN
    assert kinds(first) == ["agent_reply", "status"]
    reply = first.events[0]
    assert isinstance(reply, events.AgentReplied) and reply.first_response
    later = T1 + timedelta(minutes=5)
    second = tr.agent_replied(
        first.after, actor="agent:bob", now=later, message=4, message_id="n@x"
    )
    assert second.after.first_agent_reply_at == T1
    again = second.events[0]
    assert isinstance(again, events.AgentReplied) and not again.first_response
    assert kinds(second) == ["agent_reply"]


def test_solving_and_closing_stamp_their_time() -> None:
    solved = tr.change_status(ticket(), Status.SOLVED, actor="agent:a", now=T1)
    assert solved.after.solved_at == T1 and solved.after.status_changed_at == T1
    closed = tr.change_status(solved.after, Status.CLOSED, actor="agent:a", now=T1)
    assert closed.after.closed_at == T1


def test_same_status_again_changes_nothing() -> None:
    change = tr.change_status(ticket(status=Status.OPEN), Status.OPEN, actor="agent:a", now=T1)
    assert change.events == () and change.fields == {}


def test_a_merged_ticket_is_final() -> None:
    merged = ticket(status=Status.MERGED, merged_into=9)
    assert not may_transition(Status.MERGED, Status.OPEN)
    with pytest.raises(TransitionError):
        tr.change_status(merged, Status.OPEN, actor="agent:a", now=T1)
    with pytest.raises(TransitionError):
        tr.merge(merged, ticket(id=9), actor="agent:a", now=T1)


def test_merge_moves_the_ticket_and_tells_the_target() -> None:
    source, target = ticket(id=7), ticket(id=9, status=Status.OPEN)
    mine, theirs = tr.merge(source, target, actor="agent:a", now=T1)
    assert mine.after.status == Status.MERGED and mine.after.merged_into == 9
    assert [e.data() for e in mine.events] == [{"into": 9}]
    assert theirs.after == target and [e.data() for e in theirs.events] == [{"ticket": 7}]
    with pytest.raises(TransitionError):
        tr.merge(source, source, actor="agent:a", now=T1)


def test_assignment_to_an_agent_moves_the_team_only_when_needed() -> None:
    moved = tr.assign_agent(ticket(team="billing"), "bob", teams=("frontline",), actor="a", now=T1)
    assert (moved.after.assignee, moved.after.team) == ("bob", "frontline")
    kept = tr.assign_agent(
        ticket(team="frontline"), "bob", teams=("x", "frontline"), actor="a", now=T1
    )
    assert kept.after.team == "frontline"
    team = tr.assign_team(kept.after, "billing", actor="a", now=T1)
    assert (team.after.assignee, team.after.team) == (None, "billing")
    assert team.events[0].data() == {"team": "billing"}


def test_retag_keeps_order_and_reports_the_tags_after() -> None:
    change = tr.retag(ticket(tags=("a", "b")), add=("c", "a"), remove=("b",), actor="x", now=T1)
    assert change.after.tags == ("a", "c")
    assert change.events[0].data() == {"tags": ["a", "c"]}
    assert change.fields["tags"] == ["a", "c"]


# --- rules ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    tags: tuple[str, ...] = ()
    untags: tuple[str, ...] = ()
    priority: str | None = None
    vip: bool = False
    team: str | None = None
    assignee: str | None = None
    sla: str | None = None
    status: str | None = None


@dataclass(frozen=True)
class Hit:
    rule: str = "r1"
    file: str = "rules/10.yaml"
    line: int = 3
    reasons: tuple[str, ...] = ("subject contains 'x'",)
    applied: tuple[str, ...] = ("team=billing",)
    overridden: tuple[str, ...] = ()


def test_rules_fill_what_is_empty_and_never_reroute() -> None:
    owned = ticket(team="frontline", assignee="alice", sla_policy="gold", priority="high")
    decision = Decision(team="billing", assignee="dana", sla="basic", priority="low", vip=True)
    change = tr.apply_rules(owned, decision, (Hit(),), now=T1)
    after = change.after
    assert (after.team, after.assignee, after.sla_policy) == ("frontline", "alice", "gold")
    assert after.priority == "high"  # priority only rises
    assert after.vip  # vip is sticky once set
    assert kinds(change) == ["rule"]
    assert change.events[0].actor == "rule:r1"


def test_rules_route_a_fresh_ticket_and_take_the_picked_agent() -> None:
    decision = Decision(team="billing", priority="urgent", tags=("refund",))
    fresh = ticket()
    assert tr.team_to_staff(fresh, decision) == "billing"
    change = tr.apply_rules(fresh, decision, (Hit(),), now=T1, picked="dana")
    assert (change.after.team, change.after.assignee) == ("billing", "dana")
    assert change.after.priority == "urgent" and change.after.tags == ("refund",)
    assert kinds(change) == ["rule", "assigned"]
    assert change.events[1].data() == {"to": "dana"}
    assert tr.team_to_staff(ticket(team="x"), decision) is None
    assert tr.team_to_staff(fresh, Decision(team="billing", assignee="dana")) is None


def test_a_rule_status_is_a_status_change_with_its_event() -> None:
    change = tr.apply_rules(ticket(), Decision(status="pending"), (Hit(),), now=T1)
    assert change.after.status == Status.PENDING
    assert kinds(change) == ["rule", "status"]


# --- changes and events -----------------------------------------------------------------


def test_changes_chain_only_from_where_they_left_off() -> None:
    first = tr.set_priority(ticket(), "high", actor="a", now=T1)
    both = first.then(tr.retag(first.after, add=("x",), actor="a", now=T1))
    assert both.before == ticket() and both.fields["priority"] == "high"
    assert kinds(both) == ["priority", "tags"]
    with pytest.raises(ValueError, match="can only follow"):
        first.then(tr.retag(ticket(), add=("y",), actor="a", now=T1))


def _sample(cls: type[events.Event]) -> events.Event:
    values: dict[str, object] = {}
    for f in dataclasses.fields(cls):
        if f.name in ("at", "actor"):
            continue
        if f.default is not dataclasses.MISSING:
            continue
        hint = str(f.type)
        values[f.name] = 5 if "int" in hint else ("x",) if "tuple" in hint else "x"
    return cls(at=T0, actor="system", **values)  # type: ignore[arg-type]


def test_every_event_kind_is_defined_once_and_reads_back_from_its_json() -> None:
    assert len(events.EVENT_KINDS) == len({c.__name__ for c in events.EVENT_KINDS.values()})
    for kind, cls in events.EVENT_KINDS.items():
        event = _sample(cls)
        data = event.data()
        assert all(not key.endswith("_") for key in data), kind
        assert events.decode(kind, T0, "system", data) == event, kind
    assert events.decode("no-such-kind", T0, "system", {}) is None


def test_keyword_fields_are_stored_under_their_plain_name() -> None:
    stored = events.MessageStored(at=T0, message=1, kind_="bulk", matched_by="header")
    assert stored.data() == {"message": 1, "kind": "bulk", "matched_by": "header"}
    assert stored.kind == "message"
