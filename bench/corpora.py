"""Where inboxd stands on ``../shared/corpora``: reply text and bounces, scored its README's way.

Runs the product's parser (``parse_message``: ``new_text``, ``kind``/``bounce``) over
the replies and bounces corpora and prints the rates per corpus and per source
folder, then the time per mail. ``--flufl`` also scores flufl.bounce alone
(``all_failures`` on a compat32 tree; "a bounce" = it found a failed address) with
its time per mail, the comparison behind the choice of bounce design. ``-v`` names
the failing records. The corpora path is ``$INBOXD_SHARED/corpora``, else
``../shared/corpora``. Run: ``python bench/corpora.py [--flufl] [-v]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable
from email import message_from_bytes
from email.policy import compat32
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.corpus_score import (
    BounceScore,
    Tally,
    read_index,
    score_bounces,
    score_replies,
    shared_corpora,
)

from inboxd.core.model import MessageKind, ParseError
from inboxd.core.parse import parse_message


def product_new_text(raw: bytes) -> str | None:
    try:
        return parse_message(raw).new_text
    except ParseError:
        return None


def product_bounce(raw: bytes) -> tuple[bool, Iterable[str]]:
    try:
        m = parse_message(raw)
    except ParseError:
        return False, ()
    found = m.bounce.failed_recipients if m.bounce is not None else ()
    return m.kind is MessageKind.BOUNCE, found


def flufl_bounce(raw: bytes) -> tuple[bool, Iterable[str]]:
    from flufl.bounce import all_failures

    temporary, permanent = all_failures(message_from_bytes(raw, policy=compat32))
    found = {a.decode("utf-8", "replace") if isinstance(a, bytes) else a
             for a in temporary | permanent}
    return bool(found), found


def line(label: str, tally: Tally, width: int = 34) -> str:
    return f"  {label:<{width}} {tally.passed:>4}/{tally.total:<4} {tally.rate:7.1%}"


def per_source(tally: Tally) -> list[str]:
    return [
        f"    {source:<32} {ok:>4}/{n:<4} {ok / n:7.1%}"
        for source, (ok, n) in sorted(tally.per_source.items())
    ]


def timed(fn: Callable[[], object], files: int) -> tuple[object, str]:
    start = time.process_time()
    result = fn()
    spent = time.process_time() - start
    return result, f"  cpu {spent * 1e3 / max(files, 1):.2f} ms per mail ({files} mails)"


def report_replies(folder: Path, verbose: bool) -> None:
    records = len(read_index(folder / "replies.jsonl"))
    tally, cost = timed(lambda: score_replies(folder, product_new_text), records)
    assert isinstance(tally, Tally)
    print("replies (goal >= 95% of records)")
    print(line("records passing", tally))
    print("\n".join(per_source(tally)))
    print(cost)
    if verbose and tally.failures:
        print("  failing: " + " ".join(tally.failures))


def report_bounces(
    name: str, folder: Path, detect: Callable[[bytes], tuple[bool, Iterable[str]]],
    verbose: bool,
) -> None:
    files = len(read_index(folder / "bounces.jsonl"))
    score, cost = timed(lambda: score_bounces(folder, detect), files)
    assert isinstance(score, BounceScore)
    taken = score.not_dsn.total - score.not_dsn.passed
    print(f"bounces, {name}")
    print(line("recognized (bounce == dsn)", score.recognized))
    print("\n".join(per_source(score.recognized)))
    print(line("dsn: true recognized (>= 98%)", score.dsn))
    print(f"  {'dsn: false taken (<= 2%)':<34} {taken:>4}/{score.not_dsn.total:<4} "
          f"{taken / max(score.not_dsn.total, 1):7.1%}")
    print(line("recipients found (>= 95%)", score.recipients))
    print("\n".join(per_source(score.recipients)))
    print(cost)
    if verbose:
        print("  not recognized: " + " ".join(score.recognized.failures))
        print("  recipients wrong: " + " ".join(score.recipients.failures))


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    args.add_argument("--flufl", action="store_true", help="also score flufl.bounce alone")
    args.add_argument("-v", "--verbose", action="store_true", help="name failing records")
    opts = args.parse_args()
    root = shared_corpora()
    if not root.is_dir():
        print(f"no corpora at {root} (set INBOXD_SHARED)")
        return 0
    if (root / "replies").is_dir():
        report_replies(root / "replies", opts.verbose)
    if (root / "bounces").is_dir():
        report_bounces("inboxd parse_message", root / "bounces", product_bounce, opts.verbose)
        if opts.flufl:
            report_bounces("flufl.bounce alone", root / "bounces", flufl_bounce, opts.verbose)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
