"""Backoff schedule: exponential, jittered, capped, and ending at retry_for."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from inboxd.core.retry import BASE_DELAY, MAX_DELAY, backoff, next_attempt

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_backoff_doubles_then_caps() -> None:
    full = [backoff(n, 1.0) for n in range(1, 10)]
    assert full[0] == BASE_DELAY
    assert full[1] == 2 * BASE_DELAY
    assert full[2] == 4 * BASE_DELAY
    assert full[-1] == MAX_DELAY
    assert all(a <= b for a, b in itertools.pairwise(full))
    assert backoff(1000, 1.0) == MAX_DELAY


def test_jitter_spans_half_to_full_delay() -> None:
    assert backoff(3, 0.0) == 2 * BASE_DELAY
    assert backoff(3, 1.0) == 4 * BASE_DELAY
    assert backoff(3, 0.5) == 3 * BASE_DELAY
    values = {backoff(4, r / 10) for r in range(11)}
    assert len(values) == 11  # the random number really spreads retries


@pytest.mark.parametrize(("attempt", "rng"), [(0, 0.5), (-1, 0.5), (1, -0.1), (1, 1.5)])
def test_bad_arguments(attempt: int, rng: float) -> None:
    with pytest.raises(ValueError):
        backoff(attempt, rng)


def test_next_attempt_within_window() -> None:
    when = next_attempt(1, T0, 0.0, timedelta(hours=1), first_attempt_at=T0)
    assert when == T0 + BASE_DELAY / 2


def test_retry_for_in_seconds_like_the_config() -> None:
    when = next_attempt(2, T0, 1.0, 3600.0, first_attempt_at=T0)
    assert when == T0 + 2 * BASE_DELAY


def test_last_attempt_lands_on_the_deadline_then_gives_up() -> None:
    start = T0
    now = start + timedelta(minutes=55)
    assert next_attempt(8, now, 1.0, timedelta(hours=1), first_attempt_at=start) == (
        start + timedelta(hours=1)
    )
    assert next_attempt(9, start + timedelta(hours=1), 0.3, 3600, first_attempt_at=start) is None
    assert next_attempt(9, start + timedelta(hours=2), 0.3, 3600, first_attempt_at=start) is None


def test_a_whole_schedule_is_bounded_and_increasing() -> None:
    start = now = T0
    times = []
    for attempt in range(1, 1000):
        nxt = next_attempt(attempt, now, 0.7, timedelta(days=2), first_attempt_at=start)
        if nxt is None:
            break
        assert nxt > now
        times.append(nxt)
        now = nxt
    assert times[-1] == start + timedelta(days=2)
    # about 2 days / 1 h max delay (with jitter 0.7 -> 51 min) plus the ramp-up
    assert 50 < len(times) < 70
