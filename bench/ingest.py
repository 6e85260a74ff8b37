"""Ingest throughput: inboxd sync --once against the raw imapclient + email baseline.

Preloads N realistic mails (threads of 1-8, 1-80 KB, some HTML and
attachments) into a private Dovecot, then measures in the same run:

(a) baseline: imapclient FETCH BODY.PEEK[] of every mail in batches of 500
    plus ``email.message_from_bytes(policy=default)``, nothing stored;
(b) ``inboxd sync --once`` into a fresh SQLite database (a subprocess; its
    wall time includes interpreter start-up, from byte code written beforehand),
    with its peak RSS (the inboxd process and its ingest workers together,
    sampled every 50 ms), three times:
    storing only (no rules, no acknowledgements) without ingest workers, the
    same with the default workers (one per core beyond the first), and with the
    example rules, acknowledgements and agent notifications queued in the
    outbox (default workers);
(c) after the full-path run, the drain's share: writing every queued outbox row
    into the bytes it would send (templates, MIME, attachments read back), in
    this process, without SMTP.

``--databases sqlite,postgresql`` runs (b) on each; PostgreSQL is a private
server (tests/servers/postgres.py) with its fsync and synchronous commit on,
as SQLite runs with synchronous=FULL.

Usage: python bench/ingest.py [--sizes 10000,40000] [--rounds 3] [--store-only]
       [--databases sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import email
import email.policy
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from measured import run_measured  # noqa: E402
from servers.dovecot import DovecotServer  # noqa: E402
from support.mailgen import stream  # noqa: E402
from workload import desk_config  # noqa: E402


def baseline(server: DovecotServer, user: str) -> tuple[int, float]:
    start = time.perf_counter()
    client = server.connect(user, timeout=120)
    client.select_folder("INBOX", readonly=True)
    uids = client.search(["ALL"])
    n = 0
    for i in range(0, len(uids), 500):
        for data in client.fetch(uids[i : i + 500], ["BODY.PEEK[]"]).values():
            email.message_from_bytes(data[b"BODY[]"], policy=email.policy.default)
            n += 1
    client.logout()
    return n, time.perf_counter() - start


def inboxd_sync(
    server: DovecotServer,
    user: str,
    work: Path,
    *,
    full: bool,
    workers: int | None,
    batch_size: int,
    db_url: str,
) -> tuple[int, float, int]:
    """``full``: the example rules, acknowledgements and agent notifications (each
    new ticket queues rendered mail in the ingest transaction); otherwise only
    parse, dedupe, thread and store (no rules, no outbound mail)."""
    work.mkdir()
    cfg = work / "inboxd.toml"
    cfg.write_text(
        desk_config(work, ROOT, db_url, full=full)
        + f"""
[[mailbox]]
name = "support"
address = "support@help.example"
imap_host = "127.0.0.1"
imap_port = {server.port}
imap_security = "none"
username = "{user}"
password_env = "BENCH_IMAP_PASSWORD"
batch_size = {batch_size}
"""
        + ("" if workers is None else f"[ingest]\nworkers = {workers}\n")
    )
    env = {**os.environ, "BENCH_IMAP_PASSWORD": server.users[user]}
    with tempfile.TemporaryFile() as stdout:
        done = run_measured(
            [sys.executable, "-m", "inboxd", "--config", str(cfg), "sync", "--once"],
            env=env,
            stdout=stdout,
        )
        stdout.seek(0)
        out = stdout.read().decode()
    if done.exit_code != 0:
        raise SystemExit(f"inboxd sync failed: {out}")
    fetched = int(out.split(":")[1].split()[0])
    return fetched, done.seconds, done.peak_mb


def write_queued(db_url: str, templates: Path) -> tuple[int, float]:
    """(c): every queued outbox row written into its bytes, as the drain would."""
    from sqlalchemy import select

    from inboxd.db import outbox_queries as q
    from inboxd.db.engine import make_engine
    from inboxd.db.tables import Outbox
    from inboxd.flows.queued_mail import QueuedMailWriter
    from inboxd.flows.render import TemplateRenderer

    engine = make_engine(db_url, read_only=True)
    renderer = TemplateRenderer(templates)
    writer = QueuedMailWriter(engine, lambda: renderer)
    table = Outbox.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(select(table.c.id).order_by(table.c.id))]
    start = time.perf_counter()
    with engine.connect() as conn:
        for row_id in ids:
            row = q.get(conn, row_id)
            assert row is not None
            writer(row)
    took = time.perf_counter() - start
    engine.dispose()
    return len(ids), took


class Databases:
    """A database URL per run: a fresh SQLite file, or a fresh database on one private
    PostgreSQL server (started on first use)."""

    def __init__(self) -> None:
        self._pg: Any = None

    def url(self, kind: str, work: Path) -> str:
        if kind == "sqlite":  # ``work`` is made by the run
            return f"sqlite:///{work / 'inboxd.db'}"
        if self._pg is None:
            from servers.postgres import PostgresServer

            self._pg = PostgresServer(durable=True).start()
        return str(self._pg.create_database())

    def stop(self) -> None:
        if self._pg is not None:
            self._pg.stop()


def run_size(n: int, batch_size: int, rounds: int, store_only: bool, databases: list[str]) -> None:
    runs: list[tuple[str, bool, int | None, str]] = []
    for db in databases:
        runs += [
            (f"{db}: store only, no workers", False, 0, db),
            (f"{db}: store only", False, None, db),
        ]
        if not store_only:
            runs.append((f"{db}: rules + ack + notify", True, None, db))
    width = max(len(label) for label, *_ in runs) + 1
    dbs = Databases()
    with tempfile.TemporaryDirectory(prefix="inboxd-bench-") as tmp:
        work = Path(tmp)
        server = DovecotServer().start()
        try:
            server.add_user("bench", "bench")
            t0 = time.perf_counter()
            size = 0

            def counted() -> object:
                nonlocal size
                for raw in stream(n, seed=5):
                    size += len(raw)
                    yield raw

            server.preload("bench", "INBOX", counted())  # type: ignore[arg-type]
            took = time.perf_counter() - t0
            print(
                f"\n== {n} mails, {size / 1e6:.0f} MB, preloaded in {took:.1f} s; "
                f"batch_size {batch_size}, load average {os.getloadavg()[0]:.2f}"
            )
            ratios: dict[str, list[float]] = {}
            for round_no in range(1, rounds + 1):
                # each round measures its own baseline right before inboxd: this machine's
                # speed drifts by 10-30% over minutes, so only neighbours are compared
                got, base_s = baseline(server, "bench")
                base_rate = got / base_s
                print(
                    f"round {round_no}: (a) baseline imapclient fetch + policy.default parse: "
                    f"{base_rate:8.0f} msgs/s ({base_s:.1f} s)"
                )
                for i, (label, full, workers, db) in enumerate(runs):
                    run_dir = work / f"round{round_no}-run{i}"
                    url = dbs.url(db, run_dir)
                    fetched, sync_s, rss = inboxd_sync(
                        server,
                        "bench",
                        run_dir,
                        full=full,
                        workers=workers,
                        batch_size=batch_size,
                        db_url=url,
                    )
                    rate = fetched / sync_s
                    ratios.setdefault(label, []).append(rate / base_rate)
                    print(
                        f"round {round_no}: (b) inboxd sync --once, {label:<{width}}"
                        f"{rate:8.0f} msgs/s ({sync_s:.1f} s, {fetched} stored), "
                        f"ratio {rate / base_rate:.2f}, peak RSS {rss} MB"
                    )
                    if full:
                        written, write_s = write_queued(url, ROOT / "templates")
                        print(
                            f"round {round_no}: (c) the drain's writing of those {written} "
                            f"queued mails: {written / write_s:8.0f} mails/s ({write_s:.1f} s)"
                        )
            if rounds > 1:
                for label, values in ratios.items():
                    print(
                        f"ratio over {rounds} rounds, {label:<{width}} median "
                        f"{statistics.median(values):.2f} (min {min(values):.2f}, "
                        f"max {max(values):.2f})"
                    )
        finally:
            server.stop()
            dbs.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000", help="comma-separated mailbox sizes")
    parser.add_argument(
        "--batch-size", type=int, default=200, help="[[mailbox]] batch_size (default: the default)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="repeat baseline + runs N times")
    parser.add_argument(
        "--store-only", action="store_true", help="skip the run with rules, acks and notifications"
    )
    parser.add_argument("--databases", default="sqlite", help="comma-separated: sqlite, postgresql")
    args = parser.parse_args()
    databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    for db in databases:
        if db not in ("sqlite", "postgresql"):
            parser.error(f"unknown database {db!r}")
    byte_compile()
    for n in (int(s) for s in args.sizes.split(",")):
        run_size(n, args.batch_size, args.rounds, args.store_only, databases)


def byte_compile() -> None:
    """Write inboxd's byte code (``__pycache__``, ignored by git) before the runs: an
    installed inboxd starts from it, but a checkout under PYTHONDONTWRITEBYTECODE
    (as CI and this machine set it) compiles every module again at each start, in
    the daemon and in each ingest worker, and (b) would time that too."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "inboxd")], check=True)


if __name__ == "__main__":
    main()
