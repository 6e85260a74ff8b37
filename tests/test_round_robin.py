"""Round robin across daemons: concurrent picks on PostgreSQL never share a slot."""

from __future__ import annotations

import threading

from servers.postgres import PostgresServer

from inboxd.db import tickets
from inboxd.db.engine import make_engine, upgrade

AGENTS = ["alice", "bob", "chloe"]


def test_concurrent_round_robin_picks_take_turns(postgres: PostgresServer) -> None:
    engine = make_engine(postgres.create_database())
    upgrade(engine)
    picks: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def assign(n: int) -> None:
        start.wait(timeout=10)
        for _ in range(n):
            with engine.begin() as conn:
                picked = tickets.round_robin_next(conn, "frontline", AGENTS)
            assert picked is not None
            with lock:
                picks.append(picked)

    threads = [threading.Thread(target=assign, args=(10,)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(picks) == 60
    # a turn each: 60 picks over three agents is 20 each whatever the interleaving
    assert {a: picks.count(a) for a in AGENTS} == {"alice": 20, "bob": 20, "chloe": 20}
    engine.dispose()
