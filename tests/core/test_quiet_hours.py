"""Quiet hours, pure: which alert waits for which opening, and the summary's text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from inboxd.core import quiet_hours as qh
from inboxd.core.calendar import always_open, make_calendar

FRIDAY_EVENING = datetime(2026, 3, 6, 18, 0, tzinfo=UTC)
MONDAY_OPENING = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)

WEEKDAYS = {day: ((9 * 60, 17 * 60),) for day in range(5)}  # Monday to Friday, 09:00-17:00
OFFICE = make_calendar("office", "UTC", WEEKDAYS)
BERLIN = make_calendar("berlin", "Europe/Berlin", WEEKDAYS)
CALENDARS = {"office": OFFICE, "berlin": BERLIN, "24x7": always_open()}
QUIET = qh.QuietHours(frozenset({qh.NEW_VIP, qh.SLA_WARNING}), "office", {"de": "berlin"})


def test_kinds_of_rule_and_sla_alerts() -> None:
    assert qh.rule_alert_kind(priority="high", vip=True, new_ticket=True) == qh.NEW_VIP
    assert qh.rule_alert_kind(priority="normal", vip=False, new_ticket=True) == qh.NEW_TICKET
    assert qh.rule_alert_kind(priority="normal", vip=True, new_ticket=False) == qh.CUSTOMER_REPLY
    assert qh.rule_alert_kind(priority="urgent", vip=True, new_ticket=True) == qh.URGENT
    due = FRIDAY_EVENING
    assert qh.sla_alert_kind(now=due - timedelta(seconds=1), due_at=due) == qh.SLA_WARNING
    assert qh.sla_alert_kind(now=due, due_at=due) == qh.SLA_BREACH


def test_next_opening_of_a_closed_calendar_and_none_while_open() -> None:
    assert qh.next_opening(OFFICE, FRIDAY_EVENING) == MONDAY_OPENING
    assert qh.next_opening(OFFICE, MONDAY_OPENING) is None  # [open, close): open at 09:00
    assert qh.next_opening(OFFICE, MONDAY_OPENING - timedelta(seconds=1)) == MONDAY_OPENING
    assert qh.next_opening(always_open(), FRIDAY_EVENING) is None


def test_only_listed_kinds_wait_and_a_breach_never() -> None:
    def wait(kind: str, team: str | None = None, now: datetime = FRIDAY_EVENING) -> object:
        return qh.defer_until(QUIET, kind, team, CALENDARS, now)

    assert wait(qh.NEW_VIP) == MONDAY_OPENING
    assert wait(qh.SLA_WARNING) == MONDAY_OPENING
    assert wait(qh.NEW_TICKET) is None  # not listed
    everything = qh.QuietHours(frozenset({qh.SLA_BREACH, qh.URGENT, qh.NEW_VIP}), "office")
    assert qh.defer_until(everything, qh.SLA_BREACH, None, CALENDARS, FRIDAY_EVENING) is None
    assert qh.defer_until(everything, qh.URGENT, None, CALENDARS, FRIDAY_EVENING) is None
    assert wait(qh.NEW_VIP, now=MONDAY_OPENING + timedelta(hours=1)) is None  # open: at once


def test_a_team_waits_on_its_own_calendar() -> None:
    # Berlin opens at 08:00 UTC on Monday 9 March (CET, UTC+1)
    assert qh.defer_until(QUIET, qh.NEW_VIP, "de", CALENDARS, FRIDAY_EVENING) == datetime(
        2026, 3, 9, 8, 0, tzinfo=UTC
    )
    gone = qh.QuietHours(frozenset({qh.NEW_VIP}), "no-such-calendar")
    assert qh.defer_until(gone, qh.NEW_VIP, None, CALENDARS, FRIDAY_EVENING) is None


def test_summary_counts_each_kind_and_lists_the_alerts_oldest_first() -> None:
    items = [
        qh.Deferred(FRIDAY_EVENING + timedelta(hours=2), qh.SLA_WARNING, "SLA warning: [#7]"),
        qh.Deferred(FRIDAY_EVENING, qh.NEW_VIP, "New ticket [#5] [high VIP] Help"),
        qh.Deferred(FRIDAY_EVENING + timedelta(hours=1), qh.NEW_VIP, "New ticket [#6] [high VIP]"),
    ]
    message = qh.summary_message(items, now=MONDAY_OPENING)
    assert message.text == ("While the team was away: 3 alerts (2 new VIP tickets, 1 SLA warning)")
    lines = message.blocks[1]["text"]["text"].splitlines()
    assert lines == [
        "• Fri 18:00 UTC · New ticket [#5] [high VIP] Help",
        "• Fri 19:00 UTC · New ticket [#6] [high VIP]",
        "• Fri 20:00 UTC · SLA warning: [#7]",
    ]
    assert "posted at the opening 2026-03-09 09:00 UTC" in message.blocks[2]["elements"][0]["text"]


def test_a_long_night_is_cut_to_fit_and_counted() -> None:
    items = [
        qh.Deferred(FRIDAY_EVENING + timedelta(minutes=i), qh.NEW_VIP, "x" * 400)
        for i in range(200)
    ]
    message = qh.summary_message(items, now=MONDAY_OPENING)
    body = message.blocks[1]["text"]["text"]
    assert len(body) <= 3000
    shown = body.count("• ")
    assert 0 < shown < 200 and body.endswith(f"… and {200 - shown} more")
    assert message.text.startswith("While the team was away: 200 alerts (200 new VIP tickets)")
