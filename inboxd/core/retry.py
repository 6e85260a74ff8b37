"""When to try a temporarily failed delivery again.

Exponential backoff (1 min, 2, 4, ... capped at 1 h) with "equal jitter": the
delay is between half and all of the nominal one, so mails that failed together
(the SMTP server was down) do not all come back in the same second, and no
retry is ever immediate. Retrying stops ``retry_for`` after the first attempt;
one last attempt is placed at that deadline, so the whole window is used.
The random number comes in as an argument: this stays pure and testable.
"""

from __future__ import annotations

from datetime import datetime, timedelta

BASE_DELAY = timedelta(minutes=1)
MAX_DELAY = timedelta(hours=1)


def backoff(attempt: int, rng_value: float) -> timedelta:
    """Delay after the ``attempt``-th failed attempt (1-based), jittered by ``rng_value``."""
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    if not 0.0 <= rng_value <= 1.0:
        raise ValueError("rng_value must be in [0, 1]")
    exponent = min(attempt - 1, 30)  # 2**30 minutes is far past MAX_DELAY already
    nominal = min(BASE_DELAY * (1 << exponent), MAX_DELAY)
    return nominal / 2 + (nominal / 2) * rng_value


def next_attempt(
    attempt: int,
    now: datetime,
    rng_value: float,
    retry_for: timedelta | float,
    *,
    first_attempt_at: datetime,
) -> datetime | None:
    """When to try again after ``attempt`` failed attempts, or None: give up (failed).

    ``retry_for`` is a timedelta or seconds (as in ``SmtpConfig.retry_for``),
    counted from ``first_attempt_at``.
    """
    window = retry_for if isinstance(retry_for, timedelta) else timedelta(seconds=retry_for)
    deadline = first_attempt_at + window
    if now >= deadline:
        return None
    return min(now + backoff(attempt, rng_value), deadline)
