"""Hybrid retrieval: dense (Chroma) and keyword (BM25) candidates, fused and merged.

Only chunks committed in the manifest are ever returned, so a reader never cites a file
that is half ingested or already deleted.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import logging
import math
import os
import re
import shutil
import sys
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from bot.types import Passage
from ingest.chunking import embed_text
from ingest.manifest import Manifest
from ingest.store import VectorStore

log = logging.getLogger(__name__)
T = TypeVar("T")

_WORD = re.compile(r"\w+", re.UNICODE)
SpanVector = tuple[int, int, int, np.ndarray]  # start, end, kind (0 sentence, 1 clause), vector
STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has
    have having he her here hers herself him himself his how i if in into is it its itself just me
    more most my myself no nor not now of off on once only or other our ours ourselves out over own
    same she should so some such than that the their theirs them themselves then there these they
    this those through to too under until up very was we were what when where which while who whom
    why will with would you your yours yourself yourselves s t don
    """.split()
)


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def terms(text: str) -> list[str]:
    """Lowercased, stop-worded, stemmed word tokens: the keyword index's vocabulary."""
    words = [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]
    return _stemmer().stemWords(words) if words else []


class KeywordIndex:
    """BM25 over the committed chunks (bm25s, sparse matrices: fast at 100k chunks)."""

    def __init__(self, ids: Sequence[str], texts: Iterable[str]) -> None:
        self.ids = list(ids)
        self._bm25: Any = None
        self._df: Counter[str] = Counter()
        if self.ids:
            self._build(zip(self.ids, texts, strict=True), keep_ids=False)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str]]) -> KeywordIndex:
        """Built from a stream of (id, text), e.g. a database cursor: the collection's texts are
        never all in memory at once."""
        index = cls([], [])
        index._build(rows, keep_ids=True)
        return index

    def _build(self, rows: Iterable[tuple[str, str]], *, keep_ids: bool) -> None:
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets itself to DEBUG on import
        # Terms become small integers as they are read, packed 4 bytes each: a list of str per
        # chunk would hold millions of string objects at 100k chunks (~250 MB of RSS that stays
        # after the build), a list of int 8 bytes a token.
        vocab: dict[str, int] = {}
        corpus: list[array[int]] = []
        df: Counter[int] = Counter()
        for chunk_id, text in rows:
            if keep_ids:
                self.ids.append(chunk_id)
            tokens = array("I", [vocab.setdefault(t, len(vocab)) for t in terms(text) or ["\u2205"]])
            corpus.append(tokens)
            df.update(set(tokens))
        if not corpus:
            return
        words = list(vocab)
        self._df = Counter({words[i]: n for i, n in df.items()})
        self._bm25 = bm25s.BM25(k1=1.2, b=0.75)
        self._bm25.index((corpus, vocab), show_progress=False)
        self._vocab = self._bm25.vocab_dict

    def save(self, folder: Path) -> None:
        """Write the index to `folder` atomically (readers may race to write it)."""
        if self._bm25 is None:
            return
        tmp = folder.with_name(f"{folder.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        self._write(tmp)
        try:
            os.replace(tmp, folder)
        except OSError:  # another reader saved it first
            shutil.rmtree(tmp, ignore_errors=True)

    def _write(self, folder: Path) -> None:
        self._bm25.save(str(folder), show_progress=False)
        (folder / "ids.json").write_text(json.dumps(self.ids), encoding="utf-8")
        (folder / "df.json").write_text(json.dumps(self._df), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> KeywordIndex:
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)
        index = cls([], [])
        index._bm25 = bm25s.BM25.load(str(folder), load_vocab=True, show_progress=False)
        index.ids = json.loads((folder / "ids.json").read_text(encoding="utf-8"))
        index._df = Counter(json.loads((folder / "df.json").read_text(encoding="utf-8")))
        index._vocab = index._bm25.vocab_dict
        return index

    def idf(self, term: str) -> float:
        """Smoothed inverse document frequency; unseen terms weigh the most."""
        n = len(self.ids)
        df = self._df.get(term, 0)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def search(self, query: str, n: int, within: np.ndarray | None = None) -> list[tuple[str, float]]:
        """Best `n` ids for the query; `within` restricts the search to these row numbers."""
        if self._bm25 is None:
            return []
        tokens = [t for t in terms(query) if t in self._vocab]
        if not tokens:
            return []
        scores = self._bm25.get_scores(tokens)
        if within is not None:
            masked = np.zeros_like(scores)
            masked[within] = scores[within]
            scores = masked
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top])]
        return [(self.ids[i], float(scores[i])) for i in top if scores[i] > 0]


# Document level (measured in docs/evaluation.md): BM25 over each document's whole text.
_TOP_DOCUMENTS = 5  # the best documents, whose chunks get rankings of their own
# A question that names a company, a product or a file singles out a few documents: their
# scores stand this far (relative to the best) above the next. Their chunks then get a bonus of
# _NAMED_BONUS times that gap (the fused score of a top chunk is about 0.025).
_NAMED_GAP = 0.25
_EXACT_WITHIN = 400  # up to this many chunks in the best documents, their vectors are compared exactly
_NAMED_BONUS = 0.05


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


def _file_words(source: str) -> str:
    """'2023 Q3 AAPL.pdf' -> '2023 Q3 AAPL': file names often say what a document is."""
    return re.sub(r"[_\-.]+", " ", Path(source).stem)


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
        cache_dir: Path | None = None,
        evidence: Callable[[str, Sequence[Passage]], Sequence[float]] | None = None,
        context_chunks: int = 0,
    ) -> None:
        self.manifest = manifest
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
            source_of = dict(self.manifest.db.execute("SELECT id, source FROM chunks").fetchall())
            self._keyword, self._documents = self._keyword_index(generation, len(source_of))
            by_source: dict[str, list[int]] = {}
            for n, chunk_id in enumerate(self._keyword.ids):
                source = source_of.get(chunk_id)
                if source is not None:
                    by_source.setdefault(source, []).append(n)
            self._rows_of = {source: np.array(ns) for source, ns in by_source.items()}
            _return_freed_memory()
            self._generation = generation
            log.info("keyword index: %d chunks in %.2f s", len(source_of), time.perf_counter() - started)

    def _keyword_index(self, generation: int, count: int) -> tuple[KeywordIndex, KeywordIndex]:
        """Load the BM25 indexes (chunks, documents) saved for this generation of the manifest,
        or build and save them: a new process then starts without re-tokenising everything."""
        folder = self.cache_dir / f"bm25-{generation}" if self.cache_dir else None
        index = _load_index(folder, count)
        if index is None:
            cursor = self.manifest.db.execute("SELECT id, title, section, text FROM chunks")
            index = KeywordIndex.from_rows((r[0], embed_text(r[1], r[2], r[3])) for r in cursor)
            if folder is not None:
                _save_index(index, folder)
                for old in folder.parent.glob("bm25-*"):
                    if old.name != folder.name and not old.name.endswith(".tmp"):
                        shutil.rmtree(old, ignore_errors=True)
        documents = KeywordIndex([], [])
        if self.document_weight > 0:
            where = folder / "documents" if folder is not None else None
            loaded = _load_index(where, None)
            if loaded is not None:
                documents = loaded
            else:
                # One entry per document: its file name ("2023 Q3 AAPL.pdf" says what it is),
                # title and whole text. Committed files only, like the chunks.
                files = self.manifest.db.execute("SELECT source, title, text FROM files")
                documents = KeywordIndex.from_rows(
                    (f[0], f"{_file_words(f[0])} {f[1]}\n{f[2]}") for f in files
                )
                if where is not None and folder is not None and folder.exists():
                    _save_index(documents, where)
        return index, documents

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
        for chunk_id, row in rows.items():
            if row["source"] in named:
                fused[chunk_id] += self.named_bonus * gap
        ranked = sorted((i for i in fused if i in rows), key=fused.__getitem__, reverse=True)
        ranked = self._diversify(ranked, rows, fused)
        passages = _merge([(rows[i], fused[i]) for i in ranked], k)
        if self.context_chunks > 0:
            passages = [self._widen(p, rows) for p in passages]
        located = [self.locate(p) for p in passages]
        if by_evidence and self.evidence is not None and len(located) > 1:
            # Best evidence first: the passage holding the sentence that answers the question
            # best leads (ties keep the retrieval order).
            scores = self.evidence(query, located)
            order = sorted(range(len(located)), key=lambda i: -scores[i])
            located = [located[i] for i in order]
        t4 = time.perf_counter()

        timings.embed += (t1 - t0) * 1000
        timings.dense += (t2 - t1) * 1000
        timings.keyword += (t3 - t2) * 1000
        timings.fusion += (t4 - t3) * 1000
        return located

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
        """The passage with its human-readable location (page, section, lines); `text` is its
        source's text when the caller has already read it."""
        text = (self.manifest.file_text(passage.source) or "") if text is None else text
        first = text.count("\n", 0, passage.start) + 1
        last = first + text.count("\n", passage.start, passage.end)
        parts = []
        if passage.page is not None:
            parts.append(f"p. {passage.page}")
        if passage.section:
            parts.append(f"§ {passage.section}")
        parts.append(f"line {first}" if first == last else f"lines {first}-{last}")
        # Chunks are exact spans of the source text, so a merged passage is one slice of it.
        body = text[passage.start : passage.end] if len(passage.chunk_ids) > 1 and text else passage.text
        return Passage(**{**passage.__dict__, "text": body, "location": ", ".join(parts)})


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
    )


def _join(p: Passage, row: Any) -> Passage:
    start, end = min(p.start, row["start"]), max(p.end, row["end"])
    return Passage(**{**p.__dict__, "start": start, "end": end, "chunk_ids": (*p.chunk_ids, row["id"])})


def _return_freed_memory() -> None:
    """Hand the memory an index build freed back to the system. glibc keeps freed heap pages
    (here ~100 MB at 100k chunks: the token lists of the build) unless asked to trim them."""
    gc.collect()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # not glibc (e.g. musl): nothing to trim
            ctypes.CDLL("libc.so.6").malloc_trim(0)


def _load_index(folder: Path | None, count: int | None) -> KeywordIndex | None:
    """A saved index (with `count` entries, when given), or None."""
    if folder is None or not folder.exists():
        return None
    try:
        index = KeywordIndex.load(folder)
    except Exception:
        log.warning("keyword index cache in %s is unreadable; rebuilding", folder, exc_info=True)
        return None
    return index if count is None or len(index.ids) == count else None


def _save_index(index: KeywordIndex, folder: Path) -> None:
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        index.save(folder)
    except PermissionError as err:
        # A read-only DOSSIER_HOME: the index is rebuilt in memory by each reader instead.
        log.info("not saving the keyword index to %s: %s", folder, err)
    except OSError:
        log.warning("could not save the keyword index to %s", folder, exc_info=True)


class DossierRetriever(BaseRetriever):
    """The hybrid retriever as a LangChain retriever (for chains and agents)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    hybrid: Any
    k: int = 5

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [
            Document(
                page_content=p.text,
                metadata={"source": p.source, "location": p.location, "score": p.score, "id": p.id},
            )
            for p in self.hybrid.retrieve(query, self.k)
        ]


def passages_by_source(passages: Sequence[Passage]) -> list[str]:
    """Distinct sources in rank order."""
    seen: dict[str, None] = {}
    for p in passages:
        seen.setdefault(p.source, None)
    return list(seen)
