"""Follow-up questions made standalone without a language model.

When a question refers back ("where is his organization based?") or is too short to stand on
its own, the key terms of the previous question are carried over into the retrieval query.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.types import Turn
from index.keywords import STOPWORDS

_REFERRING = re.compile(
    r"\b(he|him|his|she|her|hers|it|its|they|them|their|theirs|this|that|these|those|there|"
    r"the (organi[sz]ation|report|group|article|company|author|study|paper|document)|same|also|more)\b",
    re.I,
)
_WORD = re.compile(r"[\w’'-]+")


def key_terms(text: str) -> list[str]:
    """Content words of a question, in order of appearance."""
    return [w for w in _WORD.findall(text) if (w.lower() not in STOPWORDS and len(w) > 2) or w.isdigit()]


def names(text: str) -> list[str]:
    """Capitalised words after the first: what a pronoun most likely points back to."""
    words = _WORD.findall(text)
    return [w for i, w in enumerate(words) if i > 0 and w[:1].isupper() and w.lower() not in STOPWORDS]


# "his organization" is the organization itself; "his job title" keeps its noun.
_POSSESSIVE = re.compile(
    r"\b(his|her|its|their)\s+(organi[sz]ation|group|company|report|article|study|paper|document)\b", re.I
)
_PRONOUN = re.compile(r"\b(he|she|it|they|him|them|his|her|its|their)\b", re.I)


def name_phrase(text: str) -> str:
    """The longest run of capitalised words after the first word ("Safeguard Defenders")."""
    words = _WORD.findall(text)
    best: list[str] = []
    run: list[str] = []
    for i, w in enumerate(words):
        if i > 0 and w[:1].isupper():
            run.append(w)
            best = max(best, run, key=len)
        else:
            run = []
    return " ".join(best)


def needs_context(question: str) -> bool:
    return bool(_REFERRING.search(question)) or len(key_terms(question)) <= 1


def referent(history: Sequence[Turn]) -> Turn:
    """The earlier question a follow-up points back to: the latest one that names something or
    stands on its own, walking back over follow-ups that themselves only referred back
    ("Who founded Safeguard Defenders?" <- "Where is his organization based?" <- "And his title?")."""
    for turn in reversed(history):
        if name_phrase(turn.question) or not needs_context(turn.question):
            return turn
    return history[-1]


def standalone_question(question: str, history: Sequence[Turn]) -> str:
    """The question, plus the key terms of the question it refers back to (in the whole
    history, not only the previous turn)."""
    if not history or not needs_context(question):
        return question
    previous = referent(history).question
    phrase = name_phrase(previous)
    if phrase and phrase.lower() not in question.lower():
        # "Where is his organization based?" -> "Where is Safeguard Defenders based?"
        for pattern in (_POSSESSIVE, _PRONOUN):
            rewritten, count = pattern.subn(phrase, question, count=1)
            if count:
                return rewritten
    own = {w.lower() for w in key_terms(question)}
    # Names are what "he", "it" or "the organization" stand for; without names, the topic words.
    carried = [w for w in (names(previous) or key_terms(previous)) if w.lower() not in own]
    return f"{question} ({' '.join(carried[:8])})" if carried else question
