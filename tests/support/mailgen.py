"""Realistic generated support mail, shared by tests and bench/ (deterministic by seed).

Threads of 1 to 8 messages; bodies from 1 to 80 KB; some HTML alternatives,
some attachments, replies that quote their parent Gmail-style, and a mix of
clients' reply prefixes. ``Thread.ids`` lets a test check the threading.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

WORDS = tuple(
    "printer invoice refund login password account error server outage billing "
    "license upgrade please thanks hello order shipping delivery broken crash "
    "screen update install network slow urgent question help support customer "
    "report export import database timeout payment card renewal contract".split(" ")
)
PREFIXES = ("Re: ", "RE: ", "AW: ", "Re: Re: ", "SV: ")


@dataclass
class Thread:
    subject: str
    sender: str
    ids: list[str] = field(default_factory=list)


def _text(rng: random.Random, size: int) -> str:
    out: list[str] = []
    total = 0
    while total < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))).capitalize() + "."
        out.append(line)
        total += len(line) + 1
    return "\n".join(out)


def _mail(
    rng: random.Random,
    thread: Thread,
    index: int,
    seq: int,
    to: str,
    domain: str,
) -> bytes:
    msgid = f"gen{seq}.{index}@{domain}"
    parent = thread.ids[-1] if thread.ids else ""
    thread.ids.append(msgid)
    size = rng.choice((1, 2, 4, 8, 16, 40, 80)) * 1024 - 600
    kind = rng.random()
    if kind >= 0.6:  # HTML doubles the text and an attachment adds up to 20 KB: stay <= 80 KB
        size = size // 2 - (20 * 1024 if kind > 0.85 else 0)
    body = _text(rng, max(200, size))
    if parent:
        quoted = "\n".join("> " + line for line in body.splitlines()[:5])
        body = (
            _text(rng, 300)
            + f"\n\nOn Mon, 2 Mar 2026 at 10:{index:02d}, Support <{to}> wrote:\n"
            + quoted
        )
    subject = (rng.choice(PREFIXES) if parent else "") + thread.subject
    headers = [
        f"Received: from mx{seq % 7}.{domain} by mail.help.example; Mon, 2 Mar 2026 10:00:00 +0000",
        f"From: Customer {seq} <{thread.sender}>",
        f"To: {to}",
        f"Subject: {subject}",
        f"Message-ID: <{msgid}>",
        f"Date: Mon, 02 Mar 2026 {10 + index % 10:02d}:{seq % 60:02d}:00 +0000",
        "MIME-Version: 1.0",
    ]
    if parent:
        headers.append(f"In-Reply-To: <{parent}>")
        headers.append("References: " + " ".join(f"<{i}>" for i in thread.ids[:-1]))
    if kind < 0.6:
        headers.append("Content-Type: text/plain; charset=utf-8")
        headers.append("Content-Transfer-Encoding: 8bit")
        payload = body.replace("\n", "\r\n")
    else:
        boundary = f"b{seq}x{index}"
        html = (
            "<html><body>\r\n"
            + "\r\n".join(f"<p>{line}</p>" for line in body.splitlines())
            + "\r\n</body></html>"
        )
        parts = [
            f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            + body.replace("\n", "\r\n"),
            f"--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}",
        ]
        if kind > 0.85:
            blob = base64.encodebytes(rng.randbytes(rng.randint(2, 14) * 1024)).decode()
            blob = blob.replace("\n", "\r\n")
            parts.append(
                f'--{boundary}\r\nContent-Type: application/pdf; name="report{seq}.pdf"\r\n'
                f'Content-Disposition: attachment; filename="report{seq}.pdf"\r\n'
                f"Content-Transfer-Encoding: base64\r\n\r\n{blob}"
            )
        sub = "mixed" if kind > 0.85 else "alternative"
        headers.append(f'Content-Type: multipart/{sub}; boundary="{boundary}"')
        payload = "\r\n".join(parts) + f"\r\n--{boundary}--"
    return ("\r\n".join(headers) + "\r\n\r\n" + payload + "\r\n").encode("utf-8")


def stream(
    count: int,
    *,
    seed: int = 1,
    to: str = "support@help.example",
    domain: str = "customer.example",
    threads: list[Thread] | None = None,
) -> Iterator[bytes]:
    """``count`` mails in arrival order (replies after their parents), one at a time;
    the threads are appended to ``threads`` when given."""
    rng = random.Random(seed)
    open_threads: list[tuple[Thread, int]] = []
    for seq in range(count):
        if open_threads and rng.random() < 0.55:
            pos = rng.randrange(len(open_threads))
            thread, left = open_threads[pos]
            yield _mail(rng, thread, len(thread.ids), seq, to, domain)
            if left <= 1:
                open_threads.pop(pos)
            else:
                open_threads[pos] = (thread, left - 1)
        else:
            subject = " ".join(rng.choice(WORDS) for _ in range(4)).capitalize() + f" #{seq}"
            thread = Thread(subject, f"user{seq}@{domain}")
            if threads is not None:
                threads.append(thread)
            yield _mail(rng, thread, 0, seq, to, domain)
            length = rng.randint(1, 8)
            if length > 1:
                open_threads.append((thread, length - 1))


def generate(
    count: int, *, seed: int = 1, to: str = "support@help.example"
) -> tuple[list[bytes], list[Thread]]:
    """All at once: the mails and their threads."""
    threads: list[Thread] = []
    mails = list(stream(count, seed=seed, to=to, threads=threads))
    return mails, threads
