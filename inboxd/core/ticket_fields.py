"""How a rule Decision changes a ticket's routing fields (pure).

Scalars a ticket already has (team, assignee, SLA policy) are kept: rules fill
what is empty, so a reply never re-routes a ticket an agent already owns.
Priority only rises; tags accumulate and untags remove; VIP is sticky.
"""

from __future__ import annotations

from typing import Any, Protocol

PRIORITY_ORDER = ("low", "normal", "high", "urgent")


class DecisionLike(Protocol):
    @property
    def tags(self) -> tuple[str, ...]: ...
    @property
    def untags(self) -> tuple[str, ...]: ...
    @property
    def priority(self) -> str | None: ...
    @property
    def vip(self) -> bool: ...
    @property
    def team(self) -> str | None: ...
    @property
    def assignee(self) -> str | None: ...
    @property
    def sla(self) -> str | None: ...
    @property
    def status(self) -> str | None: ...


def priority_rank(value: str | None) -> int:
    return PRIORITY_ORDER.index(value) if value in PRIORITY_ORDER else 1


def apply_decision(current: dict[str, Any], decision: DecisionLike) -> dict[str, Any]:
    """The changed fields only; ``current`` holds tags, priority, vip, team,
    assignee, sla_policy and status as the ticket has them now."""
    changes: dict[str, Any] = {}
    tags = list(current.get("tags") or [])
    for tag in decision.tags:
        if tag not in tags:
            tags.append(tag)
    tags = [t for t in tags if t not in decision.untags]
    if tags != list(current.get("tags") or []):
        changes["tags"] = tags
    if decision.priority and priority_rank(decision.priority) > priority_rank(
        current.get("priority")
    ):
        changes["priority"] = decision.priority
    if decision.vip and not current.get("vip"):
        changes["vip"] = True
    for field, value in (
        ("team", decision.team),
        ("assignee", decision.assignee),
        ("sla_policy", decision.sla),
    ):
        if value and not current.get(field):
            changes[field] = value
    if decision.status and decision.status != current.get("status"):
        changes["status"] = decision.status
    return changes
