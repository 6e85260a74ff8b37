"""Authentication-Results (RFC 8601): did a server we trust see DKIM or DMARC pass?

Used, where configured, as a second proof (besides the reply token) that an
agent's command mail really comes from the agent's domain. Only headers whose
authserv-id is in the trusted list count: anyone can write an
Authentication-Results header into a mail, only our own receiving server's
is worth reading (it should also strip forged ones with its id).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_COMMENT = re.compile(r"\([^()]*\)")
_RESULT = re.compile(r"^\s*(dkim|dmarc)\s*=\s*([a-z]+)\b(.*)$", re.IGNORECASE | re.DOTALL)
_PROP = re.compile(r"\b(header\.d|header\.from|header\.i)\s*=\s*\"?([^\s;\"]+)", re.IGNORECASE)


def _aligned(found: str, domain: str) -> bool:
    found = found.lower().rpartition("@")[2].strip(".")
    domain = domain.lower().strip(".")
    return found == domain or domain.endswith("." + found)


def auth_passes(headers: Iterable[str], trusted: Iterable[str], domain: str) -> bool:
    """True when a trusted Authentication-Results shows dkim or dmarc=pass for ``domain``.

    ``headers`` are the values of every Authentication-Results header (decoded).
    DKIM counts when its ``header.d`` is the domain or a parent of it (relaxed
    alignment); DMARC when its ``header.from`` is the domain.
    """
    allowed = {t.lower() for t in trusted}
    for value in headers:
        clean = _COMMENT.sub(" ", value.replace("\r", " ").replace("\n", " "))
        parts = clean.split(";")
        authserv = parts[0].split()[0].lower() if parts[0].split() else ""
        if authserv not in allowed:
            continue
        for part in parts[1:]:
            match = _RESULT.match(part)
            if match is None or match.group(2).lower() != "pass":
                continue
            method = match.group(1).lower()
            for prop, found in _PROP.findall(match.group(3)):
                prop = prop.lower()
                if (
                    method == "dkim"
                    and prop in ("header.d", "header.i")
                    and _aligned(found, domain)
                ):
                    return True
                if method == "dmarc" and prop == "header.from" and _aligned(found, domain):
                    return True
    return False
