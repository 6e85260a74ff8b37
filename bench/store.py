"""The main process's share of ingest alone: ``Pipeline.store_batch`` on mails
parsed beforehand, in this process, without IMAP or workers.

bench/ingest.py measures the whole path, where the server, the worker and the
pipe share two cores and a few percent disappear in the run-to-run spread.
This one times only what the ingest transaction itself costs (CPU and wall per
mail), on the same generated mailbox, with the example rules, acknowledgements
and notifications (``--store-only``: without them), into a fresh SQLite file per
round (``--postgresql``: a fresh database a round on a private server, durable
as bench/ingest.py's). The rounds alternate with those of ``--against`` (another checkout's
inboxd, rules and templates on this checkout's mails; each round is a
subprocess), so two versions are compared in the same minutes.

Usage: python bench/store.py [--count 5000] [--rounds 3] [--store-only]
       [--against ../other-checkout] [--postgresql] [--profile 40]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BATCH = 200


def one_round(
    tree: Path,
    count: int,
    full: bool,
    profile: cProfile.Profile | None = None,
    db_url: str = "",
) -> dict[str, float]:
    """Store ``count`` generated mails in batches with ``tree``'s inboxd, rules and
    templates (the mails are this checkout's) into ``db_url`` (empty: a fresh
    SQLite file); CPU and wall of the storing only."""
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(ROOT / "bench"))
    from support.mailgen import stream
    from workload import desk_config

    sys.path.insert(0, str(tree))

    from inboxd.config import load_settings
    from inboxd.core.parse import parse_many
    from inboxd.daemon import App
    from inboxd.ingest.sink import FetchedMail

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cfg = work / "inboxd.toml"
        url = db_url or f"sqlite:///{work / 'inboxd.db'}"
        cfg.write_text(desk_config(work, tree, url, full=full))
        raws = list(stream(count, seed=5))
        parsed = parse_many(raws, 50 * 1024 * 1024)
        pairs = zip(raws, parsed, strict=True)
        mails = [FetchedMail(uid, raw, p) for uid, (raw, p) in enumerate(pairs, start=1)]
        app = App.build(load_settings(str(cfg)))
        if profile is not None:
            profile.enable()
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(0, len(mails), BATCH):
            app.pipeline.store_batch("support", "INBOX", 1, mails[i : i + BATCH])
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if profile is not None:
            profile.disable()
        app.engine.dispose()
    return {"cpu_us": cpu / count * 1e6, "wall_us": wall / count * 1e6}


def in_subprocess(tree: Path, count: int, full: bool, db_url: str) -> dict[str, float]:
    args = [sys.executable, __file__, "--one", str(tree), "--count", str(count)]
    args += ["--url", db_url] if db_url else []
    if not full:
        args.append("--store-only")
    done = subprocess.run(args, cwd=tree, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{tree}: {done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--store-only", action="store_true", help="no rules, acks or notifications")
    ap.add_argument("--against", type=Path, help="another checkout, measured in turn")
    ap.add_argument(
        "--postgresql", action="store_true", help="a private PostgreSQL, a fresh database a round"
    )
    ap.add_argument("--url", default="", help=argparse.SUPPRESS)  # a round's database
    ap.add_argument("--profile", type=int, metavar="N", help="one round under cProfile: top N")
    ap.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # a round of this tree
    args = ap.parse_args()
    full = not args.store_only
    if args.one:
        print(json.dumps(one_round(args.one, args.count, full, db_url=args.url)))
        return
    server = None
    if args.postgresql:
        sys.path.insert(0, str(ROOT / "tests"))
        from servers.postgres import PostgresServer

        server = PostgresServer(durable=True).start()
    try:
        fresh = (lambda: str(server.create_database())) if server is not None else (lambda: "")
        if args.profile:
            profile = cProfile.Profile()
            print(one_round(ROOT, args.count, full, profile, db_url=fresh()))
            pstats.Stats(profile).sort_stats("tottime").print_stats(args.profile)
            return
        trees = {"this": ROOT} | ({"against": args.against.resolve()} if args.against else {})
        results: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        os.environ.setdefault("PYTHONHASHSEED", "0")
        for _ in range(args.rounds):
            for name, tree in trees.items():
                results[name].append(in_subprocess(tree, args.count, full, fresh()))
    finally:
        if server is not None:
            server.stop()
    path = "full path" if full else "store only"
    where = "PostgreSQL" if server is not None else "SQLite"
    print(f"store_batch on {where}, {path}, {args.count} mails, {args.rounds} rounds", end="")
    print(" (median, min):")
    for name, rows in results.items():
        cpu = [r["cpu_us"] for r in rows]
        wall = [r["wall_us"] for r in rows]
        print(
            f"  {name:8s} cpu {statistics.median(cpu):6.0f} us/mail (min {min(cpu):.0f})  "
            f"wall {statistics.median(wall):6.0f} us/mail (min {min(wall):.0f})"
        )


if __name__ == "__main__":
    main()
