"""The ingest benches' workload configuration, written once so bench/ingest.py and
bench/store.py measure the same desk: the example rules, acknowledgements and
agent notifications (``full``), or storing only (no rules, no outbound mail)."""

from __future__ import annotations

from pathlib import Path


def desk_config(work: Path, tree: Path, db_url: str, *, full: bool) -> str:
    """An ``inboxd.toml`` (without mailboxes) for a desk in ``work`` with ``tree``'s
    rules and templates; writes its secret and its empty rules directory."""
    (work / "secret").write_text("bench-secret\n")
    (work / "no-rules").mkdir(exist_ok=True)
    rules = tree / "rules" if full else work / "no-rules"
    return f"""
[database]
url = "{db_url}"
[helpdesk]
secret_file = "{work / "secret"}"
acknowledge = {"true" if full else "false"}
# one acknowledgement per new ticket, as the workload asks: the generated senders
# share one domain, whose hourly ack cap would otherwise stop acks after 50
ack_per_domain_per_hour = 0
ack_per_hour = 0
[rules]
dir = "{rules}"
[templates]
dir = "{tree / "templates"}"
[lmtp]
enabled = false
"""
