"""The inboxd.toml a CLI test runs a command against (report, sla replay, ...)."""

from __future__ import annotations

from pathlib import Path

CONFIG = """\
[database]
url = "{url}"

[helpdesk]
domain = "help.example"
secret_file = "secret"

[lmtp]
enabled = false

[rules]
dir = "{rules}"

[[mailbox]]
name = "support"
address = "support@help.example"
"""


def cli_config(folder: Path, url: str, secret: str) -> Path:
    """``folder/inboxd.toml`` for the desk at ``url`` with the rules in ``folder/rules``
    and ``secret`` in ``folder/secret``; returns its path."""
    (folder / "secret").write_text(secret + "\n")
    config = folder / "inboxd.toml"
    config.write_text(CONFIG.format(url=url, rules=folder / "rules"))
    return config
