"""core.spikes: windows, baseline and the start / on / over / quiet decision; the
rule files' ``spikes:`` section and its errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.rules_kit import errors, ruleset

from inboxd.core.spikes import (
    ON,
    OVER,
    QUIET,
    START,
    Counts,
    Spike,
    SpikeRule,
    decide,
    windows,
)

NOW = datetime(2026, 3, 30, 10, 0, tzinfo=UTC)  # a Monday
RULE = SpikeRule("refund", factor=3, min_count=8)


def test_same_hour_of_past_weeks_once_history_covers_them() -> None:
    spans = windows(RULE, NOW, NOW - timedelta(days=15))
    assert spans.current == (NOW - timedelta(hours=1), NOW)
    assert [a for a, _ in spans.weekly] == [
        NOW - timedelta(days=7, hours=1),
        NOW - timedelta(days=14, hours=1),
    ]
    assert spans.rolling is None
    counts = Counts(30, (4, 6))
    assert decide(RULE, spans, counts, None, NOW).baseline == 5.0
    assert decide(RULE, spans, counts, None, NOW).action == START  # 30 > 3 x 5
    assert decide(RULE, spans, Counts(15, (4, 6)), None, NOW).action == QUIET  # 15 <= 15


def test_rolling_average_when_history_is_short_and_nothing_before_that() -> None:
    young = windows(RULE, NOW, NOW - timedelta(hours=5))
    assert young.weekly == () and young.rolling is None
    assert decide(RULE, young, Counts(50), None, NOW).action == QUIET  # no baseline yet
    spans = windows(RULE, NOW, NOW - timedelta(hours=9))
    assert spans.rolling == (NOW - timedelta(hours=9), NOW - timedelta(hours=1))
    decision = decide(RULE, spans, Counts(9, rolling=8), None, NOW)
    assert decision.baseline == 1.0 and decision.action == START
    assert decide(RULE, spans, Counts(7, rolling=0), None, NOW).action == QUIET  # min_count


def test_on_and_over_against_the_baseline_frozen_at_start_then_a_quiet_window() -> None:
    spans = windows(RULE, NOW, NOW - timedelta(hours=9))
    on = Spike(NOW - timedelta(minutes=30), baseline=1.0, peak=12)
    # the burst is in the rolling history now, but the bar stays where it was
    assert decide(RULE, spans, Counts(12, rolling=40), on, NOW).action == ON
    assert decide(RULE, spans, Counts(3, rolling=40), on, NOW).action == OVER
    ended = Spike(on.started_at, 1.0, 12, ended_at=NOW - timedelta(minutes=20))
    assert decide(RULE, spans, Counts(20, rolling=8), ended, NOW).action == QUIET
    later = NOW + timedelta(minutes=41)
    spans = windows(RULE, later, NOW - timedelta(hours=9))
    assert decide(RULE, spans, Counts(20, rolling=8), ended, later).action == START


def test_spikes_section_defaults_and_per_tag_settings() -> None:
    rs = ruleset(
        """
spikes:
  factor: 5
  channel: "#ops"
  tags:
    refund: {min_count: 3, window: 30m}
    outage:
"""
    )
    refund, outage = rs.spikes.tags["refund"], rs.spikes.tags["outage"]
    assert (refund.factor, refund.min_count, refund.window) == (5, 3, timedelta(minutes=30))
    assert (outage.factor, outage.min_count, outage.channel) == (5, 10, "#ops")
    assert ruleset("rules: []\n").spikes.tags == {}


def test_spikes_errors_are_file_line_messages() -> None:
    found = errors(
        "spikes:\n  factor: 1\n  tags: [refund]\n",
        "spikes:\n  tags:\n    other: {weeks: 40, min_count: x}\n",
        "spikes:\n  tags:\n    refund: {weeks: 40, min_count: x}\n    'a b': {}\n  windw: 1h\n",
        "spikes: {factor: 3}\n",
    )
    assert found == [
        "rules/10-t.yaml:2:11: spikes factor: '1' must be a number above 1",
        "rules/11-t.yaml:3:20: spikes weeks: '40' must be a whole number 1-12",
        "rules/11-t.yaml:3:35: spikes min_count: 'x' must be a whole number 1-1000000",
        "rules/12-t.yaml:3:5: spikes: tag 'refund' is already watched at rules/10-t.yaml:3:10",
        "rules/12-t.yaml:4:5: spikes: bad tag 'a b' (no spaces or commas)",
        "rules/12-t.yaml:5:3: unknown spikes key 'windw' (did you mean 'window'?)",
        "rules/13-t.yaml:1:9: spikes: 'tags' is required (the tags to watch)",
    ]
