"""Delivery latency of the running daemon: IMAP IDLE and LMTP, APPEND/DATA to commit.

Starts a private Dovecot and ``inboxd run`` (the demo rules, LMTP on a free
127.0.0.1 port, IDLE with an hour-long poll interval so only IDLE can bring
mail in), then:

(a) IDLE: APPENDs N realistic mails one by one from a second IMAP connection
    and, after each, polls a read-only sqlite3 connection every few ms until
    the mail's Message-ID is committed in a ticket. Latency = from just before
    the APPEND is sent to the row being visible.
(b) LMTP: delivers N mails one by one over one LMTP connection (as an MTA
    does). Latency = until the 250 reply, which inboxd sends only after the
    commit; the row is then checked to exist.

Prints p50 / p95 / max for both. Goal: p95 < 1.0 s over IDLE (Dovecot batches
IDLE notices for about 0.5 s), < 0.2 s over LMTP.

Usage: python bench/latency.py [--count 200]
"""

from __future__ import annotations

import argparse
import re
import smtplib
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from servers.dovecot import DovecotServer  # noqa: E402
from support.daemon import (  # noqa: E402
    SUPPORT,
    TicketDB,
    free_port,
    start_daemon,
    write_config,
)
from support.mailgen import stream  # noqa: E402

POLL = 0.002  # seconds between DB polls
TIMEOUT = 5.0  # per mail; a miss is reported, not waited for forever
_MSGID = re.compile(rb"^Message-ID:\s*<([^>]+)>", re.IGNORECASE | re.MULTILINE)


def message_id(raw: bytes) -> str:
    found = _MSGID.search(raw)
    if found is None:
        raise ValueError("generated mail without Message-ID")
    return found.group(1).decode()


def wait_committed(db: TicketDB, msgid: str, deadline: float) -> float | None:
    """perf_counter() when ``msgid`` is visible in a ticket, None after ``deadline``."""
    while True:
        if db.ticket_of(msgid) is not None:
            return time.perf_counter()
        if time.perf_counter() > deadline:
            return None
        time.sleep(POLL)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, round(pct / 100 * len(ordered) + 0.4999))
    return ordered[min(rank, len(ordered)) - 1]


def report(label: str, latencies: list[float], misses: int, goal: float) -> None:
    if not latencies:
        print(f"{label}: no mail arrived ({misses} missed)")
        return
    p50, p95, top = (percentile(latencies, 50), percentile(latencies, 95), max(latencies))
    verdict = "OK" if p95 < goal and not misses else "MISSED GOAL"
    print(
        f"{label}: n={len(latencies)} p50={p50 * 1000:7.1f} ms  p95={p95 * 1000:7.1f} ms  "
        f"max={top * 1000:7.1f} ms  missed={misses}  (goal p95 < {goal * 1000:.0f} ms: {verdict})"
    )


def bench_idle(server: DovecotServer, user: str, db: TicketDB, count: int) -> None:
    client = server.connect(user)
    latencies: list[float] = []
    appends: list[float] = []
    missed: list[str] = []
    try:
        for raw in stream(count, seed=21, to=SUPPORT, domain="idle.example"):
            msgid = message_id(raw)
            start = time.perf_counter()
            client.append("INBOX", raw)
            appends.append(time.perf_counter() - start)
            done = wait_committed(db, msgid, start + TIMEOUT)
            if done is None:
                missed.append(msgid)
            else:
                latencies.append(done - start)
    finally:
        client.logout()
    report("(a) IMAP APPEND -> committed (IDLE)", latencies, len(missed), 1.0)
    if missed:
        late = [m for m in missed if db.ticket_of(m) is not None]
        print(f"    missed: {missed[:5]}... of which committed later: {len(late)}")
    print(f"    APPEND itself: p50={percentile(appends, 50) * 1000:.1f} ms")


def smtp_safe(raw: bytes) -> bytes:
    """What an MTA would pass on: CRLF line ends, no line over 998 octets.

    The generator's base64 uses bare LF and its HTML part is one long line; an
    SMTP/LMTP server rightly refuses both (500 Line too long), so bare LFs become
    CRLF and the HTML is broken after each paragraph (harmless in HTML)."""
    text = re.sub(rb"(?<!\r)\n", b"\r\n", raw)
    return text.replace(b"</p><p>", b"</p>\r\n<p>")


def bench_lmtp(port: int, db: TicketDB, count: int) -> None:
    latencies: list[float] = []
    misses = 0
    with smtplib.LMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("bench")
        for generated in stream(count, seed=22, to=SUPPORT, domain="lmtp.example"):
            raw = smtp_safe(generated)
            msgid = message_id(raw)
            start = time.perf_counter()
            refused = client.sendmail("customer@lmtp.example", [SUPPORT], raw)
            elapsed = time.perf_counter() - start
            if refused or db.ticket_of(msgid) is None:
                misses += 1  # 250 must mean committed: a missing row counts as a miss
            else:
                latencies.append(elapsed)
    report("(b) LMTP DATA -> 250 (committed)   ", latencies, misses, 0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200, help="mails per path")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="inboxd-latency-") as tmp:
        work = Path(tmp)
        server = DovecotServer().start()
        daemon = None
        try:
            server.add_user("bench", "bench")
            port = free_port()
            cfg = write_config(
                work,
                imap_port=server.port,
                imap_user="bench",
                lmtp_port=port,
                rules_dir=ROOT / "rules",
                templates_dir=ROOT / "templates",
            )
            daemon = start_daemon(cfg, password="bench", lmtp_port=port)
            time.sleep(1.0)  # first sync of the empty folder done, fetcher in IDLE
            db = TicketDB(daemon.db)
            try:
                print(f"== {args.count} mails per path, inboxd run (IDLE + LMTP), demo rules")
                bench_idle(server, "bench", db, args.count)
                bench_lmtp(port, db, args.count)
            finally:
                db.close()
        finally:
            if daemon is not None:
                code = daemon.stop()
                if code != 0:
                    print(f"inboxd run exited with {code}:\n{daemon.tail()}")
            server.stop()


if __name__ == "__main__":
    main()
