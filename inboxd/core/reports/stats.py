"""Median and 90th percentile the way docs/reports.md defines them."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from inboxd.core.reports.model import Summary


def percentile(sorted_values: Sequence[float], share: float) -> float:
    """Nearest rank: the smallest value with at least ``share`` of the values at or below it."""
    rank = max(1, math.ceil(share * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(values: Sequence[float]) -> Summary:
    """Median (the mean of the middle two for an even count), nearest-rank p90, mean."""
    if not values:
        return Summary()
    ordered = sorted(values)
    return Summary(
        n=len(ordered),
        median=float(statistics.median(ordered)),
        p90=float(percentile(ordered, 0.9)),
        mean=float(statistics.fmean(ordered)),
    )
