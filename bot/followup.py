"""Follow-up questions made standalone without a language model.

When a question refers back ("where is his organization based?") or is too short to stand on
its own, the key terms of the previous question are carried over into the retrieval query.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.retrieval import STOPWORDS
from bot.types import Turn

_REFERRING = re.compile(
    r"\b(he|him|his|she|her|hers|it|its|they|them|their|theirs|this|that|these|those|there|"
    r"the (organi[sz]ation|report|group|article|company|author|study|paper|document)|same|also|more)\b",
    re.I,
)
_WORD = re.compile(r"[\w’'-]+")


def key_terms(text: str) -> list[str]:
    """Content words of a question, capitalised names first, in order of appearance."""
    words = _WORD.findall(text)
    content = [w for i, w in enumerate(words) if w.lower() not in STOPWORDS and len(w) > 2 or w.isdigit()]
    names = [w for i, w in enumerate(words) if i > 0 and w[:1].isupper() and w.lower() not in STOPWORDS]
    ordered: dict[str, None] = {}
    for w in names + content:
        ordered.setdefault(w, None)
    return list(ordered)


def needs_context(question: str) -> bool:
    return bool(_REFERRING.search(question)) or len(key_terms(question)) <= 1


def standalone_question(question: str, history: Sequence[Turn]) -> str:
    """The question, plus the previous question's key terms when it refers back to them."""
    if not history or not needs_context(question):
        return question
    own = {w.lower() for w in key_terms(question)}
    carried = [w for w in key_terms(history[-1].question) if w.lower() not in own]
    return f"{question} ({' '.join(carried[:8])})" if carried else question
