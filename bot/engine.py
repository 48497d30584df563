"""The engine: one object that the CLI, the chat and the Discord bot all drive."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.extractive import ExtractiveAnswerer
from bot.followup import standalone_question
from bot.retrieval import HybridRetriever, RetrievalTimings
from bot.types import Answer, Answerer, DocumentInfo, IndexStatus, Passage, TokenCallback, Turn
from ingest.errors import NoIndexError, QuestionError, StoreError
from ingest.manifest import Manifest, open_for_reading
from ingest.pipeline import IngestReport, ingest_paths, manifest_path
from ingest.settings import Settings
from ingest.store import VectorStore, count_vectors, describe_store, missing_vectors

log = logging.getLogger(__name__)


class Engine:
    """Answers questions over the index described by `settings`.

    Safe to call from several threads. Re-ingests made by other processes are picked up at
    the next question (no restart). The embedding model is loaded on first use.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Any = None,
        answerer: Answerer | None = None,
        chat_model: Any = None,
    ) -> None:
        self.settings = settings
        self._embedder = embedder
        self._answerer = answerer
        self._chat_model = chat_model
        self._lock = threading.RLock()
        self._manifest: Manifest | None = None
        self._retriever: HybridRetriever | None = None
        self._extractive: ExtractiveAnswerer | None = None

    # -- lazily built parts -----------------------------------------------------------------
    @property
    def embedder(self) -> Any:
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    from ingest.embedder import Embedder

                    self._embedder = Embedder.from_settings(self.settings)
        return self._embedder

    def _open(self) -> HybridRetriever:
        if self._retriever is not None:
            return self._retriever
        path = manifest_path(self.settings)
        if not path.exists():
            raise NoIndexError()
        with self._lock:
            if self._retriever is None:
                self._manifest = open_for_reading(path)
                if self._manifest.chunk_count() == 0:
                    self._manifest.close()
                    self._manifest = None
                    raise NoIndexError()
                embedder = self.embedder
                store = VectorStore(
                    self.settings, model=embedder.name, dimension=embedder.dimension, create=False
                )
                if not store.exists or store.count() == 0:
                    documents = len(self._manifest.files())
                    self._manifest.close()
                    self._manifest = None
                    raise missing_vectors(self.settings, documents)
                retriever = HybridRetriever(
                    self._manifest,
                    store,
                    embedder,
                    document_weight=self.settings.document_weight,
                    cache_dir=self.settings.home / "keyword",
                    context_chunks=self.settings.context_chunks,
                )
                self._extractive = ExtractiveAnswerer(
                    embedder,
                    threshold=self.settings.abstain_threshold,
                    idf=lambda t: retriever.keyword.idf(t),
                    sentence_vectors=retriever.sentence_vectors,
                )
                # Retrieved passages are ordered by the evidence they hold (docs/evaluation.md).
                retriever.evidence = self._extractive.passage_scores
                self._retriever = retriever
        return self._retriever

    @property
    def answerer(self) -> Answerer:
        self._open()
        assert self._extractive is not None
        if self._answerer is None:
            if self.settings.llm == "extractive":
                self._answerer = self._extractive
            else:
                from bot.llm import LLMAnswerer

                self._answerer = LLMAnswerer(self.chat_model, self._extractive, name=self.settings.llm)
        return self._answerer

    @property
    def chat_model(self) -> Any:
        if self._chat_model is None and self.settings.llm != "extractive":
            from bot.llm import make_chat_model

            self._chat_model = make_chat_model(self.settings.llm, self.settings.llm_timeout)
        return self._chat_model

    # -- questions --------------------------------------------------------------------------
    def check_question(self, question: str) -> str:
        question = " ".join(question.split())
        if not question:
            raise QuestionError("Please ask a question: it is empty.")
        limit = self.settings.max_question_chars
        if len(question) > limit:
            raise QuestionError(
                f"That question is {len(question):,} characters long; the limit is {limit:,}. Please shorten it."
            )
        return question

    def standalone(self, question: str, history: Sequence[Turn]) -> str:
        if not history:
            return question
        if self.settings.llm != "extractive" and self.chat_model is not None:
            from bot.llm import condense_question

            return condense_question(self.chat_model, question, history)
        return standalone_question(question, history)

    def retrieve(
        self, query: str, k: int | None = None, timings: RetrievalTimings | None = None
    ) -> list[Passage]:
        return self._open().retrieve(query, k or self.settings.top_k, timings)

    def ask(
        self,
        question: str,
        history: Sequence[Turn] = (),
        *,
        k: int | None = None,
        on_token: TokenCallback | None = None,
    ) -> Answer:
        """Answer `question`; `history` holds earlier turns for follow-ups.

        Raises QuestionError (empty or too long) and NoIndexError (nothing ingested).
        """
        started = time.perf_counter()
        question = self.check_question(question)
        self._open()
        timings = RetrievalTimings()
        t0 = time.perf_counter()
        query = self.standalone(question, history)
        condense_ms = (time.perf_counter() - t0) * 1000
        passages = self.retrieve(query, k, timings)
        t1 = time.perf_counter()
        draft = self.answerer.answer(query, passages, history, on_token)
        t2 = time.perf_counter()
        ms = {
            "condense": condense_ms,
            "embed": timings.embed,
            "dense": timings.dense,
            "keyword": timings.keyword,
            "fusion": timings.fusion,
            "answer": (t2 - t1) * 1000,
            "total": (t2 - started) * 1000,
        }
        return Answer(
            question=question,
            text=draft.text,
            citations=draft.citations,
            abstained=draft.abstained,
            retrieved=tuple(passages),
            timings_ms=ms,
            standalone_question=query,
            note=draft.note,
            answerer=self.answerer.name if not draft.note else "extractive",
        )

    # -- the index --------------------------------------------------------------------------
    def status(self) -> IndexStatus:
        path = manifest_path(self.settings)
        stats: dict[str, Any] = {"documents": 0, "chunks": 0, "last_ingest": None, "model": None}
        if path.exists():
            manifest = open_for_reading(path)
            try:
                stats = manifest.stats()
            finally:
                manifest.close()
        vectors: int | None = None
        try:
            vectors = count_vectors(self.settings, stats["model"] or self.settings.embedding_model)
            lost = stats["chunks"] and not vectors
            problem = str(missing_vectors(self.settings, stats["documents"])) if lost else ""
        except StoreError as err:  # e.g. a read-only DOSSIER_HOME: the rest of the status holds
            problem = str(err)
        return IndexStatus(
            home=str(self.settings.home.resolve()),
            store=describe_store(self.settings),
            collection=self.settings.collection,
            model=stats["model"] or self.settings.embedding_model,
            answerer=self.settings.llm,
            documents=stats["documents"],
            chunks=stats["chunks"],
            last_ingest=stats["last_ingest"],
            vectors=vectors,
            problem=problem,
        )

    def documents(self) -> list[DocumentInfo]:
        path = manifest_path(self.settings)
        if not path.exists():
            return []
        manifest = open_for_reading(path)
        try:
            rows = manifest.db.execute(
                "SELECT source, title, n_chunks, length(text) AS chars, ingested_at FROM files ORDER BY source"
            ).fetchall()
        finally:
            manifest.close()
        return [
            DocumentInfo(r["source"], r["title"], r["n_chunks"], r["chars"], r["ingested_at"]) for r in rows
        ]

    def context(self, passage: Passage, chars: int = 600) -> str:
        """The passage's text with up to `chars` characters of its source before and after."""
        self._open()
        assert self._manifest is not None
        text = self._manifest.file_text(passage.source)
        if text is None:
            return passage.text
        start = max(0, passage.start - chars)
        end = min(len(text), passage.end + chars)
        # Widen to whole lines so the context does not start mid-word.
        start = text.rfind("\n", 0, start) + 1 if start > 0 else 0
        nl = text.find("\n", end)
        end = len(text) if nl == -1 else nl
        return text[start:end]

    def ingest(
        self,
        paths: Sequence[Path],
        *,
        full: bool = False,
        progress: bool | None = False,
        lock_wait: float = 0,
    ) -> IngestReport:
        """Incremental ingest under the writer lock; the next question sees the result."""
        return ingest_paths(
            paths, self.settings, self.embedder, full=full, progress=progress, lock_wait=lock_wait
        )

    def warm(self) -> None:
        """Do now what the first question would: load the model, open the index and its keyword
        side. The Discord bot calls it before connecting, so its first questions neither wait
        for it nor hold up the event loop while torch is imported in a worker thread."""
        try:
            retriever = self._open()
        except NoIndexError:
            self.embedder.embed_query("warm up")  # nothing indexed yet: the model at least
            return
        retriever.refresh()
        self.embedder.embed_query("warm up")

    def close(self) -> None:
        if self._manifest is not None:
            self._manifest.close()
