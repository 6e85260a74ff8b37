"""``inboxd export`` on a growing desk: time and peak RSS, JSON Lines and mbox.

Builds desks of N generated mails (threads of 1-8, 1-80 KB, attachments;
tests/support/mailgen.py) through the real pipeline, store only (no rules, no
outbound mail), then runs ``inboxd export`` and ``inboxd export --mbox FILE``
as subprocesses, sampling their RSS every 20 ms. The baseline of the same
run is the peak RSS of ``inboxd export --ticket 1`` on the same desk (the
interpreter, the imports, one ticket): what the export costs beyond it is
what grows with the desk, and should not.

Usage: python bench/export.py [--sizes 10000,100000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from measured import run_measured  # noqa: E402
from support.mailgen import stream  # noqa: E402


def build_desk(work: Path, n: int) -> Path:
    """A desk of ``n`` mails (store only); returns its config."""
    from inboxd.config import parse_settings
    from inboxd.daemon import App
    from inboxd.ingest.sink import FetchedMail

    (work / "secret").write_text("bench-secret\n")
    (work / "no-rules").mkdir()
    cfg = work / "inboxd.toml"
    cfg.write_text(
        f"""
[database]
url = "sqlite:///{work / "inboxd.db"}"
[helpdesk]
secret_file = "secret"
acknowledge = false
[rules]
dir = "{work / "no-rules"}"
[templates]
dir = "{ROOT / "templates"}"
[lmtp]
enabled = false
[[mailbox]]
name = "support"
address = "support@help.example"
"""
    )
    app = App.build(parse_settings(cfg.read_text(), cfg))
    batch: list[FetchedMail] = []
    for uid, raw in enumerate(stream(n, seed=7), 1):
        batch.append(FetchedMail(uid, raw))
        if len(batch) == 500:
            app.pipeline.store_batch("support", "INBOX", 1, batch)
            batch = []
    app.pipeline.store_batch("support", "INBOX", 1, batch)
    app.close()
    return cfg


def run(cfg: Path, *args: str) -> tuple[float, int, int]:
    """(seconds, peak RSS in MB, bytes written to stdout) of ``inboxd export ARGS``."""
    with tempfile.TemporaryFile() as out:
        done = run_measured(
            [sys.executable, "-m", "inboxd", "--config", str(cfg), "export", *args], stdout=out
        )
        written = out.tell()
    if done.exit_code != 0:
        raise SystemExit(f"inboxd export {' '.join(args)} failed")
    return done.seconds, done.peak_mb, written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated desk sizes")
    args = parser.parse_args()
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="inboxd-bench-export-") as tmp:
            work = Path(tmp)
            t0 = time.perf_counter()
            cfg = build_desk(work, n)
            size = (work / "inboxd.db").stat().st_size
            print(
                f"\n== {n} mails: desk built in {time.perf_counter() - t0:.1f} s, "
                f"{size / 1e6:.0f} MB SQLite, load average {os.getloadavg()[0]:.2f}"
            )
            base_s, base_rss, _ = run(cfg, "--ticket", "1")
            print(f"baseline: export --ticket 1        {base_s:6.1f} s, peak RSS {base_rss} MB")
            took, rss, written = run(cfg)
            print(
                f"export (JSON Lines)                {took:6.1f} s, peak RSS {rss} MB "
                f"(+{rss - base_rss} MB over the baseline), {written / 1e6:.0f} MB written"
            )
            mbox = work / "all.mbox"
            took, rss, _ = run(cfg, "--mbox", str(mbox))
            print(
                f"export --mbox FILE                 {took:6.1f} s, peak RSS {rss} MB "
                f"(+{rss - base_rss} MB over the baseline), mbox {mbox.stat().st_size / 1e6:.0f} MB"
            )


if __name__ == "__main__":
    main()
