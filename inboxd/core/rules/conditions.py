"""Compiled conditions: a small tree evaluated against one message.

Each node answers three questions: ``test`` (fast, for every candidate rule),
``explain`` (only for rules that fired: which part matched and on what, for the
ticket's event log) and ``required`` (text signals of which at least one must be
present for the node to be true, so evaluation can skip rules whose keywords
did not occur at all; None when no such guarantee exists, e.g. under ``not``).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

import re2

from inboxd.core.calendar import DAYS, Calendar, Interval, Zone, is_business_time, local_minute
from inboxd.core.model import ParsedMessage
from inboxd.core.rules.model import RuleContext
from inboxd.core.rules.textindex import TextIndex, find_word, fold
from inboxd.core.sentiment import NEGATIVE, POSITIVE, UNKNOWN, Sentiment, score


@dataclass(slots=True)
class Env:
    """Per-message state shared by all nodes; ``vip_reason`` grows as rules mark VIP."""

    msg: ParsedMessage
    ctx: RuleContext
    signals: set[int]
    index: TextIndex
    calendars: Mapping[str, Calendar]
    vip_reason: str | None = None
    sentiment: Sentiment | None = None  # scored on the first rule that asks

    @property
    def body(self) -> str:
        return rule_body(self.msg, self.ctx)

    def mood(self) -> Sentiment:
        """The new text's sentiment, scored once per mail and only when a rule asks."""
        if self.sentiment is None:
            self.sentiment = score(self.msg.new_text or self.msg.text)
        return self.sentiment


def rule_body(msg: ParsedMessage, ctx: RuleContext) -> str:
    """The text body conditions see: the whole body of a new mail, but only what the
    sender wrote this time in a reply, so quoted history never re-fires a rule."""
    if ctx.is_new:
        return msg.text
    return msg.new_text or msg.text


class Condition:
    key: ClassVar[str] = ""

    def test(self, env: Env) -> bool:
        raise NotImplementedError

    def explain(self, env: Env) -> list[str]:
        return [self.describe()]

    def describe(self) -> str:
        raise NotImplementedError

    def required(self) -> frozenset[int] | None:
        return None


def _q(values: Sequence[str]) -> str:
    return ", ".join(repr(v) for v in values)


# -- combinators -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AllOf(Condition):
    children: tuple[Condition, ...]

    def test(self, env: Env) -> bool:
        return all(c.test(env) for c in self.children)

    def explain(self, env: Env) -> list[str]:
        return [r for c in self.children for r in c.explain(env)]

    def describe(self) -> str:
        return "all of (" + "; ".join(c.describe() for c in self.children) + ")"

    def required(self) -> frozenset[int] | None:
        best: frozenset[int] | None = None
        for child in self.children:
            req = child.required()
            if req is not None and (best is None or len(req) < len(best)):
                best = req
        return best


@dataclass(frozen=True, slots=True)
class AnyOf(Condition):
    children: tuple[Condition, ...]

    def test(self, env: Env) -> bool:
        return any(c.test(env) for c in self.children)

    def explain(self, env: Env) -> list[str]:
        return [r for c in self.children if c.test(env) for r in c.explain(env)]

    def describe(self) -> str:
        return "any of (" + "; ".join(c.describe() for c in self.children) + ")"

    def required(self) -> frozenset[int] | None:
        out: set[int] = set()
        for child in self.children:
            req = child.required()
            if req is None:
                return None
            out |= req
        return frozenset(out)


@dataclass(frozen=True, slots=True)
class Not(Condition):
    child: Condition

    def test(self, env: Env) -> bool:
        return not self.child.test(env)

    def describe(self) -> str:
        return f"not ({self.child.describe()})"


# -- addresses ---------------------------------------------------------------


def compile_globs(globs: Sequence[str]) -> tuple[re.Pattern[str], ...]:
    """Shell globs, case-insensitive. fnmatch output is linear (no nested repeats)."""
    return tuple(re.compile(fnmatch.translate(g.lower())) for g in globs)


@dataclass(frozen=True, slots=True)
class AddressMatch(Condition):
    """from / to / cc / recipient (to+cc) / mailbox (name or address) against globs."""

    what: str
    globs: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...] = field(compare=False)

    def _values(self, env: Env) -> list[str]:
        msg = env.msg
        if self.what == "from":
            return [msg.from_.email] if msg.from_ is not None else []
        if self.what == "to":
            return [a.email for a in msg.to]
        if self.what == "cc":
            return [a.email for a in msg.cc]
        if self.what == "recipient":
            return [a.email for a in msg.recipients]
        return [env.ctx.mailbox.lower(), env.ctx.mailbox_address.lower()]

    def _first(self, env: Env) -> tuple[str, str] | None:
        for value in self._values(env):
            for glob, pattern in zip(self.globs, self.patterns, strict=True):
                if pattern.match(value):
                    return value, glob
        return None

    def test(self, env: Env) -> bool:
        return self._first(env) is not None

    def explain(self, env: Env) -> list[str]:
        found = self._first(env)
        if found is None:
            return [self.describe()]
        return [f"{self.what} {found[0]!r} matches {found[1]!r}"]

    def describe(self) -> str:
        return f"{self.what} matches {_q(self.globs)}"


@dataclass(frozen=True, slots=True)
class DomainMatch(Condition):
    """Sender domain against globs; 'acme.com' also covers 'mail.acme.com'."""

    globs: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...] = field(compare=False)

    def _first(self, env: Env) -> tuple[str, str] | None:
        if env.msg.from_ is None:
            return None
        domain = env.msg.from_.domain.lower()
        while domain:
            for glob, pattern in zip(self.globs, self.patterns, strict=True):
                if pattern.match(domain):
                    return env.msg.from_.domain, glob
            domain = domain.partition(".")[2]
        return None

    def test(self, env: Env) -> bool:
        return self._first(env) is not None

    def explain(self, env: Env) -> list[str]:
        found = self._first(env)
        if found is None:
            return [self.describe()]
        return [f"from_domain {found[0]!r} matches {found[1]!r}"]

    def describe(self) -> str:
        return f"from_domain matches {_q(self.globs)}"


# -- text ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Keywords(Condition):
    """Whole-word keywords in subject or body; mode 'any' or 'all'."""

    what: str
    mode: str
    words: tuple[str, ...]  # as written, for reasons
    signals: tuple[int, ...]  # parallel to words
    sigset: frozenset[int] = field(compare=False)
    longest: int = 0  # signal of the longest keyword: the gate for 'all'

    def test(self, env: Env) -> bool:
        if self.mode == "any":
            return not self.sigset.isdisjoint(env.signals)
        return self.sigset <= env.signals

    def explain(self, env: Env) -> list[str]:
        hit = [w for w, s in zip(self.words, self.signals, strict=True) if s in env.signals]
        if self.mode == "all":
            return [f"{self.what} contains all of {_q(hit)}"]
        return [f"{self.what} contains {w!r}" for w in hit[:3]]

    def describe(self) -> str:
        return f"{self.what} contains {self.mode} of {_q(self.words)}"

    def required(self) -> frozenset[int] | None:
        return self.sigset if self.mode == "any" else frozenset((self.longest,))


@dataclass(frozen=True, slots=True)
class RegexMatch(Condition):
    what: str
    pattern: str
    signal: int

    def test(self, env: Env) -> bool:
        return self.signal in env.signals

    def explain(self, env: Env) -> list[str]:
        found = env.index.explain_regex(self.signal, env.msg.subject, env.body)
        return [f"{self.what} matches /{self.pattern}/ ({found[:60]!r})"]

    def describe(self) -> str:
        return f"{self.what} matches /{self.pattern}/"

    def required(self) -> frozenset[int] | None:
        return frozenset((self.signal,))


@dataclass(frozen=True, slots=True)
class HeaderMatch(Condition):
    """Any header by name: exists / equals / any / all / regex (values of all occurrences)."""

    name: str  # lowercased
    op: str  # exists | missing | equals | any | all | regex
    values: tuple[str, ...] = ()  # as written
    folded: tuple[str, ...] = ()  # casefolded, for equals
    words: tuple[bytes, ...] = ()  # folded keywords, for any / all
    regexes: tuple[re2._Regexp, ...] = field(default=(), compare=False)

    def _match(self, env: Env) -> str | None:
        """The matching header value (or '' for missing), None when false."""
        values = env.msg.header_all(self.name)
        if self.op == "exists":
            return values[0] if values else None
        if self.op == "missing":
            return None if values else ""
        for value in values:
            if self.op == "equals":
                low = value.strip().casefold()
                if any(low == v for v in self.folded):
                    return value
            elif self.op in ("any", "all"):
                text = fold(value)
                hits = [find_word(text, w) for w in self.words]
                if any(hits) if self.op == "any" else all(hits):
                    return value
            elif any(rx.search(value) for rx in self.regexes):
                return value
        return None

    def test(self, env: Env) -> bool:
        return self._match(env) is not None

    def explain(self, env: Env) -> list[str]:
        if self.op == "missing":
            return [f"header {self.name} is absent"]
        value = self._match(env) or ""
        return [f"header {self.name} {self._verb()} ({value[:60]!r})"]

    def _verb(self) -> str:
        if self.op == "exists":
            return "exists"
        if self.op == "missing":
            return "is absent"
        if self.op == "regex":
            return "matches " + " or ".join(f"/{v}/" for v in self.values)
        word = {"equals": "equals", "any": "contains any of", "all": "contains all of"}[self.op]
        return f"{word} {_q(self.values)}"

    def describe(self) -> str:
        return f"header {self.name} {self._verb()}"


# -- attachments, VIP, time ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class HasAttachment(Condition):
    """Real attachments only: inline images referenced from the HTML do not count."""

    want: bool

    def test(self, env: Env) -> bool:
        has = any(not a.inline for a in env.msg.attachments)
        return has == self.want

    def explain(self, env: Env) -> list[str]:
        names = [a.filename or a.content_type for a in env.msg.attachments if not a.inline]
        return [f"has attachment {names[0]!r}"] if self.want else ["has no attachment"]

    def describe(self) -> str:
        return "has attachment" if self.want else "has no attachment"


@dataclass(frozen=True, slots=True)
class AttachmentType(Condition):
    """Globs with a '/' match the content type, others the file name ('*.pdf')."""

    globs: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...] = field(compare=False)

    def _first(self, env: Env) -> str | None:
        for att in env.msg.attachments:
            ctype, fname = att.content_type.lower(), att.filename.lower()
            for glob, pattern in zip(self.globs, self.patterns, strict=True):
                if pattern.match(ctype if "/" in glob else fname):
                    return f"attachment {att.filename or '(unnamed)'!r} ({ctype}) matches {glob!r}"
        return None

    def test(self, env: Env) -> bool:
        return self._first(env) is not None

    def explain(self, env: Env) -> list[str]:
        return [self._first(env) or self.describe()]

    def describe(self) -> str:
        return f"attachment type matches {_q(self.globs)}"


@dataclass(frozen=True, slots=True)
class Vip(Condition):
    """Sender on a VIP list, ticket already VIP, or an earlier rule marked it VIP."""

    want: bool

    def test(self, env: Env) -> bool:
        return (env.vip_reason is not None) == self.want

    def explain(self, env: Env) -> list[str]:
        return [f"VIP: {env.vip_reason}"] if self.want else ["not VIP"]

    def describe(self) -> str:
        return "VIP" if self.want else "not VIP"


@dataclass(frozen=True, slots=True)
class BusinessHours(Condition):
    calendar: str

    def test(self, env: Env) -> bool:
        return is_business_time(env.calendars[self.calendar], env.ctx.now)

    def describe(self) -> str:
        return f"inside business hours of {self.calendar}"


@dataclass(frozen=True, slots=True)
class TimeOfDay(Condition):
    """Local time within ranges (overnight allowed) on some weekdays."""

    ranges: tuple[Interval, ...]
    days: frozenset[int]
    timezone: str
    zone: Zone = field(compare=False)
    spec: str = ""

    def _local(self, now: datetime) -> tuple[int, int]:
        _, weekday, minute = local_minute(self.zone, now)
        return weekday, minute

    def test(self, env: Env) -> bool:
        weekday, minute = self._local(env.ctx.now)
        for start, end in self.ranges:
            if start < end:
                if start <= minute < end and weekday in self.days:
                    return True
            elif minute >= start and weekday in self.days:
                return True
            elif minute < end and (weekday - 1) % 7 in self.days:
                return True  # the small hours belong to the evening that started them
        return False

    def explain(self, env: Env) -> list[str]:
        weekday, minute = self._local(env.ctx.now)
        return [
            f"time {DAYS[weekday]} {minute // 60:02d}:{minute % 60:02d} {self.timezone} "
            f"within {self.spec}"
        ]

    def describe(self) -> str:
        return f"time within {self.spec}"


@dataclass(frozen=True, slots=True)
class SentimentIs(Condition):
    """The new text's sentiment: ``negative`` at VADER compound <= -threshold,
    ``positive`` at >= threshold, ``unknown`` for text it cannot score (never
    negative: a mail in German is not an angry one)."""

    label: str  # negative | positive | unknown
    threshold: float

    def test(self, env: Env) -> bool:
        found = env.mood()
        if self.label == UNKNOWN or found.score is None:
            return self.label == UNKNOWN and found.score is None
        if self.label == NEGATIVE:
            return found.score <= -self.threshold
        return self.label == POSITIVE and found.score >= self.threshold

    def explain(self, env: Env) -> list[str]:
        found = env.mood()
        if found.score is None:
            return [found.describe()]
        bound = -self.threshold if self.label == NEGATIVE else self.threshold
        op = "<=" if self.label == NEGATIVE else ">="
        return [f"sentiment {self.label}: score {found.score:+.2f} {op} {bound:+.2f}"]

    def describe(self) -> str:
        if self.label == UNKNOWN:
            return "sentiment unknown"
        return f"sentiment {self.label} (threshold {self.threshold:.2f})"
