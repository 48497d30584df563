"""The offline answerer: quote the retrieved sentences that answer the question, or abstain.

Each sentence of the retrieved passages is scored by its embedding similarity to the
question plus the share of the question's (IDF-weighted) terms it contains. The best one to
three sentences are returned in reading order with [n] markers. When the best score is below
the threshold (`DOSSIER_ABSTAIN_THRESHOLD`, calibrated on the report dev set, see README),
it answers that the documents don't say and cites nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.prompts import CANNOT_ANSWER
from bot.retrieval import terms
from bot.types import Citation, Draft, Passage, TokenCallback, Turn
from ingest.sentences import split_sentences

_NUMERIC_Q = re.compile(r"\b(how (many|much|long|old|often)|what (year|number|percentage)|when)\b", re.I)
_HAS_NUMBER = re.compile(r"\d")
# Answer types (classic factoid QA): a question asking for a name or title is answered by a
# sentence that quotes one; a "how many" question by a sentence with a number.
_NAME_Q = re.compile(r"\b(title|titled|called|named|name of|entitled)\b", re.I)
_HAS_QUOTED = re.compile(r"[“\"][^”\"]{3,120}[”\"]")
_PREFIXES = ("en", "re", "un", "co", "sub", "pre", "inter", "dis")
_MAX_SENTENCES = 3
_MAX_CHARS = 420


@dataclass(frozen=True)
class ScoredSentence:
    passage: int  # index into passages
    start: int
    end: int
    text: str
    score: float


class ExtractiveAnswerer:
    name = "extractive"

    def __init__(
        self,
        embedder: Any,
        *,
        threshold: float = 0.45,
        idf: Callable[[str], float] | None = None,
        semantic_weight: float = 0.55,
    ) -> None:
        self.embedder = embedder
        self.threshold = threshold
        self.idf = idf or (lambda term: 1.0)
        self.semantic_weight = semantic_weight

    def score(self, question: str, passages: Sequence[Passage]) -> list[ScoredSentence]:
        """Every sentence of the passages, best first."""
        sentences: list[tuple[int, int, int, str, str]] = []  # passage, start, end, text, previous
        for i, passage in enumerate(passages):
            previous = ""
            for a, b in split_sentences(passage.text):
                text = passage.text[a:b]
                if len(text) >= 12 and any(ch.isalpha() for ch in text):
                    sentences.append((i, a, b, text, previous))
                previous = text
        if not sentences:
            return []
        q_terms = set(terms(question))
        weights = {t: self.idf(t) for t in q_terms}
        total = sum(weights.values()) or 1.0
        q_vec = np.asarray(self.embedder.embed_query(question), dtype=np.float32)
        # A long sentence's embedding is diluted by its other content: also score its clauses.
        pieces: list[str] = []
        owner: list[int] = []
        for n, (_, _, _, text, _) in enumerate(sentences):
            for piece in [text, *_clauses(text)]:
                pieces.append(piece)
                owner.append(n)
        cosine = np.full(len(sentences), -1.0, dtype=np.float32)
        for n, cos in zip(owner, np.asarray(self.embedder.encode(pieces), dtype=np.float32) @ q_vec, strict=True):
            cosine[n] = max(cosine[n], cos)
        numeric = bool(_NUMERIC_Q.search(question))
        naming = bool(_NAME_Q.search(question))
        scored = []
        for (i, a, b, text, previous), cos in zip(sentences, cosine, strict=True):
            own = _matches(q_terms, set(terms(text)))
            # What the previous sentence names ("Safeguard Defenders published a report.
            # The paper, entitled ...") half counts: a cheap stand-in for coreference.
            context = _matches(q_terms, set(terms(previous))) if previous else {}
            overlap = sum(weights[t] * max(own.get(t, 0.0), 0.5 * context.get(t, 0.0)) for t in q_terms) / total
            score = self.semantic_weight * float(cos) + (1 - self.semantic_weight) * overlap
            # Captions and fragments ("(Courtesy of X)") match names but say little.
            score *= min(1.0, len(text.split()) / 8)
            if (numeric and _HAS_NUMBER.search(text)) or (naming and _HAS_QUOTED.search(text)):
                score += 0.05
            score -= 0.01 * i  # a slight preference for the better-ranked passage
            scored.append(ScoredSentence(i, a, b, text, score))
        scored.sort(key=lambda s: s.score, reverse=True)
        return scored

    def answer(
        self,
        question: str,
        passages: Sequence[Passage],
        history: Sequence[Turn] = (),
        on_token: TokenCallback | None = None,
    ) -> Draft:
        scored = self.score(question, passages)
        if not scored or scored[0].score < self.threshold:
            if on_token:
                on_token(CANNOT_ANSWER)
            return Draft(text=CANNOT_ANSWER, citations=(), abstained=True)
        best = scored[0].score
        chosen = [scored[0]]
        length = len(scored[0].text)
        for s in scored[1:]:
            if len(chosen) >= _MAX_SENTENCES or s.score < max(self.threshold, best - 0.08):
                break
            if len(s.text.split()) < 6 or length + len(s.text) > _MAX_CHARS or any(_same(s, c) for c in chosen):
                continue
            chosen.append(s)
            length += len(s.text)
        chosen.sort(key=lambda s: (s.passage, s.start))

        numbers: dict[int, int] = {}
        citations: list[Citation] = []
        parts: list[str] = []
        for s in chosen:
            if s.passage not in numbers:
                numbers[s.passage] = len(numbers) + 1
                p = passages[s.passage]
                citations.append(Citation(numbers[s.passage], p.source, p.location, s.text, p.id))
            else:  # a second quote from the same passage: widen the quote to cover both
                n = numbers[s.passage]
                old = citations[n - 1]
                p = passages[s.passage]
                lo = min(p.text.find(old.quote), s.start)
                hi = max(p.text.find(old.quote) + len(old.quote), s.end)
                citations[n - 1] = Citation(n, old.source, old.location, p.text[lo:hi], old.passage_id)
            parts.append(f"{s.text} [{numbers[s.passage]}]")
        text = " ".join(parts)
        if on_token:
            on_token(text)
        return Draft(text=text, citations=tuple(citations), abstained=False)


def _clauses(sentence: str) -> list[str]:
    """Clauses of a long sentence (split at , ; : and dashes), each at least five words."""
    if len(sentence.split()) < 16:
        return []
    parts = [p.strip() for p in re.split(r"[,;:—–]\s+", sentence) if p.strip()]
    clauses, current = [], ""
    for part in parts:
        current = f"{current}, {part}" if current else part
        if len(current.split()) >= 5:
            clauses.append(current)
            current = ""
    if current and clauses:
        clauses[-1] = f"{clauses[-1]}, {current}"
    return clauses if len(clauses) > 1 else []


def _matches(question_terms: set[str], sentence_terms: set[str]) -> dict[str, float]:
    """Each question term found in the sentence: 1 for the same stem or the stem under a prefix
    (titl/entitl), 0.6 for a related form (one stem inside the other, e.g. found/founder)."""
    found: dict[str, float] = {}
    for q in question_terms:
        if q in sentence_terms or any(p + q in sentence_terms for p in _PREFIXES):
            found[q] = 1.0
        elif len(q) >= 4 and any(len(t) >= 4 and (q in t or t in q) for t in sentence_terms):
            found[q] = 0.6
    return found


def _same(a: ScoredSentence, b: ScoredSentence) -> bool:
    """The same sentence seen twice (overlapping passages) or a near copy."""
    if a.text == b.text:
        return True
    ta, tb = set(a.text.lower().split()), set(b.text.lower().split())
    return len(ta & tb) / max(1, min(len(ta), len(tb))) > 0.8
