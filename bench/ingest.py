"""Ingest throughput: inboxd sync --once against the raw imapclient + email baseline.

Preloads N realistic mails (threads of 1-8, 1-80 KB, some HTML and
attachments) into a private Dovecot, then measures in the same run:

(a) baseline: imapclient FETCH BODY.PEEK[] of every mail in batches of 500
    plus ``email.message_from_bytes(policy=default)``, nothing stored;
(b) ``inboxd sync --once`` into a fresh SQLite database (a subprocess; its
    wall time includes interpreter start-up), with its peak RSS (the inboxd
    process and its ingest workers together, sampled every 50 ms), three times:
    storing only (no rules, no acknowledgements) without ingest workers, the
    same with the default workers (one per core beyond the first), and with the
    example rules, acknowledgements and agent notifications rendered into the
    outbox (default workers).

Usage: python bench/ingest.py [--sizes 10000,40000] [--rounds 3] [--store-only]
"""

from __future__ import annotations

import argparse
import contextlib
import email
import email.policy
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from servers.dovecot import DovecotServer  # noqa: E402
from support.mailgen import stream  # noqa: E402


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


def _peak_tree_rss(pid: int, stop: threading.Event, peak: list[int]) -> None:
    """Largest sum of RSS over ``pid`` and its descendants, sampled until ``stop``."""
    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    while not stop.wait(0.05):
        total = 0
        try:
            for proc in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            return
        peak[0] = max(peak[0], total)


def inboxd_sync(
    server: DovecotServer,
    user: str,
    work: Path,
    *,
    full: bool,
    workers: int | None,
    batch_size: int,
) -> tuple[int, float, int]:
    """``full``: the example rules, acknowledgements and agent notifications (each
    new ticket queues rendered mail in the ingest transaction); otherwise only
    parse, dedupe, thread and store (no rules, no outbound mail)."""
    work.mkdir()
    (work / "secret").write_text("bench-secret\n")
    (work / "no-rules").mkdir()
    cfg = work / "inboxd.toml"
    rules = ROOT / "rules" if full else work / "no-rules"
    cfg.write_text(
        f"""
[database]
url = "sqlite:///{work / "inboxd.db"}"
[helpdesk]
secret_file = "secret"
acknowledge = {"true" if full else "false"}
# one acknowledgement per new ticket, as the workload asks: the generated senders
# share one domain, whose hourly ack cap would otherwise stop acks after 50
ack_per_domain_per_hour = 0
ack_per_hour = 0
[rules]
dir = "{rules}"
[templates]
dir = "{ROOT / "templates"}"
[lmtp]
enabled = false
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
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "inboxd", "--config", str(cfg), "sync", "--once"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    stop, peak = threading.Event(), [0]
    sampler = threading.Thread(target=_peak_tree_rss, args=(proc.pid, stop, peak))
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    stop.set()
    sampler.join()
    out = proc.stdout.read().decode() if proc.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"inboxd sync failed: {out}")
    fetched = int(out.split(":")[1].split()[0])
    return fetched, elapsed, max(peak[0], usage.ru_maxrss * 1024) // (1024 * 1024)


def run_size(n: int, batch_size: int, rounds: int, store_only: bool) -> None:
    runs: tuple[tuple[str, bool, int | None], ...] = (
        ("store only, no workers", False, 0),
        ("store only", False, None),
    )
    if not store_only:
        runs += (("rules + ack + notify", True, None),)
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
                for i, (label, full, workers) in enumerate(runs):
                    fetched, sync_s, rss = inboxd_sync(
                        server,
                        "bench",
                        work / f"round{round_no}-run{i}",
                        full=full,
                        workers=workers,
                        batch_size=batch_size,
                    )
                    rate = fetched / sync_s
                    ratios.setdefault(label, []).append(rate / base_rate)
                    print(
                        f"round {round_no}: (b) inboxd sync --once, {label:<23}"
                        f"{rate:8.0f} msgs/s ({sync_s:.1f} s, {fetched} stored), "
                        f"ratio {rate / base_rate:.2f}, peak RSS {rss} MB"
                    )
            if rounds > 1:
                for label, values in ratios.items():
                    print(
                        f"ratio over {rounds} rounds, {label:<23} median "
                        f"{statistics.median(values):.2f} (min {min(values):.2f}, "
                        f"max {max(values):.2f})"
                    )
        finally:
            server.stop()


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
    args = parser.parse_args()
    for n in (int(s) for s in args.sizes.split(",")):
        run_size(n, args.batch_size, args.rounds, args.store_only)


if __name__ == "__main__":
    main()
