"""The command registry: one definition per command feeds parse, check, apply and help."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from core.rules_kit import ruleset

from inboxd.core.commands import REGISTRY, Command, CommandContext, help_lines, parse_commands, run
from inboxd.core.desk import Status, Ticket

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
T1 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def ticket(ticket_id: int = 7, **kw: object) -> Ticket:
    base = Ticket(
        id=ticket_id,
        subject="Printer",
        status=Status.OPEN,
        requester="carol@customer.example",
        mailbox="support",
        created_at=T0,
        updated_at=T0,
        status_changed_at=T0,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def context(**tickets: Ticket | None) -> CommandContext:
    return CommandContext(
        actor="agent:alice",
        now=T1,
        rules=ruleset(),
        canned=("refund",),
        tickets={int(k[1:]): v for k, v in tickets.items()},
    )


def commands(text: str) -> tuple[Command, ...]:
    parsed = parse_commands(text)
    assert parsed.errors == (), parsed.errors
    return parsed.commands


def test_help_has_one_line_per_command_and_unknown_names_list_them_all() -> None:
    lines = help_lines()
    assert len(lines) == len(REGISTRY)
    for name in REGISTRY:
        assert sum(line.startswith(f"#{name} ") for line in lines) == 1, name
    [error] = parse_commands("#clsoe").errors
    assert all(f"#{name}" in error for name in REGISTRY)


def test_check_names_every_problem_at_once() -> None:
    errors = run.check(
        context(t9=None),
        ticket(),
        commands("#assign nobody\n#merge 9\n#canned nothing"),
    )
    assert errors == [
        "#assign nobody: no agent or team of that name",
        "#merge 9: no such ticket",
        "#canned nothing: no such saved response (known: refund)",
    ]


def test_merge_checks_what_the_target_resolves_to() -> None:
    me = ticket()
    assert run.check(context(), me, commands("#merge 7")) == ["#merge 7: that is this ticket"]
    # ticket 9 was merged into this one earlier: resolving it gives this ticket back
    assert run.check(context(t9=me), me, commands("#merge 9")) == [
        "#merge 9: that ticket is already merged into this one"
    ]
    assert run.ticket_ids(commands("#merge 9\n#tag x")) == (9,)


def test_a_status_the_ticket_cannot_take_is_refused() -> None:
    merged = ticket(status=Status.MERGED)
    [error] = run.check(context(), merged, commands("#open"))
    assert "cannot become open" in error


def test_apply_chains_the_commands_and_leaves_one_tags_event() -> None:
    before = ticket(tags=("old",))
    outcome = run.apply(
        context(), before, commands("#tag a b\n#untag old\n#priority high\n#assign dana\n#pending")
    )
    after = outcome.change.after
    assert after.tags == ("a", "b") and after.priority == "high"
    assert (after.assignee, after.team) == ("dana", "billing")
    assert after.status == Status.PENDING
    kinds = [e.kind for e in outcome.change.events]
    assert kinds.count("tags") == 1 and outcome.change.events[-1].data() == {"tags": ["a", "b"]}
    assert {e.actor for e in outcome.change.events} == {"agent:alice"}
    assert [r.command for r in outcome.results] == [
        "#tag a",
        "#tag b",
        "#untag old",
        "#priority high",
        "#assign dana",
        "#pending",
    ]
    assert outcome.merged_into is None


def test_merge_runs_last_and_changes_the_target_too() -> None:
    target = ticket(9)
    outcome = run.apply(context(t9=target), ticket(), commands("#merge 9\n#close"))
    assert [r.command for r in outcome.results] == ["#close", "#merge 9"]
    assert outcome.change.after.status == Status.MERGED
    assert outcome.merged_into == 9
    [other] = outcome.others
    assert other.ticket_id == 9 and [e.kind for e in other.events] == ["merged_from"]


def test_note_and_canned_shape_the_mail_and_change_nothing() -> None:
    outcome = run.apply(context(), ticket(), commands("#canned refund"))
    assert outcome.results == () and outcome.change.events == ()
    outcome = run.apply(context(), ticket(), commands("#note hi"))
    assert outcome.results == () and outcome.change.events == ()
