"""Three daemons on one PostgreSQL, two IMAP mailboxes, one daemon SIGKILLed midway.

5,000 generated mails (threads of 1 to 8) are preloaded into two mailboxes of
a private Dovecot; three ``inboxd run`` processes share one PostgreSQL database,
the rules, the templates and an outbound Maildir, each with an LMTP listener of
its own. Once a mailbox is partly committed (read from the database, as
tests/test_exactly_once.py does), the daemon holding its lease is SIGKILLed.
Then: another daemon takes each of its mailboxes over within one lease period;
both mailboxes end fully imported, every mail in exactly one ticket and every
thread one ticket; one acknowledgement row per ticket, none written twice to
the Maildir; the survivors give their leases up when stopped. Each daemon
also takes one mail over LMTP.
"""

from __future__ import annotations

import email
import os
import re
import smtplib
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from servers.dovecot import DovecotServer
from servers.postgres import PostgresServer
from sqlalchemy import text
from sqlalchemy.engine import Engine
from support.daemon import free_port, wait_for
from support.mailgen import Thread, stream

from inboxd.db.engine import make_engine

PER_MAILBOX = 2500
BATCH = 100
LEASE = 3.0  # seconds: takeover is quick
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
DEADLINE = 80.0  # the whole run, a bound for a stalled import, not a schedule
KILL_BETWEEN = (300, PER_MAILBOX - 800)  # committed mails of a mailbox when its holder dies
MESSAGE_ID = re.compile(rb"^Message-ID: <([^>]+)>", re.MULTILINE | re.IGNORECASE)


@dataclass
class Box:
    name: str
    address: str
    user: str
    domain: str
    seed: int
    ids: list[str]
    threads: list[Thread]


@dataclass
class Daemon:
    proc: subprocess.Popen[bytes]
    lmtp_port: int
    log: Path

    def tail(self, lines: int = 25) -> str:
        text_ = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text_.splitlines()[-lines:])


def recording(mails: Iterable[bytes], ids: list[str]) -> Iterator[bytes]:
    for raw in mails:
        found = MESSAGE_ID.search(raw)
        assert found is not None
        ids.append(found.group(1).decode())
        yield raw


def write_config(work: Path, db_url: str, imap_port: int, boxes: list[Box], lmtp: int) -> Path:
    mailboxes = "".join(
        f"""
[[mailbox]]
name = "{box.name}"
address = "{box.address}"
imap_host = "127.0.0.1"
imap_port = {imap_port}
imap_security = "none"
username = "{box.user}"
password_env = "INBOXD_PW_{box.name.upper()}"
batch_size = {BATCH}
idle = true
"""
        for box in boxes
    )
    cfg = work / f"inboxd-{lmtp}.toml"
    cfg.write_text(
        f"""
[database]
url = "{db_url}"
[helpdesk]
secret_file = "secret"
domain = "help.example"
ack_per_sender_per_hour = 0
ack_per_domain_per_hour = 0
ack_per_hour = 0
tickets_per_sender_per_hour = 0
[rules]
dir = "rules"
[templates]
dir = "{TEMPLATES}"
[smtp]
transport = "maildir"
path = "sent"
[ingest]
workers = 0  # three daemons on two shared cores: no worker processes
lease_seconds = {LEASE}
[lmtp]
enabled = true
listen = "127.0.0.1:{lmtp}"
{mailboxes}
[[mailbox]]
name = "sales"
address = "sales@help.example"
"""
    )
    return cfg


def start(cfg: Path, env: dict[str, str], port: int) -> Daemon:
    log = cfg.with_suffix(".log")
    with log.open("ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "inboxd", "--config", str(cfg), "run"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
        )
    return Daemon(proc, port, log)


def lmtp_mail(port: int) -> str:
    msgid = f"lmtp-{port}@walkin.example"
    raw = (
        f"From: Walk In <walkin{port}@walkin.example>\r\nTo: sales@help.example\r\n"
        f"Subject: Quote please {port}\r\nMessage-ID: <{msgid}>\r\n\r\nA quote, please.\r\n"
    ).encode()
    with smtplib.LMTP("127.0.0.1", port, timeout=20) as client:
        refused = client.sendmail(f"walkin{port}@walkin.example", ["sales@help.example"], raw)
    assert not refused
    return msgid


def scalar(engine: Engine, sql: str, **params: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def committed(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT mailbox, count(*) FROM message GROUP BY mailbox"))
        return {str(m): int(n) for m, n in rows}


def lease_owners(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {
            str(m): str(o) for m, o in conn.execute(text("SELECT mailbox, owner FROM mailboxlease"))
        }


def pid_of(owner: str) -> int:
    return int(owner.split(":")[1])


def left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


@pytest.mark.server
@pytest.mark.slow
@pytest.mark.timeout(150)
def test_three_daemons_one_killed_every_mail_once_and_its_mailboxes_taken_over(
    dovecot: DovecotServer, postgres: PostgresServer, imap_user: str, tmp_path: Path
) -> None:
    began = time.monotonic()
    second = f"{imap_user}b"
    dovecot.add_user(second, second)
    boxes = [
        Box("support", "support@help.example", imap_user, "a.customer.example", 31, [], []),
        Box("billing", "billing@help.example", second, "b.customer.example", 32, [], []),
    ]
    for box in boxes:
        mails = stream(
            PER_MAILBOX, seed=box.seed, to=box.address, domain=box.domain, threads=box.threads
        )
        dovecot.preload(box.user, "INBOX", recording(mails, box.ids))
    db_url = postgres.create_database()
    (tmp_path / "secret").write_text("multi-daemon-secret\n")
    (tmp_path / "rules").mkdir()
    env = {**os.environ, **{f"INBOXD_PW_{b.name.upper()}": dovecot.users[b.user] for b in boxes}}
    env.pop("NOTIFY_SOCKET", None)
    ports = [free_port() for _ in range(3)]
    configs = [write_config(tmp_path, db_url, dovecot.port, boxes, port) for port in ports]
    # the schema once, before the daemons (as an admin does: inboxd db upgrade)
    subprocess.run(
        [sys.executable, "-m", "inboxd", "--config", str(configs[0]), "db", "upgrade"],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    engine = make_engine(db_url)
    deadline = time.monotonic() + DEADLINE
    daemons = [start(cfg, env, port) for cfg, port in zip(configs, ports, strict=True)]
    by_pid = {d.proc.pid: d for d in daemons}
    try:
        # each daemon serves LMTP on its own port (nothing to lease there)
        lmtp_ids = []
        for daemon in daemons:
            up = wait_for(
                lambda d=daemon: True if "listening protocol=lmtp" in d.tail(200) else None,
                left(deadline),
                0.05,
            )
            assert up, daemon.tail()
            lmtp_ids.append(lmtp_mail(daemon.lmtp_port))

        # the kill: the holder of a mailbox that is partly committed
        def kill_point() -> tuple[str, str] | None:
            owners = lease_owners(engine)
            for name, count in committed(engine).items():
                if KILL_BETWEEN[0] <= count <= KILL_BETWEEN[1] and name in owners:
                    return name, owners[name]
            assert all(d.proc.poll() is None for d in daemons), [d.tail() for d in daemons]
            return None

        found = wait_for(kill_point, left(deadline), 0.02)
        assert found is not None, f"no kill point; committed={committed(engine)}"
        mailbox, owner = found
        victim = by_pid[pid_of(owner)]
        victim.proc.kill()
        killed_at = time.monotonic()
        killed_wall = datetime.now(UTC)
        victim.proc.wait(timeout=10)
        at_kill = committed(engine)
        held = [m for m, o in lease_owners(engine).items() if o == owner]
        assert mailbox in held

        # its mailboxes are taken over within one lease period (and a poll)
        def taken_over() -> dict[str, str] | None:
            owners = lease_owners(engine)
            if all(owners.get(m, owner) != owner for m in held):
                return owners
            return None

        owners = wait_for(taken_over, LEASE + 3.0, 0.02)
        takeover = time.monotonic() - killed_at
        assert owners is not None, f"not taken over: {lease_owners(engine)}"
        assert {pid_of(owners[m]) for m in held} <= {d.proc.pid for d in daemons if d is not victim}
        assert takeover <= LEASE + 1.0, takeover

        # everything imported; every ack row claimed (and sent, unless the dead daemon
        # had claimed it: such a row waits out its 10-minute claim)
        def done() -> bool | None:
            counts = committed(engine)
            if counts.get("support") != PER_MAILBOX or counts.get("billing") != PER_MAILBOX:
                return None
            waiting = scalar(
                engine,
                "SELECT count(*) FROM outbox WHERE status <> 'sent'"
                " AND NOT (status = 'sending' AND next_attempt_at <= :stale)",
                stale=killed_wall + timedelta(minutes=10),
            )
            return True if waiting == 0 else None

        assert wait_for(done, left(deadline), 0.1), (
            f"committed={committed(engine)}\n" + "\n---\n".join(d.tail() for d in daemons)
        )
        survivors = [d for d in daemons if d is not victim]
        for daemon in survivors:
            daemon.proc.terminate()
        for daemon in survivors:
            assert daemon.proc.wait(timeout=20) == 0, daemon.tail()
        assert lease_owners(engine) == {}, "a clean stop gives the leases up"
    finally:
        for daemon in daemons:
            if daemon.proc.poll() is None:
                daemon.proc.kill()
                daemon.proc.wait(timeout=10)
    runtime = time.monotonic() - began

    with engine.connect() as conn:
        pairs = conn.execute(text("SELECT message_id, ticket_id FROM message")).all()
        acks = conn.execute(
            text("SELECT ticket_id, message_id, status FROM outbox WHERE kind = 'ack'")
        ).all()
        tickets = {int(t) for (t,) in conn.execute(text("SELECT id FROM ticket"))}
        quarantined = int(conn.execute(text("SELECT count(*) FROM quarantine")).scalar_one())
    engine.dispose()
    ids = Counter(str(m) for m, _ in pairs)
    expected = {*boxes[0].ids, *boxes[1].ids, *lmtp_ids}
    assert len(expected) == 2 * PER_MAILBOX + 3
    assert set(ids) == expected and max(ids.values()) == 1, "every mail stored exactly once"
    assert quarantined == 0
    assert all(t is not None for _, t in pairs)
    ticket_of = {str(m): int(t) for m, t in pairs}
    threads = [t for box in boxes for t in box.threads]
    for thread in threads:
        assert len({ticket_of[i] for i in thread.ids}) == 1, thread.subject
    assert len({ticket_of[t.ids[0]] for t in threads}) == len(threads)
    assert len(tickets) == len(threads) + 3

    per_ticket = Counter(int(t) for t, _, _ in acks)
    assert set(per_ticket) == tickets and max(per_ticket.values()) == 1, "one ack per ticket"
    written = Counter()
    for path in (tmp_path / "sent" / "new").iterdir():
        head = email.message_from_bytes(path.read_bytes()[:8192])
        written[str(head["Message-ID"]).strip("<>")] += 1
    sent = {str(m).strip("<>") for _, m, s in acks if s == "sent"}
    stuck = sum(1 for _, _, s in acks if s != "sent")
    assert sent <= set(written), "a row marked sent has its file"
    assert max(written.values()) == 1, f"written twice: {[m for m, n in written.items() if n > 1]}"
    assert set(written) <= {str(m).strip("<>") for _, m, _ in acks}
    print(
        f"\nmulti-daemon: {sum(ids.values())} mails, {len(tickets)} tickets, {len(acks)} acks"
        f" ({stuck} left claimed by the killed daemon), killed the holder of {mailbox}"
        f" (held {held}) at {at_kill}, taken over in {takeover:.2f} s, runtime {runtime:.1f} s"
    )
