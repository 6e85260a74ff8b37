"""core.reports on hand-made event logs: each definition of docs/reports.md once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from inboxd.core.desk import events as ev
from inboxd.core.reports import periods
from inboxd.core.reports.compute import ReportBuilder, age_bucket
from inboxd.core.reports.facts import ticket_facts
from inboxd.core.reports.model import Period, TicketInfo
from inboxd.core.reports.stats import summarize

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CAROL = ev.customer("carol@customer.example")


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def mail(hours: float, kind: str = "normal") -> ev.Event:
    return ev.MessageStored(at=h(hours), actor=CAROL, message=1, kind_=kind)


def reply(hours: float, sent_at: str | None = None) -> ev.Event:
    return ev.AgentReplied(
        at=h(hours), actor="agent:alice", message=2, message_id="m", first_response=False,
        sent_at=sent_at,
    )  # fmt: skip


def status(hours: float, old: str, new: str) -> ev.Event:
    return ev.StatusChanged(at=h(hours), actor="agent:alice", from_=old, to=new)


def test_median_is_the_middle_pair_mean_and_p90_the_nearest_rank() -> None:
    s = summarize([10.0, 1.0, 4.0, 7.0])
    assert (s.n, s.median, s.p90, s.mean) == (4, 5.5, 10.0, 5.5)
    ten = summarize([float(i) for i in range(1, 11)])
    assert ten.p90 == 9.0  # 9 of 10 values are at or below 9
    assert summarize([]).median is None


def test_first_reply_waits_solves_and_reopens() -> None:
    facts = ticket_facts(
        [
            ev.Created(at=T0, actor=CAROL, source="lmtp"),
            mail(0),
            mail(1),  # before the first reply: part of the first wait
            mail(1, kind="auto_reply"),
            reply(3),
            mail(4),
            mail(5),  # a second mail while the first waits: the wait counts from 4h
            reply(6),
            status(7, "open", "solved"),
            status(8, "solved", "closed"),  # not a second solve
            status(9, "closed", "open"),
            status(10, "open", "closed"),
        ]
    )
    assert facts.first_response == (T0, h(3))
    assert facts.waits == ((h(4), h(6)),)
    assert facts.solves == (h(7), h(10)) and facts.reopens == (h(9),)
    assert facts.status_at(h(7)) == "new"  # changes strictly before the instant
    assert facts.status_at(h(9.5)) == "open" and facts.status_at(T0) is None


def test_an_agent_opened_ticket_counts_from_its_second_public_comment() -> None:
    facts = ticket_facts(
        [
            ev.Created(at=T0, actor="agent:alice", source="lmtp"),
            reply(1),  # a follow-up before the customer wrote: not a first reply
            mail(2),
            reply(5),
        ]
    )
    assert facts.agent_opened and facts.first_response == (h(2), h(5))
    assert facts.replies == (h(1), h(5))


def test_a_sent_folder_reply_counts_from_its_date() -> None:
    facts = ticket_facts(
        [ev.Created(at=T0, actor=CAROL, source="imap"), reply(5, sent_at=h(2).isoformat())]
    )
    assert facts.first_response == (T0, h(2))


def test_one_touch_and_reopen_rate() -> None:
    period = Period(T0, h(100))
    builder = ReportBuilder(period, now=h(200))
    info = TicketInfo(1, "solved", T0)
    start = ev.Created(at=T0, actor=CAROL, source="lmtp")
    builder.add(info, [start, reply(1), status(1, "open", "solved")])
    builder.add(
        TicketInfo(2, "solved", T0),
        [start, reply(1), status(2, "open", "solved"), status(3, "solved", "open"), reply(4),
         status(5, "open", "solved")],
    )  # fmt: skip
    [row] = builder.result().rows
    assert (row.solved, row.one_touch, row.reopened_after_solve) == (2, 1, 1)
    assert row.one_touch_rate == row.reopen_rate == 0.5
    assert row.resolution.calendar.median == 1.5 * 3600  # first solves: 1h and 2h
    assert row.full_resolution.calendar.p90 == 5 * 3600  # last solves: 1h and 5h


def test_days_split_at_local_midnight_across_dst() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    whole = periods.dates(datetime(2026, 3, 28).date(), datetime(2026, 3, 30).date(), berlin)
    days = periods.split(whole, "day", berlin)
    assert [p.end - p.start for p in days] == [
        timedelta(hours=24), timedelta(hours=23), timedelta(hours=24)
    ]  # fmt: skip
    assert days[0].start == datetime(2026, 3, 27, 23, tzinfo=UTC)
    week = periods.split(whole, "week", berlin)
    assert [p.start.astimezone(berlin).weekday() for p in week] == [5, 0]


def test_age_buckets_are_half_open() -> None:
    assert age_bucket(timedelta(hours=23)) == "<1d"
    assert age_bucket(timedelta(days=1)) == "1-3d"
    assert age_bucket(timedelta(days=30)) == ">=30d"


def test_business_time_is_the_sla_clocks_whatever_was_asked_before() -> None:
    """The report's business seconds are what ``clock.elapsed`` counts, DST and holidays
    included, to the microsecond and whatever spans were asked first (another process
    folding a share of a report asks others)."""
    import random

    from inboxd.core.calendar import Calendar, make_calendar
    from inboxd.core.reports.business import on_policy_calendars
    from inboxd.core.sla import clock

    def office() -> Calendar:
        return make_calendar(
            "office",
            "Europe/Berlin",
            {d: ((540, 720), (780, 1050)) for d in range(5)} | {5: ((1320, 1800),)},
            holidays=frozenset({datetime(2026, 4, 3).date()}),
        )

    ticket = TicketInfo(1, "open", datetime(2026, 3, 20, tzinfo=UTC), sla_policy="standard")
    rnd = random.Random(11)
    base = datetime(2026, 3, 20, tzinfo=UTC)
    spans = []
    for _ in range(300):
        a = base + timedelta(microseconds=rnd.randrange(0, 10**6 * 86400 * 400))
        spans.append((a, a + timedelta(microseconds=rnd.randrange(-(10**9), 10**12))))
    forward, backward = on_policy_calendars({"standard": office()}), on_policy_calendars(
        {"standard": office()}
    )
    later_first = {s: backward(ticket, *s) for s in reversed(spans)}
    fresh = office()
    for a, b in spans:
        seconds = forward(ticket, a, b)
        assert seconds == later_first[(a, b)], (a, b)
        assert seconds == clock.elapsed(fresh, a, b).total_seconds(), (a, b)
