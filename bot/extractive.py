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
from bot.retrieval import SpanVector, terms
from bot.types import Citation, Draft, Passage, TokenCallback, Turn
from ingest.chunking import sentence_spans
from ingest.sentences import glued_heading_length

_NUMERIC_Q = re.compile(r"\b(how (many|much|long|old|often)|what (year|number|percentage)|when)\b", re.I)
_HAS_NUMBER = re.compile(r"\d")
# Answer types (classic factoid QA): a question asking for a name or title is answered by a
# sentence that quotes one; a "how many" question by a sentence with a number.
_NAME_Q = re.compile(r"\b(title|titled|called|named|name of|entitled)\b", re.I)
_HAS_QUOTED = re.compile(r"[“\"][^”\"]{3,120}[”\"]")
# The source's own footnote markers ("banned. [4]The second reason"): in an answer they would
# read as citations of ours, so the answer text drops them (the quote keeps them, verbatim).
_FOOTNOTE = re.compile(r"\s*\[\d{1,3}\]\s*")
_PREFIXES = ("en", "re", "un", "co", "sub", "pre", "inter", "dis")
_MAX_SENTENCES = 3
_MAX_CHARS = 360
# A second sentence joins the answer when it scores within this of the best one (it often
# holds the other half of the answer, or a second reading of the question); a third only when
# nearly as good as the best.
_SECOND_MARGIN = 0.12
_THIRD_MARGIN = 0.05


@dataclass(frozen=True)
class ScoredSentence:
    passage: int  # index into passages
    start: int
    end: int
    text: str
    score: float
    clause: tuple[int, int] | None = None  # the best-matching clause of a long sentence


class ExtractiveAnswerer:
    name = "extractive"

    def __init__(
        self,
        embedder: Any,
        *,
        threshold: float = 0.45,
        idf: Callable[[str], float] | None = None,
        semantic_weight: float = 0.55,
        sentence_vectors: Callable[[Sequence[Passage]], list[list[SpanVector]] | None] | None = None,
    ) -> None:
        self.embedder = embedder
        self.sentence_vectors = sentence_vectors
        self.threshold = threshold
        self.idf = idf or (lambda term: 1.0)
        self.semantic_weight = semantic_weight

    def score(
        self,
        question: str,
        passages: Sequence[Passage],
        stored: Sequence[Sequence[SpanVector]] | None = None,
    ) -> list[ScoredSentence]:
        """Every sentence of the passages, best first.

        `stored` holds each passage's sentence and clause vectors from ingest (same model,
        same forward pass as the chunk); without it, the sentences are embedded now.
        """
        units = stored if stored is not None else self._embed_units(passages)
        q_vec = np.asarray(self.embedder.embed_query(question), dtype=np.float32)
        q_terms = set(terms(question))
        weights = {t: self.idf(t) for t in q_terms}
        total = sum(weights.values()) or 1.0
        numeric = bool(_NUMERIC_Q.search(question))
        naming = bool(_NAME_Q.search(question))
        scored = []
        for i, (passage, spans) in enumerate(zip(passages, units, strict=True)):
            previous = ""
            sentences = [(a, b, v) for a, b, kind, v in spans if kind == 0]
            clauses = [(a, b, v) for a, b, kind, v in spans if kind == 1]
            for a, b, vector in sentences:
                text = passage.text[a:b]  # scored whole: a glued heading is context ...
                quoted = a + glued_heading_length(text)  # ... but the quote starts after it
                if len(text) < 12 or not any(ch.isalpha() for ch in text):
                    previous = text
                    continue
                # A long sentence's vector is diluted by its other content: its clauses count too.
                parts = [
                    (x, y, float(v.astype(np.float32) @ q_vec)) for x, y, v in clauses if a <= x and y <= b
                ]
                cos = max([float(vector.astype(np.float32) @ q_vec)] + [c for _, _, c in parts])
                best_part = max(parts, key=lambda part: part[2]) if parts else None
                clause = (max(best_part[0], quoted), best_part[1]) if best_part else None
                own = _matches(q_terms, set(terms(text)))
                # What the previous sentence names ("Safeguard Defenders published a report.
                # The paper, entitled ...") half counts: a cheap stand-in for coreference.
                context = _matches(q_terms, set(terms(previous))) if previous else {}
                previous = text
                overlap = (
                    sum(weights[t] * max(own.get(t, 0.0), 0.5 * context.get(t, 0.0)) for t in q_terms) / total
                )
                score = self.semantic_weight * cos + (1 - self.semantic_weight) * overlap
                # Captions and fragments ("(Courtesy of X)") match names but say little.
                score *= min(1.0, len(text.split()) / 8)
                if (numeric and _HAS_NUMBER.search(text)) or (naming and _HAS_QUOTED.search(text)):
                    score += 0.05
                score -= 0.01 * i  # a slight preference for the better-ranked passage
                scored.append(ScoredSentence(i, quoted, b, passage.text[quoted:b], score, clause))
        scored.sort(key=lambda s: s.score, reverse=True)
        return scored

    def passage_scores(self, question: str, passages: Sequence[Passage]) -> list[float]:
        """Each passage's best sentence score (a slight preference for better-ranked passages
        included): how well the passage answers the question, used to order retrieved passages."""
        stored = self.sentence_vectors(passages) if self.sentence_vectors is not None else None
        best = [-1.0] * len(passages)
        for s in self.score(question, passages, stored):
            best[s.passage] = max(best[s.passage], s.score)
        return best

    def _embed_units(self, passages: Sequence[Passage]) -> list[list[SpanVector]]:
        """Sentence and clause vectors computed now, for indexes without stored ones."""
        spans = [sentence_spans(p.text) for p in passages]
        flat = [p.text[a:b] for p, s in zip(passages, spans, strict=True) for a, b, _ in s]
        vectors = iter(np.asarray(self.embedder.encode(flat), dtype=np.float32) if flat else [])
        return [[(a, b, k, next(vectors)) for a, b, k in s] for s in spans]

    def answer(
        self,
        question: str,
        passages: Sequence[Passage],
        history: Sequence[Turn] = (),
        on_token: TokenCallback | None = None,
    ) -> Draft:
        stored = self.sentence_vectors(passages) if self.sentence_vectors is not None else None
        scored = self.score(question, passages, stored)
        if not scored or scored[0].score < self.threshold:
            if on_token:
                on_token(CANNOT_ANSWER)
            return Draft(text=CANNOT_ANSWER, citations=(), abstained=True)
        best = scored[0].score
        chosen = [scored[0]]
        length = len(scored[0].text)
        for s in scored[1:]:
            margin = _SECOND_MARGIN if len(chosen) == 1 else _THIRD_MARGIN
            if len(chosen) >= _MAX_SENTENCES or s.score < max(self.threshold, best - margin):
                continue
            if (
                len(s.text.split()) < 6
                or length + len(s.text) > _MAX_CHARS
                or any(_same(s, c) for c in chosen)
            ):
                continue
            chosen.append(s)
            length += len(s.text)
        chosen.sort(key=lambda s: (s.passage, s.start))
        # A sentence too long to be an answer (a flattened table, an e-mail thread) is quoted
        # by its clause that matches the question best.
        chosen = [_shorten(s, passages[s.passage].text) for s in chosen]

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
            parts.append(f"{_clean(s.text)} [{numbers[s.passage]}]")
        text = " ".join(parts)
        if on_token:
            on_token(text)
        return Draft(text=text, citations=tuple(citations), abstained=False)


def _shorten(s: ScoredSentence, text: str) -> ScoredSentence:
    if len(s.text) <= _MAX_CHARS or s.clause is None:
        return s
    a, b = s.clause
    return ScoredSentence(s.passage, a, b, text[a:b], s.score)


def _clean(sentence: str) -> str:
    """A quoted sentence as the answer shows it: one line, without the source's footnote marks."""
    return " ".join(_FOOTNOTE.sub(" ", sentence).split())


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
