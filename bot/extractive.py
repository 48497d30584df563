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
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np

from bot.kinds import DOCUMENT_NOUNS, core, focus, head_noun, head_phrase, parts
from bot.naming import CUE_TERMS
from bot.prompts import CANNOT_ANSWER
from bot.retrieval import SpanVector, terms
from bot.types import Citation, Draft, Passage, TokenCallback, Turn
from ingest.chunking import sentence_spans
from ingest.sentences import glued_heading_length, split_sentences

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
    matched: frozenset[str] = frozenset()  # the question terms it holds
    previous: tuple[int, int] | None = None  # the sentence before it in the passage
    cut: bool = False  # an overlong sentence quoted only up to its best clause


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
        q_terms = frozenset(terms(question))
        weights = {t: self.idf(t) for t in q_terms}
        total = sum(weights.values()) or 1.0
        numeric = bool(_NUMERIC_Q.search(question))
        naming = bool(_NAME_Q.search(question))
        scored = []
        for i, (passage, spans) in enumerate(zip(passages, units, strict=True)):
            previous = ""
            previous_span: tuple[int, int] | None = None
            sentences = [(a, b, v) for a, b, kind, v in spans if kind == 0]
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
                own = _matches(q_terms, _terms_of(text))
                # What the previous sentence names ("Safeguard Defenders published a report.
                # The paper, entitled ...") half counts: a cheap stand-in for coreference.
                context = _matches(q_terms, _terms_of(previous)) if previous else {}
                before = previous_span
                previous, previous_span = text, (quoted, b)
                overlap = (
                    sum(weights[t] * max(own.get(t, 0.0), 0.5 * context.get(t, 0.0)) for t in q_terms) / total
                )
                score = self.semantic_weight * cos + (1 - self.semantic_weight) * overlap
                # Captions and fragments ("(Courtesy of X)") match names but say little.
                score *= min(1.0, len(text.split()) / 8)
                if (numeric and _HAS_NUMBER.search(text)) or (naming and _HAS_QUOTED.search(text)):
                    score += 0.05
                score -= 0.01 * i  # a slight preference for the better-ranked passage
                held = frozenset(t for t in q_terms if own.get(t, 0.0) >= 0.6)
                scored.append(
                    ScoredSentence(i, quoted, b, passage.text[quoted:b], score, clause, held, before)
                )
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
        kind: str = "factoid",
        narrowed: str = "",
    ) -> Draft:
        """`narrowed`: the question without the title of the one document it names (the
        passages all come from it, so the title's words match everywhere). The whole question
        decides whether the documents answer; the narrowed one which sentences do."""
        stored = self.sentence_vectors(passages) if self.sentence_vectors is not None else None
        asked = focus(question) or question
        scored = self._ranked(asked, passages, stored, kind, question)
        # Below `bar` no sentence is quoted: the threshold, unless the whole question cleared it
        # and the narrowed one picks the sentences (their scores are then only compared).
        bar = self.threshold
        if _ASKS_AUTHOR.search(core(question)):
            # Who wrote the document is said by its byline, whatever the words of the question.
            bylines = [s for s in scored if _AUTHORSHIP.search(s.text)]
            scored, bar = (bylines, 0.0) if bylines else (scored, bar)
        elif scored and scored[0].score >= self.threshold and narrowed:
            asked = focus(narrowed) or narrowed
            scored = self._ranked(asked, passages, stored, kind, question)
            bar = self.threshold * _NARROWED_SHARE
        if not scored or scored[0].score < bar or not _names_its_items(question, kind, passages, self.idf):
            if on_token:
                on_token(CANNOT_ANSWER)
            return Draft(text=CANNOT_ANSWER, citations=(), abstained=True)
        whole = _wholes(scored, passages)
        if not whole:  # nothing that clears the bar can be quoted as a sentence
            chosen = []
        elif kind == "factoid":
            chosen = self._select_factoid(whole, bar)
        else:
            # Each side of a comparison, each half of a two-part question: its own best sentence.
            # A side the best sentence already answers ("..., and in how many countries?") is
            # left alone.
            best_terms = _terms_of(whole[0].text) if whole else frozenset()
            pending = [
                p for p in parts(question, kind) if not set(terms(focus(p))) - _ASKING_TERMS <= best_terms
            ]
            ranked_sides = (self._ranked(p, passages, stored, kind, question) for p in pending)
            sides = [side[0] for side in (_wholes(r, passages) for r in ranked_sides) if side]
            if kind in ("why", "how", "compare"):
                # The explanation usually follows the sentence that states the matter; a
                # comparison's sides are described after they are named.
                if kind in ("why", "how"):
                    # A question the text asks itself among the best three is the best anchor:
                    # its answer follows it.
                    asks = [i for i, s in enumerate(whole[:3]) if _ASKS_ITSELF.search(s.text)]
                    if asks:
                        whole.insert(0, whole.pop(asks[0]))
                whole[:2] = [_read_on(s, passages[s.passage].text, 2) for s in whole[:2]]
                sides = [_read_on(s, passages[s.passage].text, 2) for s in sides]
            chosen = self._select_covering(whole, asked, kind, bar, sides)
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
        chosen = [_shorten(s, passages[s.passage].text) for s in chosen]
        draft = render(chosen, passages, bullets=kind in BULLET_KINDS and len(chosen) > 1)
        if on_token:
            on_token(draft.text)
        return draft

    def best_sentences(self, question: str, passages: Sequence[Passage], n: int) -> list[ScoredSentence]:
        """The n whole sentences of the passages that match the question best (no threshold)."""
        stored = self.sentence_vectors(passages) if self.sentence_vectors is not None else None
        found: list[ScoredSentence] = []
        for s in _wholes(
            self._ranked(focus(question) or question, passages, stored, "factoid", question), passages
        ):
            if len(found) >= n:
                break
            if not any(_same(s, c) for c in found):
                found.append(s)
        return found

    def _select_factoid(self, scored: list[ScoredSentence], bar: float) -> list[ScoredSentence]:
        """The best sentence, and up to two more that score nearly as well."""
        best = scored[0].score
        chosen = [scored[0]]
        length = len(scored[0].text)
        for s in scored[1:]:
            margin = _SECOND_MARGIN if len(chosen) == 1 else _THIRD_MARGIN
            if len(chosen) >= _MAX_SENTENCES or s.score < max(bar, best - margin):
                continue
            if (
                len(s.text.split()) < 6
                or length + len(s.text) > _MAX_CHARS
                or any(_same(s, c) for c in chosen)
            ):
                continue
            chosen.append(s)
            length += len(s.text)
        return chosen

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
            if _fits_type(question, s.text) and len(s.text.split()) >= _MIN_WORDS
        ]
        if kind == "why":
            scored = [
                replace(s, score=s.score + _REASON_BONUS) if _REASON.search(s.text) else s for s in scored
            ]
        elif kind == "list":
            # A list's items are instances of what it enumerates ("A third method ... is
            # kidnapping") and usually names ("Operation Fox Hunt", "Darwin").
            head = set(terms(head_noun(question) or ""))
            scored = [replace(s, score=s.score + _item_bonus(s.text, head)) for s in scored]
        scored.sort(key=lambda s: s.score, reverse=True)
        return scored

    def _select_covering(
        self,
        scored: list[ScoredSentence],
        question: str,
        kind: str,
        bar: float,
        sides: Sequence[ScoredSentence] = (),
    ) -> list[ScoredSentence]:
        """A set of sentences that together cover the question: after the best one, each
        further sentence either holds question terms the chosen ones do not (the other side
        of a comparison, the second half of a two-part question) or, for a list, scores close
        to the best (another item). Repeats are dropped."""
        limit, margin = _KIND_LIMITS[kind]
        weights = {t: self.idf(t) for t in set(terms(question)) - _ASKING_TERMS}
        total = sum(weights.values()) or 1.0
        best = scored[0].score
        floor = max(bar, best - margin)
        chosen = [scored[0]]
        covered = set(scored[0].matched)
        length = len(scored[0].text)
        budget = _KIND_SENTENCES.get(kind, 99) - _sentences(scored[0])
        for s in sides:
            if (
                s.score >= bar * _SIDE_SHARE
                and not any(_same(s, c) for c in chosen)
                and _sentences(s) <= budget
            ):
                chosen.append(s)
                covered |= s.matched
                length += len(s.text)
                budget -= _sentences(s)
        # A list's items may score well below the sentence that announces them ("three causes
        # of damage"): any sentence naming an instance of what it enumerates qualifies.
        head = set(terms(head_noun(question) or "")) if kind == "list" else set()
        for s in scored[1:]:
            if len(chosen) >= limit or s.score < bar:
                break
            if budget >= 1 and _sentences(s) > budget:  # a read-on unit keeps what fits
                s = _first_sentences(s, budget)
            if s.score < floor and not (head and head & set(terms(s.text))):
                continue
            if (
                len(s.text.split()) < 6
                or any(_same(s, c) for c in chosen)
                or length + len(s.text) > _KIND_CHARS.get(kind, 1400)
                or _sentences(s) > budget
            ):
                continue
            gain = sum(weights.get(t, 0.0) for t in s.matched - covered) / total
            if (
                kind in ("list", "overview", "compare")
                or gain >= _MIN_GAIN
                or s.score >= best - _THIRD_MARGIN
            ):
                chosen.append(s)
                covered |= s.matched
                length += len(s.text)
                budget -= _sentences(s)
        return chosen


BULLET_KINDS = frozenset({"list", "overview"})
# A sentence that gives a reason answers a why-question better than one that only shares its words.
_REASON = re.compile(
    r"\b(because|since|reason|why|so that|due to|as a result|therefore|thus|that's why|that’s why|in order to|"
    r"caused?|leads? to|means)\b",
    re.I,
)
_REASON_BONUS = 0.05
_HEAD_BONUS = 0.08
_NAME_BONUS = 0.02  # per name, up to three
_NAMED_ITEM = re.compile(r"(?<=[\w,;:] )[A-Z][\w’'-]+|[“\"][^”\"]{2,60}[”\"]")


def _names_its_items(
    question: str, kind: str, passages: Sequence[Passage], idf: Callable[[str], float]
) -> bool:
    """Whether the passages speak at all of what the question asks for: every word of what a
    list enumerates ("Which anti-bullying programs ...": no passage says "anti": the documents
    don't say), the most specific word of the topic of an overview ("Summarize the scientific
    studies he cites": nothing "scientific")."""
    if kind == "list":
        wanted = set(terms(head_phrase(question)))
    elif kind == "overview":
        topic = set(terms(focus(question))) - CUE_TERMS
        wanted = {max(topic, key=idf)} if topic else set()
    else:
        return True
    present = set().union(*(terms(p.text) for p in passages)) if passages else set()
    return wanted <= present


def _item_bonus(sentence: str, head: set[str]) -> float:
    bonus = _HEAD_BONUS if head and head & set(terms(sentence)) else 0.0
    return bonus + _NAME_BONUS * min(3, len(_NAMED_ITEM.findall(sentence)))


# A side of a comparison is quoted when its best sentence scores at least this share of the
# threshold (it is backed by the best sentence, which cleared the threshold itself).
_SIDE_SHARE = 0.6
# Per kind: how many sentences at most, and how far below the best one a sentence may score.
_KIND_LIMITS = {
    "yesno": (2, 0.08),
    "why": (3, 0.12),
    "how": (3, 0.12),
    "compare": (4, 0.2),
    "multihop": (4, 0.15),
    "list": (8, 0.2),
    "overview": (5, 0.15),
}
_KIND_CHARS = {"list": 2000}  # the most an answer quotes (1,400 characters for other kinds)
_MIN_GAIN = 0.1
# Words of the question that ask rather than say what about: covering them adds nothing.
_ASKING_TERMS = frozenset(terms("many much long often kind kinds type types way ways"))
# At most this many sentences in all (issue 11: an explanation, a comparison or a two-part
# answer quotes up to four).
_KIND_SENTENCES = {
    "yesno": 3,
    "why": 4,
    "how": 4,
    "compare": 4,
    "multihop": 4,
}  # share of the question's (IDF-weighted) terms a further sentence must add


def render(chosen: Sequence[ScoredSentence], passages: Sequence[Passage], *, bullets: bool) -> Draft:
    """Quoted sentences with [n] markers (one per passage, numbered in order of first use);
    a passage quoted twice gets one citation whose quote spans both."""
    numbers: dict[int, int] = {}
    citations: list[Citation] = []
    lines: list[str] = []
    for s in chosen:
        p = passages[s.passage]
        if s.passage not in numbers:
            numbers[s.passage] = len(numbers) + 1
            citations.append(Citation(numbers[s.passage], p.source, p.location, s.text, p.id))
        else:  # a second quote from the same passage: widen the quote to cover both
            n = numbers[s.passage]
            old = citations[n - 1]
            lo = min(p.text.find(old.quote), s.start)
            hi = max(p.text.find(old.quote) + len(old.quote), s.end)
            citations[n - 1] = Citation(n, old.source, old.location, p.text[lo:hi], old.passage_id)
        shown = f"{_clean(s.text)} …" if s.cut else _clean(s.text)  # "…": the sentence goes on
        lines.append(f"{shown} [{numbers[s.passage]}]")
    text = "\n".join(f"- {line}" for line in lines) if bullets else " ".join(lines)
    return Draft(text=text, citations=tuple(citations), abstained=False)


# What a question asks for decides what an answer must hold: "how many" a number, "what
# percentage" a percentage, "when" a date. A sentence without one does not answer it.
_ASKS_COUNT = re.compile(r"\bhow\s+(many|much)\b", re.I)
_ASKS_PERCENT = re.compile(r"\b(what|which)\s+(percentage|percent|share|proportion|fraction)\b", re.I)
_ASKS_YEAR = re.compile(r"^(when|(in\s+)?(what|which)\s+(year|month|decade|century))\b", re.I)
_COUNT = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozens?|hundreds?|thousands?|"
    r"millions?|billions?|half|twice|several|few|many|most|all|none|no)\b",
    re.I,
)
_PERCENT = re.compile(r"%|\bper\s?cent\b|\bpercentage\b|\bhalf\b|\bquarter\b|\bthird\b", re.I)
_DATE = re.compile(
    r"\b(1[5-9]|20)\d\d\b|\b(january|february|march|april|may|june|july|august|september|october|november|"
    r"december|today|yesterday|ago|century|decade)\b",
    re.I,
)


_ASKS_ADDRESS = re.compile(r"\b(street\s+)?address\b|\bwhat\s+street\b", re.I)
_ADDRESS = re.compile(
    r"\b\d+[A-Za-z]?\s+(\w+\s+){0,3}(street|st|avenue|ave|road|rd|boulevard|blvd|drive|dr|lane|ln|way|court|"
    r"ct|place|pl|square|sq|highway|hwy|parkway|crescent|cres)\b\.?|\b(suite|unit|floor)\s+\d+",
    re.I,
)
# "Who wrote the article?" asks for a byline: the sentence that says who reported or wrote it.
_ASKS_AUTHOR = re.compile(
    rf"^who\s+(wrote|authored|reported|is\s+the\s+(author|writer|reporter)\s+of)\s+(the|this|that)\s+"
    rf"(\w+\s+)?(?:{DOCUMENT_NOUNS})\s*\??$",
    re.I,
)
_AUTHORSHIP = re.compile(
    r"\b(reporter|writer|author|correspondent|journalist|columnist|editor)\b|\b(written|reported)\s+by\b",
    re.I,
)


def _fits_type(question: str, sentence: str) -> bool:
    if _ASKS_ADDRESS.search(question):
        return bool(_ADDRESS.search(sentence))
    if _ASKS_PERCENT.search(question):
        return bool(_PERCENT.search(sentence))
    if _ASKS_COUNT.search(question):
        return bool(_COUNT.search(sentence))
    if _ASKS_YEAR.search(core(question)):
        return bool(_DATE.search(sentence))
    return True


# A sentence that leans on the one before: its subject is there ("He pointed out that his
# organization identified 22 ..."), or it continues it.
_REFERS_BACK = re.compile(r"^(He|She|It|They|This|These|That|Those|His|Her|Its|Their|Such|The latter)\b")
_OPENS = re.compile(r"^[A-Z0-9“\"‘'(\[]")
_WHOLE_CHARS = 480
_ASKS_ITSELF = re.compile(r"\?[\"”’')]*$|\?[\"”’')]*\s")
# A period followed by a comma or a lowercase word: two broken pieces of text run together
# (". , held a", "April 2021. has been used to"), common in machine translation.
_SEAM = re.compile(r"\.\s+(,|[a-z])")
_MIN_WORDS = 5
# Within a document the question names by its title, what is left of the question must still
# match a sentence this well (a share of the threshold: the title's words no longer count).
_NARROWED_SHARE = 0.5  # shorter is a heading, a byline or a caption, not an answer
_READ_ON_CHARS = 600


def _sentences(s: ScoredSentence) -> int:
    return max(1, len(split_sentences(s.text)))


def _first_sentences(s: ScoredSentence, n: int) -> ScoredSentence:
    spans = split_sentences(s.text)
    if len(spans) <= n:
        return s
    end = spans[n - 1][1]
    return ScoredSentence(
        s.passage, s.start, s.start + end, s.text[:end], s.score, None, s.matched, s.previous
    )


def _wholes(scored: Sequence[ScoredSentence], passages: Sequence[Passage]) -> list[ScoredSentence]:
    out = []
    for s in scored:
        whole = _whole(s, passages[s.passage].text)
        if whole is not None:
            # A question in the text ("What's wrong with having one founder?") is answered by
            # what follows it: quote that too.
            asks = whole.text.rstrip("”\"’')").endswith("?")
            out.append(_read_on(whole, passages[s.passage].text, 2) if asks else whole)
    return out


def _read_on(s: ScoredSentence, text: str, sentences: int) -> ScoredSentence:
    """The sentence and up to `sentences` that follow it in the same paragraph (an
    explanation follows what it explains), within _READ_ON_CHARS."""
    end = s.end
    for a, b in split_sentences(text, s.end, min(len(text), s.end + _READ_ON_CHARS))[:sentences]:
        if "\n\n" in text[end:a] or b - s.start > _READ_ON_CHARS or not _OPENS.match(text[a:b]):
            break
        end = b
    if end == s.end:
        return s
    return ScoredSentence(s.passage, s.start, end, text[s.start : end], s.score, None, s.matched, s.previous)


def _whole(s: ScoredSentence, text: str) -> ScoredSentence | None:
    """The sentence as a quote can stand: a fragment (starting in lower case or with
    punctuation: the tail of a broken sentence) is joined to the sentence before it, or
    dropped when there is none; a sentence whose subject is in the one before takes it along."""
    seam = _SEAM.search(s.text)
    if seam is not None:
        # "... April 2021. has been used to ...": quote what comes before the seam, unless what
        # the question asks about is only after it (then the whole run, which opens properly).
        head, tail = s.text[: seam.start() + 1], s.text[seam.start() + 1 :]
        if len(set(terms(head)) & s.matched) >= len(set(terms(tail)) & s.matched):
            if len(head.split()) < _MIN_WORDS:
                return None
            s = ScoredSentence(
                s.passage, s.start, s.start + len(head), head, s.score, None, s.matched, s.previous
            )
    fragment = not _OPENS.match(s.text)
    if not fragment and not _REFERS_BACK.match(s.text):
        return s
    if s.previous is None or s.end - s.previous[0] > _WHOLE_CHARS:
        return None if fragment else s
    start = s.previous[0]
    if not _OPENS.match(text[start : s.end]):
        return None if fragment else s
    return ScoredSentence(s.passage, start, s.end, text[start : s.end], s.score, None, s.matched, None)


def _shorten(s: ScoredSentence, text: str) -> ScoredSentence:
    """An overlong sentence cut to its best clause; a clause that does not open like a
    sentence keeps the sentence's own start (the quote then ends with that clause)."""
    if len(s.text) <= _MAX_CHARS or s.clause is None:
        return s
    a, b = s.clause
    if not _OPENS.match(text[a:b]):
        a = s.start
    quote = text[a:b].rstrip(" ,;:")
    return ScoredSentence(s.passage, a, a + len(quote), quote, s.score, cut=b < s.end)


def _clean(sentence: str) -> str:
    """A quoted sentence as the answer shows it: one line, without the source's footnote marks."""
    return " ".join(_FOOTNOTE.sub(" ", sentence).split())


@lru_cache(maxsize=8192)
def _terms_of(sentence: str) -> frozenset[str]:
    """A sentence's terms, kept: one question scores the same sentences several times (to
    order passages, to answer, for each side of a comparison)."""
    return frozenset(terms(sentence))


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


def _same(a: ScoredSentence, b: ScoredSentence) -> bool:
    """The same sentence seen twice (overlapping passages) or a near copy."""
    if a.text == b.text:
        return True
    ta, tb = set(a.text.lower().split()), set(b.text.lower().split())
    return len(ta & tb) / max(1, min(len(ta), len(tb))) > 0.8
