"""The SLA sweep's storage: the due index and the exactly-once stage gate, on both databases."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from inboxd.core.desk import Change, Status
from inboxd.core.desk import transitions as tr
from inboxd.db import sla, tickets
from inboxd.db.engine import make_engine, upgrade

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_due_tickets_stages_and_policy_changes(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    with Session(engine) as s, s.begin():
        ids = []
        for n in range(4):
            made = tickets.create(
                s,
                subject=f"t{n}",
                normalized_subject=f"t{n}",
                requester="c@x.example",
                requester_name="",
                mailbox="support",
                now=T0,
                source="test",
                actor="system",
            )
            policy = "gold" if n < 3 else None
            tickets.save(s, Change(made, replace(made, sla_policy=policy)))
            ids.append(made.id)
        sla.set_due(s, ids[0], T0 + timedelta(hours=1))
        sla.set_due(s, ids[1], T0 + timedelta(hours=5))
        sla.set_due(s, ids[2], None)
    with Session(engine) as s, s.begin():
        assert sla.take_due(s, T0) == []
        assert sla.take_due(s, T0 + timedelta(hours=2)) == [ids[0]]
        assert sla.take_due(s, T0 + timedelta(hours=9)) == [ids[0], ids[1]]
    with Session(engine) as s, s.begin():
        now = T0 + timedelta(hours=2)
        assert sla.claim_stage(s, ids[0], "first_response", 0, "breach", now)
        assert not sla.claim_stage(s, ids[0], "first_response", 0, "breach", now)
        assert sla.claim_stage(s, ids[0], "first_response", 1, "breach", now)
        assert sla.fired_stages(s, ids[0]) == {
            ("first_response", 0, "breach"): now,
            ("first_response", 1, "breach"): now,
        }
    with Session(engine) as s, s.begin():
        solved = tickets.load(s, ids[1])
        assert solved is not None
        tickets.save(s, tr.change_status(solved, Status.SOLVED, actor="agent:a", now=T0))
        # solving moved a clock: due, so the sweep closes its clocks out
        assert sla.take_due(s, T0) == [ids[1]]
        # gold changed: its open tickets are due now (not the one without a policy)
        assert sla.mark_due(s, ["gold"], T0) == 2
        assert sorted(sla.take_due(s, T0)) == sorted(ids[:3])
    engine.dispose()
