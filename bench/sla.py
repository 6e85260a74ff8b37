"""The SLA sweep against a full scan of the open tickets, in the same run.

Builds a SQLite database with N open tickets under an SLA policy (default
1,000,000), of which D are due now (default 100) and have a history (a
customer mail, so their first-response clock runs); the others are due in a
month. Then measures:

(a) the sweep: ``SlaSweep.run_once`` (reads the due tickets through
    ``ix_ticket_sla_due_at``, recomputes each from its events, claims and
    records its stages), median of several runs on fresh copies of the due
    rows;
(b) the baseline: a full scan of the open tickets (what a sweep without the
    index would have to read), one SELECT of every open ticket's id, policy
    and status;
(c) a policy change: marking every open ticket due again with an
    ``sla_recomputed`` event (``recompute_changed``), and the sweep's
    recompute rate per ticket measured on the tickets with a history, from
    which the time to recompute them all follows.

Times are wall-clock (the work is SQLite I/O and Python in this process).

Usage: python bench/sla.py [--tickets 1000000] [--due 100] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from inboxd.db.engine import make_engine, upgrade
from inboxd.rulesdir import RuleStore
from inboxd.sched.sla_sweep import SlaSweep, recompute_changed

NOW = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)  # a Tuesday noon
RULES = textwrap.dedent(
    """
    version: 1
    calendars:
      office:
        timezone: Europe/Berlin
        hours: {mon-fri: 09:00-17:30}
    sla_policies:
      standard:
        calendar: office
        first_response: 4h
        resolution: 3d
        pause_when: [pending]
        stages: [warn at 75%, at breach]
    rules: []
    """
)


class CountingActions:
    """Stage actions that only count (the bench measures the sweep, not the mail)."""

    def __init__(self) -> None:
        self.fired = 0

    def fire(self, *args: object) -> None:
        self.fired += 1


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def build(path: Path, tickets: int, due: int) -> None:
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    import sqlite3

    created = NOW - timedelta(days=1)
    later = NOW + timedelta(days=30)
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    rows = (
        (
            i,
            f"ticket {i}",
            "open",
            f"c{i}@customer.example",
            "support",
            "normal",
            0,
            "standard",
            "[]",
            _iso(created),
            _iso(created),
            _iso(created),
            0,
            0,
            _iso(NOW - timedelta(minutes=1) if i <= due else later),
        )
        for i in range(1, tickets + 1)
    )
    con.executemany(
        "INSERT INTO ticket (id, subject, status, requester, mailbox, priority, vip,"
        " sla_policy, tags, created_at, updated_at, status_changed_at, acknowledged,"
        " reopened_count, sla_due_at, normalized_subject, requester_name)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?, '', '')",
        rows,
    )
    events = []
    for i in range(1, due + 1):
        events.append(
            (i, _iso(created), f"customer:c{i}@x", "created", json.dumps({"source": "b"}))
        )
        events.append((i, _iso(created), f"customer:c{i}@x", "message", json.dumps({"message": i})))
    con.executemany(
        "INSERT INTO event (ticket_id, at, actor, kind, data) VALUES (?,?,?,?,?)", events
    )
    con.commit()
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="inboxd-bench-sla-") as tmp:
        root = Path(tmp)
        (root / "rules").mkdir()
        (root / "rules" / "00.yaml").write_text(RULES)
        store = RuleStore()
        assert store.reload(root / "rules") == []
        db = root / "sla.db"
        start = time.perf_counter()
        build(db, args.tickets, args.due)
        print(
            f"built {args.tickets:,} open tickets ({args.due} due) in"
            f" {time.perf_counter() - start:.1f} s, {db.stat().st_size / 1e6:.0f} MB"
        )
        engine = make_engine(f"sqlite:///{db}")
        sweeps, scans = [], []
        for _ in range(args.runs):
            with engine.begin() as conn:  # the same due tickets again, stages unfired
                conn.execute(text("DELETE FROM slastage"))
                conn.execute(text("DELETE FROM event WHERE kind = 'sla_stage'"))
                conn.execute(
                    text("UPDATE ticket SET sla_due_at = :d WHERE id <= :n"),
                    {"d": _iso(NOW - timedelta(minutes=1)), "n": args.due},
                )
            actions = CountingActions()
            sweep = SlaSweep(engine, lambda: store.current, actions, clock=lambda: NOW)
            t0 = time.perf_counter()
            report = sweep.run_once()
            sweeps.append(time.perf_counter() - t0)
            assert report.due == args.due and report.errors == 0, report
            t0 = time.perf_counter()
            with engine.connect() as conn:
                n = len(
                    conn.execute(
                        text(
                            "SELECT id, sla_policy, status FROM ticket"
                            " WHERE status IN ('new', 'open', 'pending')"
                        )
                    ).all()
                )
            scans.append(time.perf_counter() - t0)
            assert n == args.tickets
        sweep_s, scan_s = statistics.median(sweeps), statistics.median(scans)
        print(
            f"(a) sweep of {args.due} due tickets: {sweep_s * 1000:.1f} ms"
            f" (median of {args.runs}; {report.fired} stages fired, {report.skipped} skipped)"
        )
        print(f"(b) full scan of {args.tickets:,} open tickets: {scan_s * 1000:.0f} ms")
        print(f"    the sweep is {scan_s / sweep_s:.0f}x faster than reading the open tickets")
        changed = store.current
        assert changed is not None
        from dataclasses import replace

        policy = changed.sla_policies["standard"]
        edited = replace(changed, sla_policies={"standard": replace(policy, resolution=None)})
        t0 = time.perf_counter()
        recompute_changed(engine, changed, edited, NOW)
        mark_s = time.perf_counter() - t0
        print(
            f"(c) policy change: {args.tickets:,} tickets marked due, each with an event,"
            f" in {mark_s:.1f} s"
        )
        with engine.begin() as conn:  # time the recompute on the tickets with a history
            conn.execute(
                text("UPDATE ticket SET sla_due_at = :d WHERE id > :n"),
                {"d": _iso(NOW + timedelta(days=30)), "n": args.due},
            )
        sample = SlaSweep(engine, lambda: edited, CountingActions(), clock=lambda: NOW)
        t0 = time.perf_counter()
        done = sample.run_once()
        per = (time.perf_counter() - t0) / max(done.due, 1)
        print(
            f"    recompute: {per * 1e3:.2f} ms a ticket (over the {done.due} with a history);"
            f" all {args.tickets:,} in about {per * args.tickets:.0f} s of sweeps"
        )
        print(
            f"    a sweep that scanned and computed every open ticket would take about"
            f" {scan_s + per * args.tickets:.0f} s: {(scan_s + per * args.tickets) / sweep_s:.0f}x"
            " the indexed sweep"
        )
        engine.dispose()


if __name__ == "__main__":
    main()
