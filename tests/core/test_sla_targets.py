"""SLA targets from a ticket's typed events: responses, pauses, reopen, stages, next due."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from inboxd.core.calendar import always_open, make_calendar
from inboxd.core.desk import events as ev
from inboxd.core.rules.model import SlaPolicy
from inboxd.core.sla.model import Duration, Recipient, Stage, When
from inboxd.core.sla.targets import TargetClock, clocks, due_stages, next_due, stage_times

T0 = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)
ALWAYS = always_open()
BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = make_calendar(
    "office",
    "Europe/Berlin",
    {d: ((540, 1050),) for d in range(5)},
    frozenset({date(2025, 12, 25)}),
)


def policy(**kw: object) -> SlaPolicy:
    return SlaPolicy(name="p", calendar="24x7", **kw)  # type: ignore[arg-type]


def hours(n: float) -> Duration:
    return Duration(int(n * 3600))


def created(at: datetime = T0) -> list[ev.Event]:
    return [ev.Created(at=at, source="mail"), ev.MessageStored(at=at, message=1)]


def mail(at: datetime, kind: str = "normal") -> ev.Event:
    return ev.MessageStored(at=at, message=9, kind_=kind)


def reply(at: datetime, **kw: object) -> ev.Event:
    return ev.AgentReplied(at=at, message=5, message_id="r@x", first_response=False, **kw)  # type: ignore[arg-type]


def status(at: datetime, from_: str, to: str) -> ev.Event:
    return ev.StatusChanged(at=at, from_=from_, to=to)


def one(events: list[ev.Event], pol: SlaPolicy, now: datetime, target: str) -> TargetClock:
    (tc,) = [c for c in clocks(events, pol, ALWAYS, now) if c.target == target]
    return tc


def test_a_note_or_an_acknowledgement_is_not_a_response() -> None:
    pol = policy(first_response=hours(1))
    log = [
        *created(),
        ev.Acknowledged(at=T0 + M, to="c@x", message_id="a@x", template="ack"),
        ev.NoteAdded(at=T0 + 10 * M, actor="agent:alice", message=3),
    ]
    tc = one(log, pol, T0 + 30 * M, "first_response")
    assert (tc.state, tc.due_at, tc.used, tc.met_at) == ("active", T0 + H, 30 * M, None)
    late = one(log, pol, T0 + 2 * H, "first_response")
    assert (late.state, late.breached_at, late.used) == ("breached", T0 + H, 2 * H)
    answered = one([*log, reply(T0 + 20 * M)], pol, T0 + 2 * H, "first_response")
    assert (answered.state, answered.met_at, answered.used) == ("achieved", T0 + 20 * M, 20 * M)
    after = one([*log, reply(T0 + 90 * M)], pol, T0 + 2 * H, "first_response")
    assert (after.state, after.met_at, after.breached_at) == ("breached", T0 + 90 * M, T0 + H)


def test_a_sent_folder_reply_counts_from_its_date() -> None:
    pol = policy(first_response=hours(1))
    found = reply(T0 + 3 * H, via="sent_folder", sent_at=(T0 + 40 * M).isoformat())
    tc = one([*created(), found], pol, T0 + 4 * H, "first_response")
    assert (tc.state, tc.met_at) == ("achieved", T0 + 40 * M)


def test_pending_pauses_every_clock_and_the_customer_resumes_it() -> None:
    pol = policy(first_response=hours(4), resolution=hours(8), pause_when=("pending",))
    log = [*created(), status(T0 + H, "new", "pending")]
    paused = one(log, pol, T0 + 2 * H, "resolution")
    assert (paused.state, paused.due_at, paused.used) == ("paused", None, H)
    assert paused.paused == ((T0 + H, None),)
    assert next_due(log, pol, ALWAYS, T0 + 2 * H) is None
    log += [mail(T0 + 3 * H), status(T0 + 3 * H, "pending", "open")]
    running = one(log, pol, T0 + 4 * H, "resolution")
    assert (running.state, running.used, running.due_at) == ("active", 2 * H, T0 + 10 * H)
    assert running.paused == ((T0 + H, T0 + 3 * H),)
    assert one(log, pol, T0 + 4 * H, "first_response").due_at == T0 + 6 * H
    # without pause_when the same log never pauses
    plain = one(log, policy(resolution=hours(8)), T0 + 4 * H, "resolution")
    assert (plain.used, plain.due_at, plain.paused) == (4 * H, T0 + 8 * H, ())


def test_three_customer_mails_before_the_answer_count_from_the_first() -> None:
    pol = policy(first_response=hours(1), next_response=hours(2))
    log = [*created(), reply(T0 + 10 * M)]
    assert one(log, pol, T0 + 20 * M, "next_response").state == "idle"
    log += [mail(T0 + H), mail(T0 + 90 * M), mail(T0 + 2 * H), mail(T0 + 2 * H, "auto_reply")]
    waiting = one(log, pol, T0 + 130 * M, "next_response")
    assert (waiting.state, waiting.started_at, waiting.due_at) == ("active", T0 + H, T0 + 3 * H)
    assert waiting.cycle == 0 and waiting.used == 70 * M
    log += [ev.NoteAdded(at=T0 + 140 * M, actor="agent:bob", message=7), reply(T0 + 150 * M)]
    done = one(log, pol, T0 + 4 * H, "next_response")
    assert (done.state, done.met_at, done.used) == ("achieved", T0 + 150 * M, 90 * M)
    log.append(mail(T0 + 5 * H))
    again = one(log, pol, T0 + 6 * H, "next_response")
    assert (again.cycle, again.started_at, again.state) == (1, T0 + 5 * H, "active")
    assert one(log, pol, T0 + 6 * H, "first_response").met_at == T0 + 10 * M


def test_next_response_covers_the_first_mail_when_there_is_no_first_response_target() -> None:
    pol = policy(next_response=hours(1))
    tc = one(created(), pol, T0 + 10 * M, "next_response")
    assert (tc.started_at, tc.due_at) == (T0, T0 + H)


def test_a_reopen_resumes_resolution_with_the_time_already_used() -> None:
    pol = policy(resolution=hours(8))
    log = [*created(), status(T0 + 3 * H, "new", "solved")]
    solved = one(log, pol, T0 + 5 * H, "resolution")
    assert (solved.state, solved.met_at, solved.used) == ("achieved", T0 + 3 * H, 3 * H)
    assert next_due(log, pol, ALWAYS, T0 + 5 * H) is None
    log += [mail(T0 + 10 * H), status(T0 + 10 * H, "solved", "open")]
    reopened = one(log, pol, T0 + 11 * H, "resolution")
    assert (reopened.state, reopened.used, reopened.met_at) == ("active", 4 * H, None)
    assert reopened.due_at == T0 + 15 * H
    assert reopened.paused == ((T0 + 3 * H, T0 + 10 * H),)
    log += [status(T0 + 12 * H, "open", "closed")]
    closed = one(log, pol, T0 + 20 * H, "resolution")
    assert (closed.state, closed.used, closed.met_at) == ("achieved", 5 * H, T0 + 12 * H)


def test_a_merged_ticket_cancels_what_it_had_not_met() -> None:
    pol = policy(first_response=hours(1), resolution=hours(8))
    log = [*created(), ev.Merged(at=T0 + 20 * M, into=7)]
    tc = one(log, pol, T0 + 5 * H, "resolution")
    assert (tc.state, tc.due_at, tc.used) == ("cancelled", None, 20 * M)
    assert next_due(log, pol, ALWAYS, T0 + 5 * H) is None


def test_events_after_now_are_not_seen() -> None:
    pol = policy(first_response=hours(1))
    log = [*created(), reply(T0 + 2 * H)]
    assert one(log, pol, T0 + 30 * M, "first_response").state == "active"
    assert one(log, pol, T0 + 3 * H, "first_response").state == "breached"


# -- stages and the next due instant ---------------------------------------------------

WARN = Stage(When("percent", 75), "remind", (Recipient("assignee"),), ("first_response",))
BREACH = Stage(When("breach"), "alert", (Recipient("lead"),), ("first_response",))
LATER = Stage(
    When("breach", offset=Duration(7200)), "alert", (Recipient("lead"),), ("first_response",)
)
STAGED = SlaPolicy(
    name="staged", calendar="office", first_response=hours(4), stages=(WARN, BREACH, LATER)
)


def berlin(d: int, h: int, mi: int = 0) -> datetime:
    return datetime(2025, 3, d, h, mi, tzinfo=BERLIN)


def test_stages_fire_in_order_once_each_and_skip_what_is_fired() -> None:
    log = created(berlin(7, 13, 30))  # Friday 13:30, due Friday 17:30
    (tc,) = clocks(log, STAGED, OFFICE, berlin(7, 14))
    times = {st.stage.key: st.send_at for st in stage_times(tc, STAGED, OFFICE)}
    assert times == {
        "remind@75%": berlin(7, 16, 30),
        "alert@breach": berlin(7, 17, 30),
        "alert@breach+2h": berlin(10, 11),  # two business hours after the breach: Monday
    }
    assert next_due(log, STAGED, OFFICE, berlin(7, 14)) == berlin(7, 16, 30)
    assert due_stages(log, STAGED, OFFICE, berlin(7, 14)) == ()
    (warn,) = due_stages(log, STAGED, OFFICE, berlin(7, 16, 30))
    assert warn.key == "first_response:0:remind@75%" and not warn.skip
    fired = {warn.key}
    assert next_due(log, STAGED, OFFICE, berlin(7, 16, 31), fired) == berlin(7, 17, 30)
    (alert,) = due_stages(log, STAGED, OFFICE, berlin(7, 17, 30), fired)
    fired.add(alert.key)
    assert next_due(log, STAGED, OFFICE, berlin(8, 3), fired) == berlin(10, 11)
    # a first response stops every stage of the target
    answered = [*log, reply(berlin(7, 17, 45))]
    assert next_due(answered, STAGED, OFFICE, berlin(8, 3), fired) is None


def test_after_downtime_a_passed_warning_is_skipped_and_the_breach_caught_up_once() -> None:
    log = created(berlin(7, 13, 30))
    late = due_stages(log, STAGED, OFFICE, berlin(10, 9, 30))  # Monday morning
    assert [(st.stage.key, st.skip) for st in late] == [
        ("remind@75%", True),
        ("alert@breach", False),
    ]
    # past stages not yet fired keep the ticket due (since the breach), so the sweep takes it
    assert next_due(log, STAGED, OFFICE, berlin(10, 9, 30)) == berlin(7, 17, 30)
    fired = {st.key for st in late}
    assert next_due(log, STAGED, OFFICE, berlin(10, 9, 30), fired) == berlin(10, 11)


def test_a_reminder_at_closing_time_waits_for_the_opening() -> None:
    log = created(berlin(7, 14, 30))  # 75% of 4h reached at Friday 17:30, closed
    (tc,) = clocks(log, STAGED, OFFICE, berlin(7, 15))
    warn = next(st for st in stage_times(tc, STAGED, OFFICE) if st.stage is WARN)
    assert (warn.at, warn.send_at, warn.skip) == (berlin(7, 17, 30), berlin(10, 9), False)
    assert tc.due_at == berlin(10, 10)
    assert due_stages(log, STAGED, OFFICE, berlin(8, 12)) == ()
