"""core.reports.staffing against the published Erlang C worked example.

Call Centre Helper, "Erlang C formula - made simple with an easy worked
example": 100 calls in 30 minutes, 180 s handle time = 10 Erlangs; with 11
agents the chance to wait is 68.21 %, and 80 % answered in 20 s takes 14
agents (13 give 79.6 %).
"""

from __future__ import annotations

import pytest

from inboxd.core.reports.staffing import agents_needed, erlang_c, service_level, weekly


def test_the_worked_example() -> None:
    assert erlang_c(10.0, 11) == pytest.approx(0.6821, abs=5e-5)
    assert service_level(10.0, 13, 180, 20) == pytest.approx(0.7956, abs=5e-4)
    assert service_level(10.0, 14, 180, 20) == pytest.approx(0.8884, abs=5e-4)
    assert agents_needed(200, 180, 20, 0.8) == 14


def test_edges() -> None:
    assert erlang_c(5.0, 5) == 1.0  # the agents cannot keep up
    assert agents_needed(0, 600, 3600) == 0
    assert agents_needed(0.5, 600, 4 * 3600) == 1
    grid = weekly([[0] * 23 + [8]] + [[0] * 24] * 6, 4, handle=900, target=3600)
    assert grid[0][23] == 1 and sum(map(sum, grid)) == 1
