"""The weekly digest, pure: which week is due, and the values its templates show.

A digest covers one local week (Monday 00:00 to Monday 00:00 in the configured
zone) and is due from the configured weekday and time of the week after it;
``due_week`` names the latest week due at ``now``, so a daemon that was down
sends the week it missed once, not every week it slept through (the database
key per team and week, ``db.digest.claim``, makes it exactly once).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta, tzinfo
from typing import Any

from inboxd.core.calendar import DAYS
from inboxd.core.reports.model import Figures, Period
from inboxd.core.reports.render import duration

WEEK = timedelta(days=7)


def due_week(now: datetime, zone: tzinfo, weekday: int, at: time) -> Period:
    """The latest week whose digest is due at ``now`` (sent ``weekday`` at ``at`` after it)."""
    local = now.astimezone(zone)
    monday = (local - timedelta(days=local.weekday())).date()
    send = datetime.combine(monday + timedelta(days=weekday), at, zone)
    if send > local:
        monday -= timedelta(days=7)
    end = datetime.combine(monday, time(0), zone)
    start = datetime.combine(monday - timedelta(days=7), time(0), zone)
    return Period(start, end)


def previous(p: Period) -> Period:
    zone = p.start.tzinfo
    day = p.start.astimezone(zone).date()
    return Period(datetime.combine(day - timedelta(days=7), time(0), zone), p.start)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _n(value: int) -> str:
    return str(value)


def figure_rows(this: Figures, before: Figures) -> list[dict[str, str]]:
    """The team's figures against the week before, as the templates print them."""
    rows: list[tuple[str, str, str]] = [
        ("Tickets created", _n(this.created), _n(before.created)),
        ("Tickets solved", _n(this.solved), _n(before.solved)),
        ("Reopened", _n(this.reopened), _n(before.reopened)),
        (
            "First response, median (business)",
            duration(this.first_response.business.median),
            duration(before.first_response.business.median),
        ),
        (
            "First response, median (calendar)",
            duration(this.first_response.calendar.median),
            duration(before.first_response.calendar.median),
        ),
        (
            "Resolution, median (calendar)",
            duration(this.resolution.calendar.median),
            duration(before.resolution.calendar.median),
        ),
        ("One-touch rate", _rate(this.one_touch_rate), _rate(before.one_touch_rate)),
        ("Satisfaction", _rate(this.satisfaction), _rate(before.satisfaction)),
        ("Survey response rate", _rate(this.response_rate), _rate(before.response_rate)),
    ]
    for c in this.sla:
        old = next((o for o in before.sla if (o.policy, o.target) == (c.policy, c.target)), None)
        rows.append(
            (
                f"SLA {c.policy} {c.target.replace('_', ' ')}: breached",
                _n(c.breached),
                _n(old.breached) if old else "0",
            )
        )
    return [{"name": a, "this": b, "before": c} for a, b, c in rows]


def _shade(share: float) -> str:
    """White to a strong blue; readable in every client (a plain background colour)."""
    low, high = (255, 255, 255), (21, 101, 192)
    rgb = [round(lo + (hi - lo) * share) for lo, hi in zip(low, high, strict=True)]
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def heat_map(
    arrivals: Sequence[Sequence[int]], staffing: Sequence[Sequence[int]]
) -> list[dict[str, Any]]:
    """One row per weekday: each hour's arrivals, its shading and suggested agents."""
    top = max((n for day in arrivals for n in day), default=0)
    rows = []
    for d, hours in enumerate(arrivals):
        cells = []
        for h, n in enumerate(hours):
            share = n / top if top else 0.0
            cells.append(
                {
                    "n": n,
                    "bg": _shade(share),
                    "fg": "#ffffff" if share > 0.55 else "#000000",
                    "agents": staffing[d][h] if staffing else 0,
                }
            )
        line = " ".join(f"{c['n']}[{c['agents']}]" if c["agents"] else str(c["n"]) for c in cells)
        rows.append({"day": DAYS[d], "cells": cells, "line": line})
    return rows
