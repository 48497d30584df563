"""Hybrid retrieval: dense (Chroma) and keyword (BM25) candidates, fused and merged.

Only chunks committed in the manifest are ever returned, so a reader never cites a file
that is half ingested or already deleted.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from bot.locations import Locations
from bot.types import Citation, Passage
from index.keywords import KeywordIndex, keyword_indexes
from index.manifest import Manifest, chunk_language
from index.periods import DocumentPeriod, asked_period, matching_sources
from index.store import VectorStore

log = logging.getLogger(__name__)
T = TypeVar("T")

SpanVector = tuple[int, int, int, np.ndarray]  # start, end, kind (0 sentence, 1 clause), vector
# Document level (measured in docs/evaluation.md): BM25 over each document's whole text.
_TOP_DOCUMENTS = 5  # the best documents, whose chunks get rankings of their own
# A question that names a company, a product or a file singles out a few documents: their
# scores stand this far (relative to the best) above the next. Their chunks then get a bonus of
# _NAMED_BONUS times that gap (the fused score of a top chunk is about 0.025).
_NAMED_GAP = 0.25
_EXACT_WITHIN = 400  # up to this many chunks in the best documents, their vectors are compared exactly
_NAMED_BONUS = 0.05
# A question that names a period ("Q3 2023", "in FY2022", "the most recent 10-Q") prefers the
# documents of that period (index/periods.py): their chunks get this bonus, about the fused
# score of a top chunk, so the period decides between documents that match the question alike
# (one company's filings for several quarters) without overriding what the question is about.
_PERIOD_BONUS = 0.02


def named_documents(ranked: Sequence[tuple[str, float]], top: int = _TOP_DOCUMENTS) -> tuple[set[str], float]:
    """The documents a question singles out, and by how much: the best few when a clear gap
    (at least _NAMED_GAP of the best score) separates them from the rest, among the top `top`."""
    scores = [score for _, score in ranked[: top + 1]]
    if not scores or scores[0] <= 0:
        return set(), 0.0
    scores += [0.0] * (top + 1 - len(scores))
    gaps = [(scores[i] - scores[i + 1]) / scores[0] for i in range(top)]
    best = max(range(top), key=gaps.__getitem__)
    if gaps[best] < _NAMED_GAP:
        return set(), 0.0
    return {source for source, _ in ranked[: best + 1]}, gaps[best]


@dataclass
class RetrievalTimings:
    embed: float = 0.0
    dense: float = 0.0
    keyword: float = 0.0
    fusion: float = 0.0


class HybridRetriever:
    """Fuses dense and keyword rankings with reciprocal rank fusion, then merges overlaps."""

    def __init__(
        self,
        manifest: Manifest,
        store: VectorStore,
        embedder: Any,
        *,
        candidates: int = 40,
        rrf_k: int = 60,
        # Tuned on the PG essays (hit@5 0.84 -> 0.92, MRR 0.77 -> 0.83; see docs/evaluation.md):
        # BM25 is the stronger signal there, and several chunks of one essay crowded others out.
        dense_weight: float = 0.5,
        keyword_weight: float = 1.0,
        source_decay: float = 0.8,
        document_weight: float = 0.3,
        top_documents: int = _TOP_DOCUMENTS,
        named_bonus: float = _NAMED_BONUS,
        period_bonus: float = _PERIOD_BONUS,
        cache_dir: Path | None = None,
        evidence: Callable[[str, Sequence[Passage]], Sequence[float]] | None = None,
        context_chunks: int = 0,
        line_numbers: Callable[[str], Sequence[int] | None] | None = None,
        page_labels: Callable[[str], Sequence[str] | None] | None = None,
    ) -> None:
        self.manifest = manifest
        self.locations = Locations(manifest, line_numbers, page_labels)
        self.store = store
        self.embedder = embedder
        self.candidates = candidates
        self.rrf_k = rrf_k
        self.dense_weight = dense_weight
        self.keyword_weight = keyword_weight
        self.source_decay = source_decay
        self.document_weight = document_weight
        self.top_documents = top_documents
        self.named_bonus = named_bonus
        self.period_bonus = period_bonus
        self._periods: dict[str, DocumentPeriod] = {}
        self.cache_dir = cache_dir
        self.evidence = evidence
        self.context_chunks = context_chunks
        self._documents = KeywordIndex([], [])
        self._rows_of: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self._generation = -1
        self._keyword: KeywordIndex | None = None
        self._last_query: tuple[str, Sequence[float]] | None = None

    @property
    def keyword(self) -> KeywordIndex:
        self.refresh()
        assert self._keyword is not None
        return self._keyword

    def has_han_terms(self) -> bool:
        """Whether the indexed text (chunks, or documents' names and text) has Chinese terms:
        if not, a question's Chinese words can match nothing (index.languages)."""
        keyword = self.keyword  # refreshed: the documents' index is of the same generation
        return keyword.has_han_terms or self._documents.has_han_terms

    def refresh(self) -> None:
        """Rebuild the keyword index when another process has committed a change."""
        generation = self.manifest.generation()
        if generation == self._generation and self._keyword is not None:
            return
        with self._lock:
            if generation == self._generation and self._keyword is not None:
                return
            started = time.perf_counter()
            if self._generation != -1 and self.manifest.get_meta("writer_pid") != str(os.getpid()):
                # Another process wrote: our embedded Chroma client cannot see its vectors yet.
                self.store.reopen()
            # Ids and sources only: chunk texts are read (streamed) only when the index is built.
            source_of = self.manifest.chunk_sources()
            self._keyword, self._documents = keyword_indexes(
                self.manifest, self.cache_dir, generation, len(source_of), documents=self.document_weight > 0
            )
            by_source: dict[str, list[int]] = {}
            for n, chunk_id in enumerate(self._keyword.ids):
                source = source_of.get(chunk_id)
                if source is not None:
                    by_source.setdefault(source, []).append(n)
            self._rows_of = {source: np.array(ns) for source, ns in by_source.items()}
            self._periods = self.manifest.periods()
            self._generation = generation
            log.info("keyword index: %d chunks in %.2f s", len(source_of), time.perf_counter() - started)

    def retrieve(
        self,
        query: str,
        k: int,
        timings: RetrievalTimings | None = None,
        sources: Sequence[str] | None = None,
        *,
        by_evidence: bool = True,
    ) -> list[Passage]:
        """The best k passages for the query (of `sources` only, when given: a question that
        names a document is answered from it); `by_evidence` orders them by the evidence they
        hold (off: fusion order)."""
        timings = timings if timings is not None else RetrievalTimings()
        self.refresh()
        pool = max(self.candidates, 4 * k)
        if sources is not None:
            sources = [s for s in sources if s in self._rows_of]
            if not sources:
                return []

        t0 = time.perf_counter()
        vector = self._query_vector(query)
        t1 = time.perf_counter()
        assert self._keyword is not None
        if sources is not None:
            within = np.concatenate([self._rows_of[s] for s in sources])
            dense = self._dense_within(vector, pool, sources)
            t2 = time.perf_counter()
            keyword = self._keyword.search(query, pool, within)
        else:
            dense = self._dense(vector, pool)
            t2 = time.perf_counter()
            keyword = self._keyword.search(query, pool)
        rankings = [(self.dense_weight, dense), (self.keyword_weight, keyword)]
        # The documents whose whole text matches the question best: their chunks get rankings
        # of their own, so an answer in a chunk that does not repeat the document's subject (a
        # filing's page 30 never names the company) can still be found.
        documents = (
            self._documents.search(query, self.top_documents + 1)
            if self.document_weight > 0 and len(self._rows_of) > self.top_documents and sources is None
            else []
        )
        top_docs = [source for source, _ in documents[: self.top_documents] if source in self._rows_of]
        if top_docs:
            within = np.concatenate([self._rows_of[s] for s in top_docs])
            rankings.append((self.document_weight, self._keyword.search(query, pool, within)))
            rankings.append(
                (self.document_weight * self.dense_weight, self._dense_within(vector, pool, top_docs))
            )
        t3 = time.perf_counter()

        fused: dict[str, float] = {}
        for weight, ranking in rankings:
            for rank, (chunk_id, _) in enumerate(ranking):
                fused[chunk_id] = fused.get(chunk_id, 0.0) + weight / (self.rrf_k + rank + 1)
        # Committed chunks only: vectors of a file being ingested right now are not visible yet.
        # All candidates (a few hundred at most), so the top k does not depend on k.
        rows = {r["id"]: r for r in self.manifest.chunks(list(fused))}
        named, gap = named_documents(documents, self.top_documents)
        of_period = self.period_sources(query)
        for chunk_id, row in rows.items():
            if row["source"] in named:
                fused[chunk_id] += self.named_bonus * gap
            if row["source"] in of_period:
                fused[chunk_id] += self.period_bonus
        ranked = sorted((i for i in fused if i in rows), key=fused.__getitem__, reverse=True)
        ranked = self._diversify(ranked, rows, fused)
        passages = _merge([(rows[i], fused[i]) for i in ranked], k)
        if self.context_chunks > 0:
            passages = [self._widen(p, rows) for p in passages]
        located = self.locations.locate_all(passages)  # each source's text read once
        if by_evidence and self.evidence is not None and len(located) > 1:
            # Best evidence first: the passage holding the sentence that answers the question
            # best leads (ties keep the retrieval order).
            scores = self.evidence(query, located)
            # Passages of the period the question names lead, best evidence first within each group.
            order = sorted(
                range(len(located)), key=lambda i: (located[i].source not in of_period, -scores[i])
            )
            located = [located[i] for i in order]
        t4 = time.perf_counter()

        timings.embed += (t1 - t0) * 1000
        timings.dense += (t2 - t1) * 1000
        timings.keyword += (t3 - t2) * 1000
        timings.fusion += (t4 - t3) * 1000
        return located

    def periods(self) -> dict[str, DocumentPeriod]:
        """The period each indexed document states it covers (index/periods.py)."""
        self.refresh()
        return self._periods

    def period_sources(self, query: str) -> set[str]:
        """The documents of the period the query names (none when it names none)."""
        self.refresh()
        if self.period_bonus <= 0 or not self._periods:
            return set()
        return matching_sources(asked_period(query), self._periods)

    def _query_vector(self, query: str) -> Sequence[float]:
        """The query's embedding; the last one is kept, as one question may retrieve twice."""
        last = self._last_query
        if last is not None and last[0] == query:
            return last[1]
        vector = self.embedder.embed_query(query)
        self._last_query = (query, vector)
        return vector

    def rank_documents(self, query: str, n: int) -> list[str]:
        """Sources whose whole text matches the query (keywords), best first; empty when the
        document level is off."""
        self.refresh()
        return [source for source, _ in self._documents.search(query, n)]

    def _dense(
        self, vector: Sequence[float], n: int, sources: Sequence[str] | None = None
    ) -> list[tuple[str, float]]:
        """Chroma's nearest chunks (of `sources` only, if given)."""
        return self._ask_store(lambda: self.store.query(vector, n, sources))

    def _dense_within(
        self, vector: Sequence[float], n: int, sources: Sequence[str]
    ) -> list[tuple[str, float]]:
        """The nearest chunks of a few documents. When they hold few chunks, their vectors are
        fetched and compared exactly: at 100k chunks that takes ~2 ms where Chroma's filtered
        search takes ~60 ms."""
        rows = np.concatenate([self._rows_of[s] for s in sources])
        if len(rows) > _EXACT_WITHIN:
            return self._dense(vector, n, sources)
        assert self._keyword is not None  # _rows_of is filled with it, by refresh()
        ids = [self._keyword.ids[i] for i in rows]
        found = self._ask_store(lambda: self.store.vectors(ids))
        if not found:
            return []
        names = list(found)
        matrix = np.stack([found[i] for i in names])
        q = np.asarray(vector, dtype=np.float32)
        sims = matrix @ q / np.clip(np.linalg.norm(matrix, axis=1) * np.linalg.norm(q), 1e-12, None)
        best = np.argsort(-sims)[:n]
        return [(names[i], float(sims[i])) for i in best]

    def _ask_store(self, call: Callable[[], T]) -> T:
        """Run a store call; an embedded client can fail on a stale view while another process
        deletes vectors ("Error finding id"): it is then reopened and asked once more."""
        from chromadb.errors import ChromaError

        with self._lock:  # not while refresh() swaps the store's client
            try:
                return call()
            except ChromaError:
                log.info("vector store call failed on a stale view; reopening the store", exc_info=True)
                self.store.reopen()
                return call()

    def _diversify(self, ranked: list[str], rows: dict[str, Any], fused: dict[str, float]) -> list[str]:
        """Each further chunk of a source already ranked counts a little less, so that the top
        passages cover more documents when several compete (one document still fills the list
        when nothing else is close)."""
        if self.source_decay >= 1.0:
            return ranked
        seen: dict[str, int] = {}
        adjusted: dict[str, float] = {}
        for chunk_id in ranked:
            source = rows[chunk_id]["source"]
            adjusted[chunk_id] = fused[chunk_id] * self.source_decay ** seen.get(source, 0)
            seen[source] = seen.get(source, 0) + 1
        return sorted(ranked, key=adjusted.__getitem__, reverse=True)

    def _widen(self, passage: Passage, rows: dict[str, Any]) -> Passage:
        """The passage with `context_chunks` neighbouring chunks of its source on each side."""
        ords = [rows[cid]["ord"] for cid in passage.chunk_ids]
        lo, hi = min(ords), max(ords)
        n = self.context_chunks
        wanted = [o for o in (*range(lo - n, lo), *range(hi + 1, hi + n + 1)) if o >= 0]
        for row in self.manifest.neighbours(passage.source, wanted):
            passage = _join(passage, row)
        return passage

    def sentence_vectors(self, passages: Sequence[Passage]) -> list[list[SpanVector]] | None:
        """Stored sentence and clause vectors of each passage, offsets relative to its text;
        None when the index has none (built by an embedder without token output)."""
        ids = [cid for p in passages for cid in p.chunk_ids]
        stored = self.manifest.sentence_vectors(ids)
        if any(cid not in stored for cid in ids):
            return None
        starts = {r["id"]: r["start"] for r in self.manifest.chunks(ids)}
        if any(cid not in starts for cid in ids):  # deleted by a re-ingest since it was retrieved
            return None
        out: list[list[SpanVector]] = []
        for p in passages:
            seen: set[tuple[int, int]] = set()
            spans: list[SpanVector] = []
            for cid in p.chunk_ids:
                shift = starts[cid] - p.start
                for a, b, kind, blob in stored[cid]:
                    key = (a + shift, b + shift)
                    if key not in seen:
                        seen.add(key)
                        spans.append((a + shift, b + shift, kind, np.frombuffer(blob, dtype=np.float16)))
            out.append(sorted(spans, key=lambda s: (s[0], -s[1])))
        return out

    def locate(self, passage: Passage, text: str | None = None) -> Passage:
        """The passage with its human-readable location (bot.locations)."""
        return self.locations.locate(passage, text)

    def cite(self, citation: Citation, passage: Passage, text: str | None = None) -> Citation:
        """The citation located at its quote (bot.locations)."""
        return self.locations.cite(citation, passage, text)


def _merge(candidates: list[tuple[Any, float]], k: int) -> list[Passage]:
    """Overlapping chunks of one source become one passage, scored by its best chunk."""
    passages: list[Passage] = []
    for row, score in candidates:
        for i, p in enumerate(passages):
            if p.source == row["source"] and row["start"] < p.end and p.start < row["end"]:
                passages[i] = _join(p, row)
                break
        else:
            if len(passages) >= k:
                continue
            passages.append(passage_of(row, score))
    return passages


def passage_of(row: Any, score: float = 0.0) -> Passage:
    """A chunk row of the manifest as a passage (not yet located)."""
    return Passage(
        id=row["id"],
        source=row["source"],
        text=row["text"],
        location="",
        score=score,
        title=row["title"],
        page=row["page"],
        section=row["section"],
        start=row["start"],
        end=row["end"],
        chunk_ids=(row["id"],),
        language=chunk_language(row),
    )


def _join(p: Passage, row: Any) -> Passage:
    start, end = min(p.start, row["start"]), max(p.end, row["end"])
    return Passage(**{**p.__dict__, "start": start, "end": end, "chunk_ids": (*p.chunk_ids, row["id"])})


def passages_by_source(passages: Sequence[Passage]) -> list[str]:
    """Distinct sources in rank order."""
    seen: dict[str, None] = {}
    for p in passages:
        seen.setdefault(p.source, None)
    return list(seen)
