"""A report as JSON values, as CSV rows (one figure per row) and as text.

Durations are seconds in JSON and CSV (for spreadsheets) and ``1h05m`` in text.
The JSON shape is stable: fields are added, never renamed or removed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from inboxd.core.calendar import DAYS
from inboxd.core.reports.model import Figures, Report, Summary, Timing

CSV_HEADER = ("section", "period_start", "period_end", "group_by", "group", "metric", "value")
TIMINGS = ("first_response", "next_response", "resolution", "full_resolution")
SATISFACTION = (
    "surveys_sent",
    "surveys_answered",
    "response_rate",
    "rated_good",
    "rated_bad",
    "satisfaction",
)


def _iso(at: datetime) -> str:
    return at.isoformat()


def _summary(s: Summary) -> dict[str, Any]:
    return {"n": s.n, "median": s.median, "p90": s.p90, "mean": s.mean}


def _timing(t: Timing) -> dict[str, Any]:
    return {"calendar": _summary(t.calendar), "business": _summary(t.business)}


def figures_dict(f: Figures, sla: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "period": {"start": _iso(f.period.start), "end": _iso(f.period.end)},
        "group": f.group,
        "created": f.created,
        "solved": f.solved,
        "reopened": f.reopened,
        "one_touch": f.one_touch,
        "one_touch_rate": f.one_touch_rate,
        "reopened_after_solve": f.reopened_after_solve,
        "reopen_rate": f.reopen_rate,
        "surveys_sent": f.surveys_sent,
        "surveys_answered": f.surveys_answered,
        "response_rate": f.response_rate,
        "rated_good": f.rated_good,
        "rated_bad": f.rated_bad,
        "satisfaction": f.satisfaction,
    }
    for name in TIMINGS:
        out[name] = _timing(getattr(f, name))
    if sla:
        out["sla"] = [
            {
                "policy": c.policy,
                "target": c.target,
                "achieved": c.achieved,
                "breached": c.breached,
                "active": c.active,
            }
            for c in f.sla
        ]
    return out


def to_dict(report: Report) -> dict[str, Any]:
    b = report.backlog
    return {
        "period": {"start": _iso(report.period.start), "end": _iso(report.period.end)},
        "group_by": report.group_by,
        "filters": {
            "team": report.filters.team,
            "agent": report.filters.agent,
            "tag": report.filters.tag,
            "mailbox": report.filters.mailbox,
        },
        "timezone": report.timezone,
        "durations_in": "seconds",
        "sla_included": report.sla_included,
        "rows": [figures_dict(f, report.sla_included) for f in report.rows],
        "backlog": {
            "as_of": _iso(b.as_of),
            "total": b.total,
            "by_status": b.by_status,
            "by_team": b.by_team,
            "by_agent": b.by_agent,
            "by_tag": b.by_tag,
            "by_age": b.by_age,
        },
        "arrivals": {DAYS[d]: list(hours) for d, hours in enumerate(report.arrivals)},
        "notes": list(report.notes),
    }


def csv_rows(report: Report) -> Iterator[tuple[Any, ...]]:
    """Long format: one figure per row, so a spreadsheet can pivot it any way."""
    yield CSV_HEADER
    by = report.group_by or ""
    for f in report.rows:
        head = ("figures", _iso(f.period.start), _iso(f.period.end), by, f.group)
        flat = figures_dict(f, report.sla_included)
        for name in ("created", "solved", "reopened", "one_touch", "one_touch_rate"):
            yield (*head, name, _cell(flat[name]))
        for name in ("reopened_after_solve", "reopen_rate", *SATISFACTION):
            yield (*head, name, _cell(flat[name]))
        for name in TIMINGS:
            for kind in ("calendar", "business"):
                for stat, value in flat[name][kind].items():
                    yield (*head, f"{name}_{kind}_{stat}", _cell(value))
        for c in f.sla:
            for state in ("achieved", "breached", "active"):
                yield (*head, f"sla_{c.policy}_{c.target}_{state}", getattr(c, state))
    b = report.backlog
    whole = (_iso(report.period.start), _iso(report.period.end))
    for way in ("status", "team", "agent", "tag", "age"):
        for key, n in getattr(b, f"by_{way}").items():
            yield ("backlog", *whole, way, key, "tickets", n)
    yield ("backlog", *whole, "", "", "tickets", b.total)
    for d, hours in enumerate(report.arrivals):
        for hour, n in enumerate(hours):
            yield ("arrivals", *whole, "hour_of_week", f"{DAYS[d]} {hour:02d}", "created", n)


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    return "" if value is None else value


def duration(seconds: float | None) -> str:
    """1h05m, 3d04h, 42s; '-' when there is nothing to measure."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def text_lines(report: Report) -> Iterator[str]:
    p = report.period
    yield f"Report {_iso(p.start)} .. {_iso(p.end)} (times: median / p90, calendar | business)"
    for f in report.rows:
        label = f.group if report.group_by else "all tickets"
        if len(report.periods) > 1:
            label = f"{f.period.start.date()} {label}"
        yield ""
        yield f"{label}: created {f.created}, solved {f.solved}, reopened {f.reopened}"
        for name in TIMINGS:
            t: Timing = getattr(f, name)
            cal, biz = t.calendar, t.business
            yield (
                f"  {name.replace('_', ' '):<16} n={cal.n:<5} {duration(cal.median)} / "
                f"{duration(cal.p90)} | {duration(biz.median)} / {duration(biz.p90)} (n={biz.n})"
            )
        yield f"  one-touch {_rate(f.one_touch_rate)}, reopen rate {_rate(f.reopen_rate)}"
        yield (
            f"  satisfaction {_rate(f.satisfaction)} (good {f.rated_good}, bad {f.rated_bad}),"
            f" response rate {_rate(f.response_rate)}"
            f" ({f.surveys_answered} of {f.surveys_sent} surveys)"
        )
        for c in f.sla:
            yield (
                f"  sla {c.policy}/{c.target}: achieved {c.achieved}, breached {c.breached},"
                f" active {c.active}"
            )
    b = report.backlog
    yield ""
    yield f"Backlog at {_iso(b.as_of)}: {b.total}"
    for way in ("status", "team", "agent", "tag", "age"):
        counts = getattr(b, f"by_{way}")
        yield f"  by {way}: " + ", ".join(f"{k} {n}" for k, n in counts.items())
    yield ""
    yield f"Arrivals by hour ({report.timezone}), hours 00..23:"
    for d, hours in enumerate(report.arrivals):
        yield f"  {DAYS[d]} " + " ".join(f"{n:>3}" for n in hours)
    for note in report.notes:
        yield f"Note: {note}"
