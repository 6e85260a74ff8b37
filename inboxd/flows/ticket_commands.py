"""Carry out an agent's mail commands on a ticket (inside the ingest transaction).

Two steps, so a mail either does everything it says or nothing: ``check``
resolves every command against the current rules and database (does that
agent, team, ticket, canned response exist?) and returns the errors; only when
there are none does ``execute`` change the ticket and log one event per change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from inboxd.core.commands import Command
from inboxd.core.rules.model import Agent
from inboxd.db import flow_queries as fq
from inboxd.db import repo
from inboxd.flows.mailflow import Flow

STATUS_OF = {"close": "closed", "solve": "solved", "pending": "pending", "open": "open"}


@dataclass(frozen=True, slots=True)
class CommandResult:
    command: str  # as the agent wrote it, e.g. "#assign bob"
    ok: bool
    detail: str

    def as_context(self) -> dict[str, Any]:
        return {"command": self.command, "ok": self.ok, "detail": self.detail}


def _label(cmd: Command) -> str:
    return f"#{cmd.name} {cmd.arg}".strip()


def check(
    conn: Connection, flow: Flow, ticket: dict[str, Any], commands: Sequence[Command]
) -> list[str]:
    """Everything that would make ``execute`` fail, as sentences for the agent."""
    errors: list[str] = []
    ruleset = flow.config.rules()
    for cmd in commands:
        if cmd.name == "assign":
            known_team = ruleset is not None and cmd.arg in ruleset.teams
            if flow.agent(cmd.arg) is None and not known_team:
                errors.append(f"#assign {cmd.arg}: no agent or team of that name")
        elif cmd.name == "merge":
            target = int(cmd.arg)
            if target == ticket["id"]:
                errors.append(f"#merge {target}: that is this ticket")
                continue
            found = flow.resolve_ticket(conn, target)
            if found is None:
                errors.append(f"#merge {target}: no such ticket")
            elif found["id"] == ticket["id"]:
                errors.append(f"#merge {target}: that ticket is already merged into this one")
        elif cmd.name == "canned" and cmd.arg not in flow.config.renderer().canned_names():
            known = ", ".join(flow.config.renderer().canned_names()) or "none"
            errors.append(f"#canned {cmd.arg}: no such saved response (known: {known})")
    return errors


def execute(
    conn: Connection,
    flow: Flow,
    ticket: dict[str, Any],
    agent: Agent,
    commands: Sequence[Command],
    now: datetime,
) -> list[CommandResult]:
    """Apply checked commands; #note and #canned are the caller's (they shape the mail)."""
    ticket_id = int(ticket["id"])
    actor = f"agent:{agent.name}"
    results: list[CommandResult] = []
    tags = list(ticket.get("tags") or [])
    changes: dict[str, Any] = {}
    merge_target: int | None = None
    for cmd in commands:
        if cmd.name in STATUS_OF:
            new = STATUS_OF[cmd.name]
            changes.update(status=new, status_changed_at=now)
            repo.add_event(
                conn, ticket_id, now, actor, "status", {"from": ticket["status"], "to": new}
            )
            results.append(CommandResult(_label(cmd), True, f"status is now {new}"))
        elif cmd.name == "assign":
            target = flow.agent(cmd.arg)
            if target is not None:
                changes["assignee"] = target.name
                if target.teams and ticket.get("team") not in target.teams:
                    changes["team"] = target.teams[0]
                repo.add_event(conn, ticket_id, now, actor, "assigned", {"to": target.name})
                results.append(CommandResult(_label(cmd), True, f"assigned to {target.name}"))
            else:
                changes.update(team=cmd.arg, assignee=None)
                repo.add_event(conn, ticket_id, now, actor, "assigned", {"team": cmd.arg})
                results.append(CommandResult(_label(cmd), True, f"moved to team {cmd.arg}"))
        elif cmd.name == "priority":
            changes["priority"] = cmd.arg
            repo.add_event(conn, ticket_id, now, actor, "priority", {"to": cmd.arg})
            results.append(CommandResult(_label(cmd), True, f"priority is now {cmd.arg}"))
        elif cmd.name == "tag":
            if cmd.arg not in tags:
                tags.append(cmd.arg)
            changes["tags"] = list(tags)
            results.append(CommandResult(_label(cmd), True, f"tagged {cmd.arg}"))
        elif cmd.name == "untag":
            if cmd.arg in tags:
                tags.remove(cmd.arg)
            changes["tags"] = list(tags)
            results.append(CommandResult(_label(cmd), True, f"untagged {cmd.arg}"))
        elif cmd.name == "merge":
            merge_target = int(cmd.arg)
    if "tags" in changes:
        repo.add_event(conn, ticket_id, now, actor, "tags", {"tags": changes["tags"]})
    if changes:
        changes["updated_at"] = now
        repo.update_ticket(conn, ticket_id, changes)
    if merge_target is not None:
        results.append(_merge(conn, flow, ticket, merge_target, actor, now))
    return results


def _merge(
    conn: Connection,
    flow: Flow,
    ticket: dict[str, Any],
    target_id: int,
    actor: str,
    now: datetime,
) -> CommandResult:
    """Fold ``ticket`` into the surviving ticket of ``target_id``; later mail follows."""
    target = flow.resolve_ticket(conn, target_id)
    assert target is not None  # checked
    ticket_id = int(ticket["id"])
    repo.update_ticket(
        conn,
        ticket_id,
        {
            "merged_into": target["id"],
            "status": "merged",
            "status_changed_at": now,
            "updated_at": now,
        },
    )
    people = fq.customer_participants(conn, ticket_id)
    repo.add_participants(conn, int(target["id"]), [(e, n, "customer") for e, n, _ in people])
    repo.add_event(conn, ticket_id, now, actor, "merged", {"into": target["id"]})
    repo.add_event(conn, int(target["id"]), now, actor, "merged_from", {"ticket": ticket_id})
    return CommandResult(f"#merge {target_id}", True, f"merged into #{target['id']}")
