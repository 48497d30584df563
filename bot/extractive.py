"""The offline answerer: quote the retrieved sentences that answer the question, or abstain.

Each sentence of the retrieved passages is scored by its embedding similarity to the
question plus the share of the question's (IDF-weighted) terms it contains. What is quoted
depends on the kind of question (bot.kinds): a factoid gets its best one to three sentences,
a list every sentence that names an item, an explanation, comparison or two-part question a
set of sentences that together cover its parts (at most four). Quotes are whole sentences
(bot.quotes) of the type the question asks for (bot.answer_types), in reading order with [n]
markers. When the best score is below the threshold (`DOSSIER_ABSTAIN_THRESHOLD`, calibrated
on the report dev set, see README), or the passages lack what the question asks for, it
answers that the documents don't say and cites nothing. A question in one language over
passages in another must also bring the best sentence's cosine up to the model's
cross-language bar for the passages' language (`DOSSIER_CROSS_LANGUAGE_THRESHOLD`), when it
has one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Any

import numpy as np

from bot.answer_types import (
    ASKS_AUTHOR,
    AUTHORSHIP,
    REASON,
    REASON_BONUS,
    asks_for_names,
    fits_type,
    item_bonus,
    names_its_items,
)
from bot.kinds import core, focus, head_noun, parts
from bot.prompts import CANNOT_ANSWER
from bot.quotes import (
    ASKS_ITSELF,
    MIN_WORDS,
    ScoredSentence,
    read_on,
    render,
    same_sentence,
    sentence_terms,
    shorten,
    wholes,
)
from bot.retrieval import SpanVector
from bot.selection import ASKING_TERMS, BULLET_KINDS, select_covering, select_factoid, select_names
from bot.types import Draft, Passage, TokenCallback, Turn
from dossier_common.settings import ANY_LANGUAGE, DEFAULT_ABSTAIN_THRESHOLD
from index.keywords import terms
from index.languages import detect_language
from index.sentences import glued_heading_length, sentence_spans, text_length

_NUMERIC_Q = re.compile(
    r"\b(how (many|much|long|old|often)|what (year|number|percentage)|when)\b"
    r"|多少|几[个年次座名位家国]|哪一?年|什么时候|何时",  # the same questions in Chinese
    re.I,
)
_HAS_NUMBER = re.compile(r"\d")
# Languages told apart by their scripts (index.languages.detect_language): between two of them
# a question and a sentence share no terms.
_SCRIPT_LANGUAGES = frozenset({"en", "zh", "ja", "ko"})
# Answer types (classic factoid QA): a question asking for a name or title is answered by a
# sentence that quotes one; a "how many" question by a sentence with a number.
_NAME_Q = re.compile(
    r"\b(title|titled|called|named|name of|entitled)\b|标题|题目|名为|名叫|叫什么|名称", re.I
)
# "Who wrote this article?" in Chinese: answered by the byline, like ASKS_AUTHOR.
_ASKS_AUTHOR_ZH = re.compile(
    r"^(这|那|该|本)(篇|份|个)?(文章|报道|报告|文件|文档)(是)?(由)?谁(写|撰写|报道)的?[？?]?$|^(这|那|该|本)(篇|份|个)?(文章|报道|报告|文件|文档)的作者是谁[？?]?$"
)
_HAS_QUOTED = re.compile(r"[“\"][^”\"]{3,120}[”\"]")
_PREFIXES = ("en", "re", "un", "co", "sub", "pre", "inter", "dis")


class ExtractiveAnswerer:
    name = "extractive"

    def __init__(
        self,
        embedder: Any,
        *,
        threshold: float = DEFAULT_ABSTAIN_THRESHOLD,
        idf: Callable[[str], float] | None = None,
        semantic_weight: float = 0.55,
        cross_language_bars: Mapping[str, float] | None = None,
        sentence_vectors: Callable[[Sequence[Passage]], list[list[SpanVector]] | None] | None = None,
    ) -> None:
        self.embedder = embedder
        self.sentence_vectors = sentence_vectors
        self.threshold = threshold
        self.cross_language_bars = dict(cross_language_bars or {})  # passage language -> cosine
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
        q_terms = frozenset(terms(question))
        asker = detect_language(question)
        weights = {t: self.idf(t) for t in q_terms}
        total = sum(weights.values()) or 1.0
        numeric = bool(_NUMERIC_Q.search(question))
        naming = bool(_NAME_Q.search(question))
        scored = []
        for i, (passage, spans) in enumerate(zip(passages, units, strict=True)):
            previous = ""
            previous_span: tuple[int, int] | None = None
            sentences = [(a, b, v) for a, b, kind, v in spans if kind == 0]
            semantic = self._semantic_weight(asker, passage.language)
            clauses = [(a, b, v) for a, b, kind, v in spans if kind == 1]
            for a, b, vector in sentences:
                text = passage.text[a:b]  # scored whole: a glued heading is context ...
                quoted = a + glued_heading_length(text)  # ... but the quote starts after it
                if len(text) < 12 or not any(ch.isalpha() for ch in text):
                    previous, previous_span = text, (quoted, b)
                    continue
                # A long sentence's vector is diluted by its other content: its clauses count too.
                pieces = [
                    (x, y, float(v.astype(np.float32) @ q_vec)) for x, y, v in clauses if a <= x and y <= b
                ]
                cos = max([float(vector.astype(np.float32) @ q_vec)] + [c for _, _, c in pieces])
                best_part = max(pieces, key=lambda piece: piece[2]) if pieces else None
                clause = (max(best_part[0], quoted), best_part[1]) if best_part else None
                own = _matches(q_terms, sentence_terms(text))
                # What the previous sentence names ("Safeguard Defenders published a report.
                # The paper, entitled ...") half counts: a cheap stand-in for coreference.
                context = _matches(q_terms, sentence_terms(previous)) if previous else {}
                before = previous_span
                previous, previous_span = text, (quoted, b)
                overlap = (
                    sum(weights[t] * max(own.get(t, 0.0), 0.5 * context.get(t, 0.0)) for t in q_terms) / total
                )
                score = semantic * cos + (1 - semantic) * overlap
                # Captions and fragments ("(Courtesy of X)") match names but say little.
                score *= min(1.0, text_length(text) / 8)
                if (numeric and _HAS_NUMBER.search(text)) or (naming and _HAS_QUOTED.search(text)):
                    score += 0.05
                score -= 0.01 * i  # a slight preference for the better-ranked passage
                held = frozenset(t for t in q_terms if own.get(t, 0.0) >= 0.6)
                scored.append(
                    ScoredSentence(i, quoted, b, passage.text[quoted:b], score, clause, held, before)
                )
        scored.sort(key=lambda s: s.score, reverse=True)
        return scored

    def _semantic_weight(self, asker: str, language: str) -> float:
        """The weight of the cosine in a sentence's score. A question in one language over a
        passage in another shares no terms with it, so the term overlap says nothing there and
        the cosine of a multilingual model is all the evidence: it counts whole. An English-only
        model's cosine across languages means little: the usual weights stand, and such a
        question is declined rather than answered from noise."""
        if _crosses(asker, language) and getattr(self.embedder, "multilingual", False):
            return 1.0
        return self.semantic_weight

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
        vectors: Iterator[np.ndarray] = iter(
            np.asarray(self.embedder.encode(flat), dtype=np.float32) if flat else []
        )
        return [[(a, b, k, next(vectors)) for a, b, k in s] for s in spans]

    def answer(
        self,
        question: str,
        passages: Sequence[Passage],
        history: Sequence[Turn] = (),
        on_token: TokenCallback | None = None,
        kind: str = "factoid",
        narrowed: str = "",
    ) -> Draft:
        """`narrowed`: the question without the title of the one document it names (the
        passages all come from it, so the title's words match everywhere). The whole question
        decides whether the documents answer; the narrowed one which sentences do."""
        stored = self.sentence_vectors(passages) if self.sentence_vectors is not None else None
        asked = focus(question) or question
        scored = self._ranked(asked, passages, stored, kind, question)
        draft = self._answer(question, passages, stored, asked, scored, on_token, kind, narrowed)
        return replace(draft, evidence=scored[0].score if scored else 0.0)

    def evidence(self, question: str, passages: Sequence[Passage], kind: str = "factoid") -> float:
        """The score the abstention is decided on: the best sentence (of the type asked for)."""
        stored = self.sentence_vectors(passages) if self.sentence_vectors is not None else None
        scored = self._ranked(focus(question) or question, passages, stored, kind, question)
        return scored[0].score if scored else 0.0

    def _answer(
        self,
        question: str,
        passages: Sequence[Passage],
        stored: Sequence[Sequence[SpanVector]] | None,
        asked: str,
        scored: list[ScoredSentence],
        on_token: TokenCallback | None,
        kind: str,
        narrowed: str,
    ) -> Draft:
        # Below `bar` no sentence is quoted: the threshold, unless the whole question cleared it
        # and the narrowed one picks the sentences (their scores are then only compared).
        bar = self.threshold
        if ASKS_AUTHOR.search(core(question)) or _ASKS_AUTHOR_ZH.search(question):
            # Who wrote the document is said by its byline, whatever the words of the question.
            bylines = [s for s in scored if AUTHORSHIP.search(s.text)]
            scored, bar = (bylines, 0.0) if bylines else (scored, bar)
        elif scored and scored[0].score >= self.threshold and narrowed:
            asked = focus(narrowed) or narrowed
            scored = self._ranked(asked, passages, stored, kind, question)
            bar = self.threshold * _NARROWED_SHARE
        # A byline question (bar 0) is answered by the byline whatever its cosine.
        if (
            not scored
            or scored[0].score < bar
            or not names_its_items(question, kind, passages, self.idf)
            or (bar > 0 and self._too_far_across_languages(question, passages, stored, scored[0]))
        ):
            if on_token:
                on_token(CANNOT_ANSWER)
            return Draft(text=CANNOT_ANSWER, citations=(), abstained=True)
        whole = wholes(scored, passages)
        if not whole:  # nothing that clears the bar can be quoted as a sentence
            chosen = []
        elif kind == "factoid":
            chosen = select_factoid(whole, bar)
        elif kind == "list" and asks_for_names(question):
            chosen = select_names(whole, question, bar, passages)
        else:
            # Each side of a comparison, each half of a two-part question: its own best sentence.
            # A side the best sentence already answers ("..., and in how many countries?") is
            # left alone.
            best_terms = sentence_terms(whole[0].text) if whole else frozenset()
            pending = [
                p for p in parts(question, kind) if not set(terms(focus(p))) - ASKING_TERMS <= best_terms
            ]
            ranked_sides = (self._ranked(p, passages, stored, kind, question) for p in pending)
            sides = [side[0] for side in (wholes(r, passages) for r in ranked_sides) if side]
            if kind in ("why", "how", "compare"):
                # The explanation usually follows the sentence that states the matter; a
                # comparison's sides are described after they are named.
                if kind in ("why", "how"):
                    # A question the text asks itself among the best three is the best anchor:
                    # its answer follows it.
                    asks = [i for i, s in enumerate(whole[:3]) if ASKS_ITSELF.search(s.text)]
                    if asks:
                        whole.insert(0, whole.pop(asks[0]))
                whole[:2] = [read_on(s, passages[s.passage].text, 2) for s in whole[:2]]
                sides = [read_on(s, passages[s.passage].text, 2) for s in sides]
            chosen = select_covering(whole, asked, kind, bar, passages, self.idf, sides)
        if not chosen:
            if on_token:
                on_token(CANNOT_ANSWER)
            return Draft(text=CANNOT_ANSWER, citations=(), abstained=True)
        # Reading order within each source, sources in the order of their best sentence.
        rank: dict[str, int] = {}
        for s in chosen:
            rank.setdefault(passages[s.passage].source, len(rank))
        chosen.sort(key=lambda s: (rank[passages[s.passage].source], passages[s.passage].start + s.start))
        # A sentence too long to be an answer (a flattened table, an e-mail thread) is quoted
        # by its clause that matches the question best.
        chosen = [shorten(s, passages[s.passage].text) for s in chosen]
        draft = render(chosen, passages, bullets=kind in BULLET_KINDS and len(chosen) > 1)
        if on_token:
            on_token(draft.text)
        return draft

    def _too_far_across_languages(
        self,
        question: str,
        passages: Sequence[Passage],
        stored: Sequence[Sequence[SpanVector]] | None,
        best: ScoredSentence,
    ) -> bool:
        """Whether the best sentence is in another language than the question and no sentence or
        clause of the passages in that language comes up to the bar for it. Across languages the
        score is the cosine plus small bonuses, and with a multilingual model an unanswerable
        question's best sentence scores nearly as high as an answerable one's: the raw cosine, on
        a bar of its own, tells them apart a little (bench/RESULTS.md, "Declining across
        languages")."""
        language = passages[best.passage].language
        bar = self.cross_language_bars.get(language, self.cross_language_bars.get(ANY_LANGUAGE))
        if bar is None or not _crosses(detect_language(question), language):
            return False
        units = stored if stored is not None else self._embed_units(passages)
        q_vec = np.asarray(self.embedder.embed_query(question), dtype=np.float32)
        cosines = [
            float(vector.astype(np.float32) @ q_vec)
            for passage, spans in zip(passages, units, strict=True)
            if passage.language == language
            for _, _, _, vector in spans
        ]
        return max(cosines, default=0.0) < bar

    def best_sentences(self, question: str, passages: Sequence[Passage], n: int) -> list[ScoredSentence]:
        """The n whole sentences of the passages that match the question best (no threshold)."""
        stored = self.sentence_vectors(passages) if self.sentence_vectors is not None else None
        found: list[ScoredSentence] = []
        for s in wholes(
            self._ranked(focus(question) or question, passages, stored, "factoid", question), passages
        ):
            if len(found) >= n:
                break
            if not any(same_sentence(s, c) for c in found):
                found.append(s)
        return found

    def _ranked(
        self,
        asked: str,
        passages: Sequence[Passage],
        stored: Sequence[Sequence[SpanVector]] | None,
        kind: str,
        question: str,
    ) -> list[ScoredSentence]:
        """The sentences that can answer (of the type the question asks for), best first; for
        a why-question, those that give a reason count a little more; for a list, those that
        name an item of what it enumerates."""
        scored = [
            s
            for s in self.score(asked, passages, stored)
            if fits_type(question, s.text) and text_length(s.text) >= MIN_WORDS
        ]
        if kind == "why":
            scored = [
                replace(s, score=s.score + REASON_BONUS) if REASON.search(s.text) else s for s in scored
            ]
        elif kind == "list":
            # A list's items are instances of what it enumerates ("A third method ... is
            # kidnapping") and usually names ("Operation Fox Hunt", "Darwin").
            head = set(terms(head_noun(question) or ""))
            scored = [replace(s, score=s.score + item_bonus(s.text, head)) for s in scored]
        scored.sort(key=lambda s: s.score, reverse=True)
        return scored


# Within a document the question names by its title, what is left of the question must still
# match a sentence this well (a share of the threshold: the title's words no longer count).
_NARROWED_SHARE = 0.5


def _crosses(asker: str, language: str) -> bool:
    """Whether a question in `asker`'s language and a passage in `language` are in two
    languages told apart by their scripts (they then share no terms)."""
    return asker in _SCRIPT_LANGUAGES and language in _SCRIPT_LANGUAGES and asker != language


@lru_cache(maxsize=65536)
def _matches(question_terms: frozenset[str], sentence_terms: frozenset[str]) -> dict[str, float]:
    """Each question term found in the sentence: 1 for the same stem or the stem under a prefix
    (titl/entitl), 0.6 for a related form (one stem inside the other, e.g. found/founder).
    Cached (do not change the result): a question scores the same sentences several times."""
    found: dict[str, float] = {}
    long_terms = [t for t in sentence_terms if len(t) >= 4]
    for q in question_terms:
        if q in sentence_terms or any(p + q in sentence_terms for p in _PREFIXES):
            found[q] = 1.0
        elif len(q) >= 4 and any(q in t or t in q for t in long_terms):
            found[q] = 0.6
    return found
