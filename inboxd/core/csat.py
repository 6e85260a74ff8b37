"""Satisfaction surveys by mail, pure: who may get one, the answer addresses, the answers.

A survey's answers are ``mailto:`` links to token addresses
(``support+csat.TOKEN.good@``, ``.bad``): a click opens the customer's mail
client with the rating in the address, so nothing a link scanner fetches can
rate, and no web server is needed. A reply to the survey (its Reply-To is
``support+csat.TOKEN@``) is read for a leading word or digit instead, and the
rest of its text is the comment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from inboxd.core.auto import is_mailer_daemon, is_noreply
from inboxd.core.desk import Ticket
from inboxd.core.desk.vocab import REOPENABLE
from inboxd.core.model import Address

GOOD, BAD = "good", "bad"
RATINGS = (GOOD, BAD)
PREFIX = "csat."
CHANGE_WINDOW = timedelta(days=28)  # a rating may be changed this long after the survey

_GOOD_WORDS = frozenset({"good", "great", "yes", "satisfied", "1", "+", "+1", "\N{THUMBS UP SIGN}"})
_BAD_WORDS = frozenset(
    {"bad", "poor", "no", "unsatisfied", "dissatisfied", "2", "-", "-1", "\N{THUMBS DOWN SIGN}"}
)
_WORD_RE = re.compile(r"^\s*(\S+)")


@dataclass(frozen=True, slots=True)
class AnswerAddress:
    """What a survey answer's recipient address says: the token, and a rating if a link."""

    token: str
    rating: str | None


def answer_address(support: str, token: str, rating: str | None = None) -> str:
    """``support+csat.TOKEN.good@domain`` (``rating`` None: the reply address)."""
    local, _, domain = support.rpartition("@")
    tail = f".{rating}" if rating else ""
    return f"{local}+{PREFIX}{token}{tail}@{domain}"


def parse_answer_address(email: str, local_bases: Iterable[str]) -> AnswerAddress | None:
    """The survey token (and link rating) in ``email``, None for any other address."""
    local = email.rpartition("@")[0].lower()
    for base in local_bases:
        prefix = f"{base.lower()}+{PREFIX}"
        if not local.startswith(prefix):
            continue
        rest = local[len(prefix) :]
        token, _, tail = rest.partition(".")
        if not tail:
            return AnswerAddress(token, None)
        return AnswerAddress(token, tail) if tail in RATINGS else None
    return None


def rating_in_text(text: str) -> tuple[str, str] | None:
    """(rating, comment) of a reply whose first word is a rating word or digit."""
    match = _WORD_RE.match(text)
    if match is None:
        return None
    word = match.group(1).strip(".,;:!?()[]\"'").lower()
    rating = GOOD if word in _GOOD_WORDS else BAD if word in _BAD_WORDS else None
    if rating is None:
        return None
    return rating, text[match.end() :].lstrip(" \t\r\n.,;:!-").rstrip()


def survey_refusal(
    ticket: Ticket, *, our_addresses: Iterable[str], agent_addresses: Iterable[str]
) -> str | None:
    """Why ``ticket``'s customer gets no survey now, or None when they may."""
    if ticket.status not in REOPENABLE:
        return f"the ticket is {ticket.status}, not solved"
    if not ticket.answered:
        return "no public agent reply"
    if not ticket.requester or ticket.last_customer_mail_at is None:
        return "no person wrote this ticket"
    who = Address(ticket.requester)
    if is_noreply(who) or is_mailer_daemon(who):
        return "automatic sender"
    base = _base(ticket.requester)
    if base in {_base(a) for a in our_addresses} or base in {a.lower() for a in agent_addresses}:
        return "the requester is one of us"
    return None


def _base(email: str) -> str:
    local, _, domain = email.lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def score(good: int, bad: int) -> float | None:
    """Satisfaction: good / (good + bad), unrated left out; None without ratings."""
    return good / (good + bad) if good + bad else None
