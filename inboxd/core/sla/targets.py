"""The SLA targets of one ticket, from its event log, at any ``now``.

Nothing is stored but the events, so a clock can always be recomputed (after a
policy change, for a replay, for ``tickets show``). Definitions:

* ``first_response``: created -> the first public agent reply (relayed, canned
  or found in the Sent folder; a note or an acknowledgement is not one);
* ``next_response``: the oldest customer mail not yet answered -> the next
  public agent reply. Cycles start after the first reply (or at the first
  mail when the policy has no first_response); three mails before the answer
  count from the first. ``cycle`` numbers them;
* ``resolution``: created -> solved or closed; a reopen resumes it with the
  time already used (the solved spell counts as a pause).

While the status is one of the policy's ``pause_when``, every clock stops; the
response clocks also stop while the ticket is solved or closed.
Events after ``now`` are ignored. A target met at or before its due time is
achieved, one met later (or not met by then) breached; a ticket merged away
cancels the targets it had not met.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from inboxd.core.calendar import Calendar
from inboxd.core.desk import events as ev
from inboxd.core.sla import clock
from inboxd.core.sla.model import Duration, Stage

if TYPE_CHECKING:  # the rule engine is not needed to read a clock (tickets show)
    from inboxd.core.rules.model import SlaPolicy

State = Literal["idle", "active", "paused", "achieved", "breached", "cancelled"]
Span = tuple[datetime, datetime | None]  # an end of None: still going on at ``now``
STOPPED = frozenset({"solved", "closed"})


@dataclass(frozen=True, slots=True)
class TargetClock:
    """One target of a ticket at ``now`` (its current cycle for next_response)."""

    target: str
    goal: Duration
    state: State
    cycle: int = 0
    started_at: datetime | None = None
    due_at: datetime | None = None  # None while paused, idle or cancelled
    budget: timedelta = timedelta(0)  # business time the goal grants from started_at
    used: timedelta = timedelta(0)  # business time used, pauses left out
    paused: tuple[Span, ...] = ()
    met_at: datetime | None = None
    breached_at: datetime | None = None

    @property
    def running(self) -> bool:
        """Its stages may still fire: started, not met, not paused, not cancelled."""
        return self.state in ("active", "breached") and self.met_at is None


@dataclass(frozen=True, slots=True)
class StageTime:
    """When a stage of a target comes; ``send_at`` waits for open hours for reminders.

    ``skip``: a warning whose breach comes before it could be sent. ``key`` is
    unique per ticket, target, clock cycle and stage: the fire-once key.
    """

    target: str
    cycle: int
    stage: Stage
    at: datetime
    send_at: datetime
    skip: bool = False

    @property
    def key(self) -> str:
        return f"{self.target}:{self.cycle}:{self.stage.key}"


@dataclass
class _Timeline:
    """What the events say, in instants: the raw material of every clock."""

    created: datetime | None = None
    pauses: list[list[datetime | None]] = field(default_factory=list)
    stops: list[list[datetime | None]] = field(default_factory=list)  # solved/closed spells
    first_reply: datetime | None = None
    cycles: list[list[datetime | None]] = field(default_factory=list)  # [start, answered]
    merged: datetime | None = None


def _timeline(events: Sequence[ev.Event], policy: SlaPolicy, now: datetime) -> _Timeline:
    line = _Timeline()
    status = "new"
    pausing = frozenset(policy.pause_when)
    for event in sorted((e for e in events if e.at <= now), key=lambda e: e.at):
        at = event.at
        if isinstance(event, ev.Created):
            line.created = line.created or at
            if "new" in pausing:
                line.pauses.append([at, None])
        elif isinstance(event, ev.StatusChanged):
            _switch(line.pauses, status in pausing, event.to in pausing, at)
            _switch(line.stops, status in STOPPED, event.to in STOPPED, at)
            status = event.to
        elif isinstance(event, ev.MessageStored) and event.kind_ == "normal":
            waiting = line.cycles and line.cycles[-1][1] is None
            if not waiting and (line.first_reply is not None or policy.first_response is None):
                line.cycles.append([at, None])
        elif isinstance(event, ev.AgentReplied):
            when = max(event.counted_at, line.created or event.at)
            if line.first_reply is None:
                line.first_reply = when
            if line.cycles and line.cycles[-1][1] is None:
                start = line.cycles[-1][0]
                assert start is not None
                line.cycles[-1][1] = max(when, start)
        elif isinstance(event, ev.Merged):
            line.merged = line.merged or at
    return line


def _switch(spans: list[list[datetime | None]], was: bool, now_in: bool, at: datetime) -> None:
    if was and not now_in:
        spans[-1][1] = at
    elif now_in and not was:
        spans.append([at, None])


def clocks(
    events: Sequence[ev.Event], policy: SlaPolicy, cal: Calendar, now: datetime
) -> tuple[TargetClock, ...]:
    """Every target the policy sets, in ``TARGET_NAMES`` order, as of ``now``."""
    now = now.astimezone(UTC)
    line = _timeline(events, policy, now)
    out: list[TargetClock] = []
    pauses: list[Span] = [(a, b) for a, b in line.pauses if a is not None]
    stops: list[Span] = [(a, b) for a, b in line.stops if a is not None]
    for name, goal in policy.targets():
        if line.created is None:
            out.append(TargetClock(name, goal, "idle"))
        elif name == "first_response":
            spans = pauses + stops  # a solved ticket waits for nobody's answer
            out.append(_clock(cal, now, name, goal, line.created, line.first_reply, spans, line))
        elif name == "resolution":
            met = stops[-1][0] if stops and stops[-1][1] is None else None
            spans = pauses + [s for s in stops if s[1] is not None]
            out.append(_clock(cal, now, name, goal, line.created, met, spans, line))
        elif not line.cycles:
            out.append(TargetClock(name, goal, "idle"))
        else:
            start, met = line.cycles[-1]
            assert start is not None
            cycle = len(line.cycles) - 1
            tc = _clock(cal, now, name, goal, start, met, pauses + stops, line)
            out.append(replace(tc, cycle=cycle))
    return tuple(out)


def _clock(
    cal: Calendar,
    now: datetime,
    name: str,
    goal: Duration,
    start: datetime,
    met: datetime | None,
    spans: Sequence[Span],
    line: _Timeline,
) -> TargetClock:
    end = met or line.merged or now
    mine = sorted((a, b) for a, b in spans if (b is None or b > start) and a < end)
    closed = [(a, b if b is not None else now) for a, b in mine]
    used = clock.elapsed(cal, start, end, closed)
    done = [(a, b) for a, b in mine if b is not None]
    budget, due = clock.budget_and_due(cal, start, goal, done)
    ongoing = next((a for a, b in mine if b is None), None)

    def made(state: State, due_at: datetime | None, breached: datetime | None) -> TargetClock:
        return TargetClock(
            name, goal, state, 0, start, due_at, budget, used, tuple(mine), met, breached
        )

    if met is not None:
        state: State = "achieved" if met <= due else "breached"
        return made(state, due, due if state == "breached" else None)
    if line.merged is not None:
        return made("cancelled", None, None)
    if ongoing is not None:
        if due <= ongoing:
            return made("breached", due, due)
        return made("paused", None, None)
    if now >= due:
        return made("breached", due, due)
    return made("active", due, None)


def stage_times(tc: TargetClock, policy: SlaPolicy, cal: Calendar) -> tuple[StageTime, ...]:
    """When each of the policy's stages for this target comes (none unless running)."""
    if not tc.running or tc.started_at is None or tc.due_at is None:
        return ()
    start, due = tc.started_at, tc.due_at
    done = [(a, b) for a, b in tc.paused if b is not None]
    out: list[StageTime] = []
    for stage in policy.stages:
        if tc.target not in stage.targets:
            continue
        when = stage.when
        if when.kind == "percent" and when.percent < 100:
            share = timedelta(seconds=int(tc.budget.total_seconds()) * when.percent // 100)
            at = clock.add_business_time(cal, start, share, done)
        elif when.kind == "before":
            assert when.offset is not None
            left = max(tc.budget - timedelta(seconds=when.offset.amount), timedelta(0))
            at = clock.add_business_time(cal, start, left, done)
        elif when.offset is None:
            at = due
        elif when.offset.unit == "days":
            at = clock.add_business_days(cal, due, when.offset.amount)
        else:
            at = clock.add_business_time(cal, due, timedelta(seconds=when.offset.amount))
        send = clock.next_open(cal, at) if stage.action == "remind" else at
        skip = when.before_breach and send >= due
        out.append(StageTime(tc.target, tc.cycle, stage, at, send, skip))
    return tuple(out)


def due_stages(
    events: Sequence[ev.Event],
    policy: SlaPolicy,
    cal: Calendar,
    now: datetime,
    fired: Collection[str] = (),
    computed: Sequence[TargetClock] | None = None,
) -> tuple[StageTime, ...]:
    """Stages to handle at ``now``: not in ``fired`` (their keys) and whose send time
    has come, once each, oldest first. A warning whose breach is already due comes
    with ``skip`` set: record it, send nothing. ``computed``: ``clocks(...)`` of the
    same inputs, when the caller has them already."""
    now = now.astimezone(UTC)
    out: list[StageTime] = []
    for tc in computed if computed is not None else clocks(events, policy, cal, now):
        for st in stage_times(tc, policy, cal):
            if st.key in fired:
                continue
            late = st.stage.when.before_breach and tc.due_at is not None and tc.due_at <= now
            if st.skip or late:
                out.append(_skipped(st))
            elif st.send_at <= now:
                out.append(st)
    return tuple(sorted(out, key=lambda s: (s.send_at, s.key)))


def _skipped(st: StageTime) -> StageTime:
    return replace(st, skip=True)


def next_due(
    events: Sequence[ev.Event],
    policy: SlaPolicy,
    cal: Calendar,
    now: datetime,
    fired: Collection[str] = (),
    computed: Sequence[TargetClock] | None = None,
) -> datetime | None:
    """The ticket's next instant of interest (the sweep's index value): the earliest
    send time of a stage not yet fired (which may be past: catch it up) or a future
    breach. None when no target runs (all met, paused, idle or cancelled).
    ``computed`` as for :func:`due_stages`."""
    now = now.astimezone(UTC)
    times: list[datetime] = []
    for tc in computed if computed is not None else clocks(events, policy, cal, now):
        if tc.state == "active" and tc.due_at is not None and tc.due_at > now:
            times.append(tc.due_at)
        for st in stage_times(tc, policy, cal):
            if st.key in fired:
                continue
            late = st.stage.when.before_breach and tc.due_at is not None and tc.due_at <= now
            times.append(now if st.skip or late else st.send_at)
    return min(times) if times else None
