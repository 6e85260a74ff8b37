"""How many agents each hour of the week needs to meet a first-response target (Erlang C).

Each hour is taken as a steady queue (M/M/N): tickets arrive at random at the
hour's usual rate, each takes ``handle`` seconds of an agent's time, and the
question is the smallest number of agents N for which at least ``level`` of
the tickets are answered within ``target``. Erlang C gives the chance a ticket
waits at all, and the service level follows (docs/reports.md has the formulas).
It is an estimate: mail does not leave when it waits, and a target longer
than the hour lets work spill into the next one, so read it as "who must be
on duty", not as a schedule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

MAX_AGENTS = 1000


def erlang_c(traffic: float, agents: int) -> float:
    """The chance an arrival must wait, with ``traffic`` Erlangs offered to ``agents``;
    1 when the agents cannot keep up (N <= A). Erlang B by its recursion, then C."""
    if traffic <= 0:
        return 0.0
    if agents <= traffic:
        return 1.0
    b = 1.0
    for k in range(1, agents + 1):
        b = traffic * b / (k + traffic * b)
    return b / (1 - (traffic / agents) * (1 - b))


def service_level(traffic: float, agents: int, handle: float, target: float) -> float:
    """The share answered within ``target`` seconds: 1 - C * e^(-(N - A) * target / handle)."""
    if agents <= traffic:
        return 0.0
    return 1 - erlang_c(traffic, agents) * math.exp(-(agents - traffic) * target / handle)


def agents_needed(per_hour: float, handle: float, target: float, level: float = 0.8) -> int:
    """The fewest agents for ``level`` of ``per_hour`` arrivals answered within ``target``
    seconds, each taking ``handle`` seconds; 0 when nothing arrives."""
    if per_hour <= 0:
        return 0
    if handle <= 0:
        raise ValueError("handle time must be positive")
    traffic = per_hour * handle / 3600.0
    agents = max(1, math.floor(traffic) + 1)
    while service_level(traffic, agents, handle, target) < level and agents < MAX_AGENTS:
        agents += 1
    return agents


def weekly(
    arrivals: Sequence[Sequence[int]],
    weeks: float,
    *,
    handle: float,
    target: float,
    level: float = 0.8,
) -> tuple[tuple[int, ...], ...]:
    """Agents per [weekday][hour] from arrivals counted over ``weeks`` weeks."""
    return tuple(
        tuple(agents_needed(n / weeks, handle, target, level) for n in day) for day in arrivals
    )
