"""Sentiment of a mail's new text: VADER's compound score, or ``unknown``.

VADER (vaderSentiment) is a lexicon and rule scorer for English: no model, no
download, about a millisecond for a short mail. It scores any text, and scores
text in other languages as neutral or worse at random (``"Das ist eine
Katastrophe"`` is 0.0, a French "horrible" counts), so a text that does not look
English is ``unknown``, never negative: fewer than ``MIN_WORDS`` words, or too
few of them are common English words (a cheap language check: English prose is
a third or more function words, German or Spanish prose almost none of these).

Pure apart from reading VADER's lexicon, package data loaded once on the first
score (so rule sets that never ask for sentiment never load it).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

MAX_CHARS = 5000  # a long mail's start says how the customer feels
MIN_WORDS = 4
MIN_ENGLISH_SHARE = 0.2
NEGATIVE, NEUTRAL, POSITIVE, UNKNOWN = "negative", "neutral", "positive", "unknown"
LABELS = (NEGATIVE, NEUTRAL, POSITIVE, UNKNOWN)
DEFAULT_THRESHOLD = 0.5  # |compound| at or past which a text is negative / positive

# The commonest English function words (none of them a German, French or Spanish
# word of the same spelling that is common too, bar a few like "in", "no").
_ENGLISH = frozenset(
    """
    the a an and or but if of to in on at for with from by about as into than then
    is are was were be been being am do does did done have has had having will would
    can could should shall may might must not no nor
    i me my mine you your yours he him his she her it its we us our they them their
    this that these those there here what which who whom whose when where why how
    all any some each every more most very just also only so too again still yet
    please thanks thank hello hi dear regards get got any anyone nobody nothing
    """.split()
)
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")

_lock = threading.Lock()
_analyzer: Any = None


@dataclass(frozen=True, slots=True)
class Sentiment:
    label: str  # negative | neutral | positive | unknown
    score: float | None  # VADER's compound score in [-1, 1]; None when unknown
    why: str = ""  # for unknown: why the text was not scored

    def describe(self) -> str:
        if self.score is None:
            return f"sentiment unknown ({self.why})"
        return f"sentiment {self.label} ({self.score:+.2f})"


def _vader() -> Any:
    global _analyzer
    if _analyzer is None:
        with _lock:
            if _analyzer is None:
                from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

                _analyzer = SentimentIntensityAnalyzer()
    return _analyzer


def looks_english(text: str) -> tuple[bool, str]:
    """Whether VADER can be trusted on ``text``; the reason when not."""
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < MIN_WORDS:
        return False, f"{len(words)} words"
    common = sum(1 for w in words if w in _ENGLISH)
    if common < MIN_ENGLISH_SHARE * len(words):
        return False, f"not English: {common} of {len(words)} words common English"
    return True, ""


def score(text: str, threshold: float = DEFAULT_THRESHOLD) -> Sentiment:
    """The label of ``text``: negative at compound <= -threshold, positive at >= threshold."""
    cut = text[:MAX_CHARS]
    english, why = looks_english(cut)
    if not english:
        return Sentiment(UNKNOWN, None, why)
    compound = float(_vader().polarity_scores(cut)["compound"])
    if compound <= -threshold:
        label = NEGATIVE
    elif compound >= threshold:
        label = POSITIVE
    else:
        label = NEUTRAL
    return Sentiment(label, compound)


__all__ = [
    "DEFAULT_THRESHOLD",
    "LABELS",
    "NEGATIVE",
    "POSITIVE",
    "UNKNOWN",
    "Sentiment",
    "looks_english",
    "score",
]
