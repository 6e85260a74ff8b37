"""Parser throughput: compat32 baseline, policy.default baseline, parse_message.

Generates its own realistic mail (1-80 KB: plain replies with quoted history,
multipart/alternative with HTML, HTML-only newsletters, base64 attachments,
RFC 2047 headers) so it needs no external data, and also runs the tests' generated
support mail (``tests/support/mailgen.py``, 3,000 mails, seed 5: the corpus the
ingest target of issue 2 is stated on). Prints msgs/s, wall and CPU (the box is
shared: CPU time is the steadier figure), for each parser and peak RSS.
Run: ``python bench/parse.py [N]``.
"""

from __future__ import annotations

import base64
import email
import random
import resource
import sys
import time
from collections.abc import Callable
from email import policy
from email.parser import BytesParser
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.mailgen import stream

from inboxd.core.parse import parse_message

WORDS = (
    "the printer invoice account please refund order delivery update issue support "
    "customer thanks problem error since yesterday again login password reset billing "
    "Rechnung Größe café naïve déjà straße über"
).split()


def words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def paragraph_block(rng: random.Random, size: int) -> str:
    lines: list[str] = []
    total = 0
    while total < size:
        line = words(rng, rng.randint(6, 14))
        lines.append(line)
        total += len(line) + 1
        if rng.random() < 0.15:
            lines.append("")
    return "\n".join(lines)


def headers(rng: random.Random, i: int, ctype: str) -> str:
    subject = rng.choice(
        [
            f"Re: Order {i} not delivered",
            f"=?utf-8?q?AW=3A_Rechnung_M=C3=A4rz_{i}?=",
            f"RE: [#{i}] Printer broken",
            f"Fwd: question about invoice {i}",
            f"=?iso-8859-1?q?Caf=E9_order_{i}?=",
        ]
    )
    return (
        f"Return-Path: <user{i}@example.com>\n"
        f"Received: from mx{i % 7}.example.net (mx.example.net [192.0.2.{i % 250}])\n"
        f"\tby mail.example.com (Postfix) with ESMTPS id {i:08X}\n"
        f"\tfor <support@example.com>; Tue, 02 Jan 2024 10:00:00 +0100\n"
        f"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s1; bh={'A' * 44};\n"
        f"\tb={'B' * 200}\n"
        f'From: "=?utf-8?q?J=C3=BCrgen_{i}?=" <user{i}@example.com>\n'
        f"To: Support <support@example.com>\n"
        f"Cc: other{i}@example.org\n"
        f"Subject: {subject}\n"
        f"Date: Tue, 02 Jan 2024 10:{i % 60:02d}:00 +0100\n"
        f"Message-ID: <CA{i:010d}.{rng.randint(0, 10**9)}@mail.example.com>\n"
        f"In-Reply-To: <prev{i - 1}@example.com>\n"
        f"References: <root{i // 8}@example.com> <prev{i - 1}@example.com>\n"
        f"MIME-Version: 1.0\n"
        f"Content-Type: {ctype}\n"
    )


def quoted_reply(rng: random.Random, size: int) -> str:
    new = paragraph_block(rng, max(100, size // 4))
    quote = "\n".join("> " + line for line in paragraph_block(rng, size).split("\n"))
    return (
        f"{new}\n\nThanks,\nJürgen\n\n"
        f"On Mon, Jan 1, 2024 at 9:00 AM Support <support@example.com> wrote:\n{quote}\n"
    )


def make_message(rng: random.Random, i: int) -> bytes:
    size = int(rng.triangular(1_000, 80_000, 6_000))
    kind = rng.random()
    if kind < 0.40:
        msg = headers(rng, i, "text/plain; charset=utf-8") + "\n" + quoted_reply(rng, size)
    elif kind < 0.70:
        text = quoted_reply(rng, size // 2)
        html = "<html><body>" + "".join(
            f"<div>{line}</div>" for line in text.split("\n")[:40]
        ) + '<div class="gmail_quote"><blockquote>' + "<br>".join(
            text.split("\n")[40:]
        ) + "</blockquote></div></body></html>"
        msg = (
            headers(rng, i, 'multipart/alternative; boundary="alt"')
            + "\n--alt\nContent-Type: text/plain; charset=utf-8\n"
            "Content-Transfer-Encoding: quoted-printable\n\n"
            + text.replace("=", "=3D")
            + "\n--alt\nContent-Type: text/html; charset=utf-8\n\n"
            + html
            + "\n--alt--\n"
        )
    elif kind < 0.82:
        body = "".join(
            f"<table><tr><td><p style='color:#333'>{words(rng, 30)}</p>"
            f"<a href='https://example.com/{j}'>link</a></td></tr></table>"
            for j in range(size // 300)
        )
        msg = (
            headers(rng, i, "text/html; charset=utf-8")
            + "List-Unsubscribe: <mailto:unsub@example.com>\n"
            + "\n<html><head><style>td{padding:0}</style></head><body>"
            + body
            + "</body></html>\n"
        )
    else:
        blob = base64.encodebytes(rng.randbytes(max(500, size * 3 // 4))).decode()
        msg = (
            headers(rng, i, 'multipart/mixed; boundary="mix"')
            + "\n--mix\nContent-Type: text/plain; charset=utf-8\n\n"
            + quoted_reply(rng, 800)
            + "\n--mix\nContent-Type: application/pdf;"
            ' name="=?utf-8?q?Rechnung_M=C3=A4rz.pdf?="\n'
            "Content-Disposition: attachment; filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf\n"
            "Content-Transfer-Encoding: base64\n\n"
            + blob
            + "--mix--\n"
        )
    return msg.replace("\n", "\r\n").encode("utf-8")


def measure(name: str, fn: Callable[[bytes], object], corpus: list[bytes]) -> float:
    """Wall-clock rate; the CPU-time rate is printed too because the box is shared."""
    fn(corpus[0])
    start, cpu = time.perf_counter(), time.process_time()
    for raw in corpus:
        fn(raw)
    elapsed, cpu_elapsed = time.perf_counter() - start, time.process_time() - cpu
    rate = len(corpus) / elapsed
    print(
        f"{name:<28} {rate:10.0f} msgs/s wall  {len(corpus) / cpu_elapsed:8.0f} msgs/s cpu"
        f"  ({elapsed:.2f} s)"
    )
    return rate


def run_corpus(title: str, corpus: list[bytes]) -> None:
    total = sum(len(m) for m in corpus)
    print(f"{title}: {len(corpus)} messages, {total / len(corpus) / 1024:.1f} KB average, "
          f"{total / 2**20:.1f} MB total")
    compat = BytesParser(policy=policy.compat32)
    base = measure("compat32 BytesParser", compat.parsebytes, corpus)
    measure(
        "policy.default",
        lambda raw: email.message_from_bytes(raw, policy=policy.default),
        corpus,
    )
    ours = measure("inboxd parse_message", parse_message, corpus)
    print(f"parse_message / compat32     {ours / base:10.2f}")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    rng = random.Random(42)
    run_corpus("bench corpus", [make_message(rng, i) for i in range(n)])
    print()
    run_corpus("mailgen corpus (seed 5)", list(stream(n, seed=5)))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS                     {peak:10.1f} MB")


if __name__ == "__main__":
    main()
