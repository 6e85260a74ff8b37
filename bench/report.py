"""``inboxd report --since 30d`` over 1,000,000 tickets and their events in SQLite.

Builds the database once (schema by ``inboxd db upgrade``'s code, rows in bulk
with ``executemany``, not through the pipeline): two years of tickets ending
now, each created, routed, notified, answered and (all but the newest and one
in a hundred) solved, some pending and reopened on the way. Then runs the CLI
as a subprocess several times and prints the median and fastest wall time, the
database size, and two baselines measured in the same run: ``python -c pass``
and a plain ``SELECT count(*)`` over the event table (a shared machine moves
every figure: compare with those, not with another day's), and the report in
one process (``--workers 1``) beside the default (one process per core).
Run: ``python bench/report.py [--tickets N] [--db PATH] [--runs N]``; an existing
``--db`` is reused.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CONFIG = """\
[database]
url = "sqlite:///{db}"

[helpdesk]
domain = "help.example.com"
secret_file = "secret"

[lmtp]
enabled = false

[rules]
dir = "{rules}"

[[mailbox]]
name = "support"
address = "support@help.example.com"
"""
TEAMS = {"frontline": ["alice", "bob", "chloe"], "billing": ["dana", "emil"], "sre": ["farid"]}
TAGS = [[], [], ["printer"], ["invoice"], ["vpn"], ["printer", "urgent"]]
POLICIES = ["standard", "standard", "standard", "vip", None]
SPAN = timedelta(days=730)
T_COLS = (
    "id, subject, normalized_subject, status, requester, requester_name, mailbox, priority, vip,"
    " team, assignee, sla_policy, tags, created_at, updated_at, status_changed_at, acknowledged,"
    " first_agent_reply_at, last_customer_mail_at, solved_at, reopened_count"
)
E_COLS = "ticket_id, at, actor, kind, data"


def stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


class _Log:
    """One ticket's event rows."""

    def __init__(self, ticket: int) -> None:
        self.ticket = ticket
        self.rows: list[tuple[object, ...]] = []

    def add(self, at: datetime, actor: str, kind_: str, /, **data: object) -> None:
        self.rows.append((self.ticket, stamp(at), actor, kind_, json.dumps(data)))


Rows = tuple[tuple[object, ...], list[tuple[object, ...]]]


def one_ticket(i: int, n: int, now: datetime, rnd: random.Random) -> Rows:
    """Ticket ``i`` of ``n`` (spread evenly over two years): its row and its event rows."""
    created = now - SPAN * (1 - i / n) - timedelta(minutes=1)
    team = rnd.choice(list(TEAMS))
    agent = rnd.choice(TEAMS[team])
    who = f"customer{i % 50000}@example.net"
    me, log = f"agent:{agent}", _Log(i)
    log.add(created, f"customer:{who}", "created", source="lmtp", follow_up_of=None)
    log.add(created, "rule:default", "rule", file="rules/90-default.yaml", line=3,
            reasons=["always"], applied=[f"team={team}"], overridden=[])  # fmt: skip
    log.add(created, f"customer:{who}", "message", message=i, kind="normal", matched_by="new")
    log.add(created, "system", "notified", agents=[agent], event="created")
    reply = created + timedelta(minutes=rnd.expovariate(1 / 300))
    status, solved, reopened = "new", None, 0
    if reply < now:
        log.add(reply, me, "status", **{"from": "new", "to": "open", "why": "agent replied"})
        log.add(reply, me, "agent_reply", message=i, message_id=f"r{i}@x", first_response=True,
                to=[who], canned=None, via=None, sent_at=None)  # fmt: skip
        status = "open"
        done = reply + timedelta(minutes=rnd.expovariate(1 / 1500))
        if done < now and rnd.random() > 0.01:
            log.add(done, me, "status", **{"from": "open", "to": "solved", "why": None})
            status, solved = "solved", done
            back = done + timedelta(hours=rnd.uniform(1, 48))
            if rnd.random() < 0.05 and back < now:
                why = "customer replied"
                log.add(back, "system", "status", **{"from": "solved", "to": "open", "why": why})
                log.add(back, f"customer:{who}", "message", message=i, kind="normal",
                        matched_by="header")  # fmt: skip
                status, reopened = "open", 1
    last = max(r[1] for r in log.rows)
    row = (
        i, f"Question {i}", f"question {i}", status, who, "Customer", "support", "normal",
        False, team, agent, rnd.choice(POLICIES), json.dumps(rnd.choice(TAGS)), stamp(created),
        last, last, True, stamp(reply) if status != "new" else None, stamp(created),
        stamp(solved) if solved else None, reopened,
    )  # fmt: skip
    return row, log.rows


def history(n: int, now: datetime, seed: int = 7) -> Iterator[Rows]:
    rnd = random.Random(seed)
    for i in range(1, n + 1):
        yield one_ticket(i, n, now, rnd)


def build(db: Path, n: int, now: datetime) -> None:
    from inboxd.db.engine import make_engine, upgrade

    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    engine.dispose()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    tickets: list[tuple[object, ...]] = []
    events: list[tuple[object, ...]] = []

    def flush() -> None:
        conn.executemany(f"INSERT INTO ticket ({T_COLS}) VALUES ({','.join('?' * 21)})", tickets)
        conn.executemany(f"INSERT INTO event ({E_COLS}) VALUES (?,?,?,?,?)", events)
        conn.commit()
        tickets.clear()
        events.clear()

    for row, evs in history(n, now):
        tickets.append(row)
        events.extend(evs)
        if len(tickets) >= 20000:
            flush()
    flush()
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()


def wall(cmd: list[str], runs: int, env: dict[str, str]) -> tuple[float, float, str]:
    times, out = [], ""
    for _ in range(runs):
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        times.append(time.perf_counter() - t0)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr}")
        out = done.stdout
    return statistics.median(times), min(times), out


def count_events(db: Path, runs: int, where: str = "") -> tuple[float, int]:
    """``SELECT count(*)`` over the event table: SQLite counts a plain one from an index's
    page headers; a WHERE on an unindexed column makes it read every row."""
    times, n = [], 0
    for _ in range(runs):
        conn = sqlite3.connect(db)
        t0 = time.perf_counter()
        n = conn.execute(f"SELECT count(*) FROM event {where}").fetchone()[0]
        times.append(time.perf_counter() - t0)
        conn.close()
    return statistics.median(times), n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, help="database file to build or reuse")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-report-"))
    db = args.db or home / "inboxd.db"
    if not db.exists():
        t0 = time.perf_counter()
        build(db, args.tickets, datetime.now(UTC))
        print(f"built {args.tickets:,} tickets in {time.perf_counter() - t0:.0f} s")
    (home / "secret").write_text("bench-report-secret-0123456789\n")
    config = home / "inboxd.toml"
    config.write_text(CONFIG.format(db=db, rules=ROOT / "rules"))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    inboxd = [sys.executable, "-m", "inboxd", "--config", str(config)]
    size = db.stat().st_size + sum(p.stat().st_size for p in db.parent.glob(db.name + "-wal"))
    count_s, n_events = count_events(db, args.runs)
    scan_s, _ = count_events(db, args.runs, "WHERE actor != ''")
    pass_s, _, _ = wall([sys.executable, "-c", "pass"], args.runs, env)
    median, best, out = wall([*inboxd, "report", "--since", "30d", "--json"], args.runs, env)
    one = [*inboxd, "report", "--since", "30d", "--json", "--workers", "1"]
    one_median, one_best, _ = wall(one, args.runs, env)
    row = json.loads(out)["rows"][0]
    print(f"database: {size / 1e9:.2f} GB, {n_events:,} events")
    print(f"baseline python -c pass:            {pass_s:6.2f} s")
    print(f"baseline SELECT count(*) FROM event: {count_s:6.2f} s")
    print(f"baseline the same WHERE actor != '': {scan_s:6.2f} s (reads every event row)")
    print(f"inboxd report --since 30d --json:    {median:6.2f} s median, {best:.2f} s best "
          f"({args.runs} runs; goal < 5 s; {os.cpu_count()} cores)")  # fmt: skip
    print(f"  the same in one process (--workers 1): {one_median:6.2f} s median, "
          f"{one_best:.2f} s best")  # fmt: skip
    print(f"  created {row['created']:,}, solved {row['solved']:,}, "
          f"backlog {json.loads(out)['backlog']['total']:,}")  # fmt: skip


if __name__ == "__main__":
    main()
