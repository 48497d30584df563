"""The engine: one object that the CLI, the chat and the Discord bot all drive."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.answer_language import cannot_answer, in_language, source_note
from bot.extractive import ExtractiveAnswerer
from bot.followup import standalone_question
from bot.index_status import index_status, indexed_documents
from bot.locations import OriginalLines, PageLabels
from bot.naming import CUE_TERMS, DocumentName, document_name, find_by_name
from bot.prompts import CANNOT_ANSWER
from bot.retrieval import HybridRetriever, RetrievalTimings, passage_of
from bot.scope import in_scope
from bot.summary import Overview, Summaries
from bot.types import (
    Answer,
    Answerer,
    Citation,
    DocumentInfo,
    Draft,
    IndexStatus,
    Passage,
    TokenCallback,
    Turn,
)
from bot.understanding import Understood, only_document, understand
from dossier_common.errors import NoIndexError, QuestionError
from dossier_common.settings import Settings
from index.keywords import terms
from index.languages import (
    chinese_segmentation,
    detect_language,
    has_cjk,
    segmenter_available,
)
from index.layout import Layout
from index.manifest import Manifest, open_for_reading
from index.store import VectorStore, missing_vectors
from ingest.loaders import LINE_SUFFIXES, original_lines, pdf_page_labels
from ingest.pipeline import IngestReport, Progress, ingest_paths

log = logging.getLogger(__name__)


def _overlap(a: Passage, b: Passage) -> bool:
    return a.source == b.source and a.start < b.end and b.start < a.end


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
        self._summaries: Summaries | None = None
        self._names: tuple[int, list[DocumentName]] = (-1, [])

    # -- lazily built parts -----------------------------------------------------------------
    @property
    def embedder(self) -> Any:
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    from ingest.embedder import Embedder

                    self._embedder = Embedder.from_settings(self.settings)
        return self._embedder

    def _build_parts(self) -> HybridRetriever:
        """Open the index and build, once, what reads it: the retriever, the extractive
        answerer and the document summaries. Returns the retriever."""
        if self._retriever is not None:
            return self._retriever
        path = Layout(self.settings.home).manifest
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
                # The width the index records: asking the embedder could load a model that
                # embeds documents only (OpenVINO), never needed to answer.
                width = int(self._manifest.get_meta("dimension") or 0) or embedder.dimension
                store = VectorStore(self.settings, model=embedder.name, dimension=width, create=False)
                if not store.exists:
                    raise self._vectors_missing()
                # Each needs the other: the retriever orders passages by the evidence the
                # answerer finds in them (docs/evaluation.md), and the answerer reads the
                # retriever's term weights and stored sentence vectors. The answerer is built
                # first and reaches the retriever through closures, called only after both exist.
                extractive = ExtractiveAnswerer(
                    embedder,
                    threshold=self.settings.answer_threshold,
                    cross_language_bars=self.settings.cross_language_bars,
                    idf=lambda t: retriever.keyword.idf(t),
                    sentence_vectors=lambda passages: retriever.sentence_vectors(passages),
                )
                retriever = HybridRetriever(
                    self._manifest,
                    store,
                    embedder,
                    document_weight=self.settings.document_weight,
                    cache_dir=Layout(self.settings.home).keyword_cache,
                    evidence=extractive.passage_scores,
                    context_chunks=self.settings.context_chunks,
                    line_numbers=OriginalLines(self._manifest, original_lines, LINE_SUFFIXES),
                    page_labels=PageLabels(self._manifest, pdf_page_labels),
                )
                # The keyword side before Chroma's first call (count() included), which loads
                # Chroma's whole vector index: built the other way round, the build's passing peak
                # (~250 MB at 100k chunks) stacked on that index (~200 MB) (bench/RESULTS.md).
                retriever.refresh()
                if store.count() == 0:
                    raise self._vectors_missing()
                self._extractive = extractive
                self._summaries = Summaries(self._manifest, retriever.locate)
                self._retriever = retriever
        return self._retriever

    def _vectors_missing(self) -> Exception:
        """The error for a manifest whose vector store is gone or empty; closes the manifest."""
        assert self._manifest is not None
        documents = len(self._manifest.files())
        self._manifest.close()
        self._manifest = None
        return missing_vectors(self.settings, documents)

    @property
    def retriever(self) -> HybridRetriever:
        """The retriever over the index, built (with the answerer and summaries) on first use."""
        return self._build_parts()

    @property
    def answerer(self) -> Answerer:
        self._build_parts()
        assert self._extractive is not None
        if self._answerer is None:
            if self.settings.llm == "extractive":
                self._answerer = self._extractive
            else:
                from bot.llm import LLMAnswerer

                self._answerer = LLMAnswerer(
                    self.chat_model,
                    self._extractive,
                    name=self.settings.llm,
                    deadline=self.settings.llm_timeout,
                    max_answer_chars=self.settings.llm_max_answer_chars,
                )
        return self._answerer

    @property
    def chat_model(self) -> Any:
        if self._chat_model is None and self.settings.llm != "extractive":
            from bot.llm_client import make_chat_model

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
            from bot.llm_client import condense_question

            return condense_question(self.chat_model, question, history, deadline=self.settings.llm_timeout)
        return standalone_question(question, history)

    def retrieve(
        self,
        query: str,
        k: int | None = None,
        timings: RetrievalTimings | None = None,
        sources: Sequence[str] | None = None,
    ) -> list[Passage]:
        return self._build_parts().retrieve(query, k or self.settings.top_k, timings, sources)

    def document_names(self) -> list[DocumentName]:
        """How each indexed document is known (file name, title, opening headings); read again
        after each re-ingest."""
        retriever = self._build_parts()
        generation = retriever.manifest.generation()
        if self._names[0] != generation:
            with chinese_segmentation(True):  # kept for the generation: never a question's pieces
                names = [document_name(*opening) for opening in retriever.manifest.openings()]
            self._names = (generation, names)
        return self._names[1]

    def understand(self, question: str) -> Understood:
        """The question's kind, the document it names (or None), and whether it asks for an
        overview of that document (or of the collection) as a whole."""
        return understand(question, self.document_names(), self._build_parts().keyword.idf)

    def ask(
        self,
        question: str,
        history: Sequence[Turn] = (),
        *,
        k: int | None = None,
        on_token: TokenCallback | None = None,
        sources: Sequence[str] | None = None,
    ) -> Answer:
        """Answer `question`; `history` holds earlier turns for follow-ups.

        `sources`: folders or globs (bot.scope) the answer must come from. Passages of other
        documents are left out before ranking, so they can never be cited; None: every document.
        Raises QuestionError (empty or too long) and NoIndexError (nothing ingested).
        """
        started = time.perf_counter()
        question = self.check_question(question)
        # Chinese words of the question (or of the turns it follows) can only match an index
        # with Chinese terms: over any other, they need no jieba (index.languages). The
        # vocabulary is scanned only when there is Chinese to segment.
        asked = [question, *(f"{t.question} {t.answer}" for t in history)]
        segment = not any(map(has_cjk, asked)) or self._build_parts().has_han_terms()
        with chinese_segmentation(segment):
            return self._ask(question, history, k=k, on_token=on_token, sources=sources, started=started)

    def _ask(
        self,
        question: str,
        history: Sequence[Turn],
        *,
        k: int | None,
        on_token: TokenCallback | None,
        sources: Sequence[str] | None,
        started: float,
    ) -> Answer:
        language = detect_language(question)
        on_token = in_language(on_token, language)
        self._build_parts()
        timings = RetrievalTimings()
        t0 = time.perf_counter()
        query = self.standalone(question, history)
        condense_ms = (time.perf_counter() - t0) * 1000
        kind, named, whole, narrowed = self.understand(query)
        allowed = self.in_scope(sources) if sources is not None else None
        if allowed is not None and named is not None and named not in allowed:
            named, narrowed = None, ""  # a document outside the scope is not there to name
        t1 = time.perf_counter()
        evidence: float | None = None
        if whole and allowed == []:
            passages, draft = [], Draft(text=CANNOT_ANSWER, citations=(), abstained=True)
        elif whole:
            overview = self.overview(named, query, within=allowed)
            summarize = getattr(self.answerer, "summarize", None)
            if summarize is not None:  # a language model writes it from the document itself
                overview = summarize(query, self.document_passages(named, within=allowed), overview, on_token)
            elif on_token:
                on_token(overview.draft.text)
            passages, draft = list(overview.passages), overview.draft
        else:
            within = [named] if named else allowed
            passages = self.retrieve(query, k, timings, within)
            if kind not in ("factoid", "yesno"):
                # Lists, comparisons and explanations read twice as much; the best k passages
                # stay first, as a factoid would see them.
                more = self._build_parts().retrieve(
                    query, 2 * (k or self.settings.top_k), timings, within, by_evidence=False
                )
                passages += [p for p in more if not any(_overlap(p, q) for q in passages)]
            if kind == "list" and named:
                # A list in a named document reads all of it: its items may be anywhere.
                rest = self.document_passages(named)
                passages += [p for p in rest if not any(_overlap(p, q) for q in passages)]
            t1 = time.perf_counter()
            draft = self.answerer.answer(query, passages, history, on_token, kind=kind, narrowed=narrowed)
            evidence = draft.evidence
            if evidence is None and self._extractive is not None:  # a language model's answer
                evidence = self._extractive.evidence(query, passages, kind)
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
        # The answer speaks the asker's language where it is not quoting: the abstention, and a
        # line when the quotes are in another language.
        text = cannot_answer(language) if draft.abstained and language != "en" else draft.text
        citations = self.located(draft.citations, passages)
        return Answer(
            question=question,
            text=text,
            citations=citations,
            abstained=draft.abstained,
            retrieved=tuple(passages),
            timings_ms=ms,
            standalone_question=query,
            note=draft.note,
            answerer=self.answerer.name if not draft.note else "extractive",
            kind=kind,
            language=language,
            source_note="" if draft.abstained else source_note(language, citations, passages),
            evidence=evidence,
        )

    def in_scope(self, patterns: Sequence[str]) -> list[str]:
        """The indexed sources that the folders or globs `patterns` take (bot.scope)."""
        return in_scope(patterns, self.source_paths(), self.settings.documents_dir)

    def located(self, citations: Sequence[Citation], passages: Sequence[Passage]) -> tuple[Citation, ...]:
        """Each citation located at its quote (the lines, page and heading that hold it), the
        one location every front end shows."""
        return self._build_parts().locations.located(citations, passages)

    # -- overviews --------------------------------------------------------------------------
    def overview(
        self, source: str | None, question: str = "", *, within: Sequence[str] | None = None
    ) -> Overview:
        """A document's brief as cited bullets, or (source None) one cited line per document
        (of `within` only, when given), those that match the question best first."""
        retriever = self._build_parts()
        assert self._summaries is not None
        source = source or self._only_document(within)
        if source is not None:
            return self._summaries.document(source, self._matching(question, source))
        rows = [r for r in retriever.manifest.documents() if within is None or r["source"] in within]
        ranked = retriever.rank_documents(question, len(rows)) if question else []
        ranked = [s for s in ranked if within is None or s in within]
        ranked += [r["source"] for r in sorted(rows, key=lambda r: -r["chars"]) if r["source"] not in ranked]
        return self._summaries.collection(ranked)

    def document_passages(self, source: str | None, *, within: Sequence[str] | None = None) -> list[Passage]:
        """Every chunk of the document, in order, as located passages (with None, or a
        collection of one document: the collection's one-line-per-document passages, of
        `within` only when given)."""
        source = source or self._only_document(within)
        if source is None:
            return list(self.overview(None, within=within).passages)
        retriever = self._build_parts()
        text = retriever.manifest.file_text(source) or ""  # read once, not once per chunk
        return [retriever.locate(passage_of(row), text) for row in retriever.manifest.chunks_of(source)]

    def _only_document(self, within: Sequence[str] | None = None) -> str | None:
        if within is not None:
            return within[0] if len(within) == 1 else None
        return only_document(self.document_names())

    def _matching(self, question: str, source: str, n: int = 3) -> list[tuple[int, int]]:
        """The document's sentences (offsets into its text) that best match what an overview
        question says about it ("the essay about keeping your identity small"): often its
        thesis. None when the question says nothing beyond asking for an overview."""
        if len(set(terms(question)) - CUE_TERMS) < 2:
            return []
        assert self._extractive is not None
        passages = self.retrieve(question, self.settings.top_k, sources=[source])
        found = self._extractive.best_sentences(question, passages, n)
        return [(passages[s.passage].start + s.start, passages[s.passage].start + s.end) for s in found]

    def summary(self, document: str | None = None) -> Answer:
        """`dossier summary [DOC]`: the brief of the document named DOC (a file name, a title,
        or words of either), or one line per document."""
        started = time.perf_counter()
        source = self.find_document(document) if document else None
        overview = self.overview(source)
        draft = overview.draft
        return Answer(
            question=f"Summarize {source}." if source else "Summarize the documents.",
            text=draft.text,
            citations=self.located(draft.citations, overview.passages),
            abstained=draft.abstained,
            retrieved=overview.passages,
            timings_ms={"total": (time.perf_counter() - started) * 1000},
            note=draft.note,
            kind="overview",
        )

    def find_document(self, name: str) -> str:
        """The source a user means by `name`: the source itself, its file name, or a
        description that matches one document's name clearly."""
        found = find_by_name(name, self.document_names(), self._build_parts().keyword.idf)
        if found is None:
            raise QuestionError(
                f"No indexed document matches {name.strip()!r}; `dossier summary` lists them all."
            )
        return found

    # -- the index --------------------------------------------------------------------------
    def period_of(self, source: str) -> str:
        """The period a document states it covers ("Q3 2023, quarter ended 2023-07-01"), or ""."""
        period = self._build_parts().periods().get(source)
        return period.describe() if period else ""

    def status(self) -> IndexStatus:
        return index_status(self.settings)

    def source_paths(self) -> dict[str, Path]:
        """Where each indexed source's file is on disk."""
        return {s: Path(r.path) for s, r in self._build_parts().manifest.files().items()}

    def documents(self) -> list[DocumentInfo]:
        return indexed_documents(self.settings)

    def context(self, passage: Passage, chars: int = 600) -> str:
        """The passage's text with up to `chars` characters of its source before and after."""
        self._build_parts()
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
        progress: Progress | None = None,
        lock_wait: float = 0,
    ) -> IngestReport:
        """Incremental ingest under the writer lock; the next question sees the result."""
        return ingest_paths(
            paths, self.settings, self.embedder, full=full, progress=progress, lock_wait=lock_wait
        )

    def warm(self) -> None:
        """Do now what the first question would: load the model, open the index and its keyword
        side. The Discord bot calls it before connecting, so its first questions neither wait
        for it nor hold up the event loop while torch is imported in a worker thread. Chinese
        segmentation (jieba's dictionary: 0.5-1 s, ~70 MiB) is loaded too when the index has
        Chinese terms; without them no question needs it (index.languages)."""
        try:
            retriever = self._build_parts()
        except NoIndexError:
            self.embedder.embed_query("warm up")  # nothing indexed yet: the model at least
            return
        retriever.refresh()
        if retriever.has_han_terms():
            segmenter_available()
        self.embedder.embed_query("warm up")

    def close(self) -> None:
        if self._manifest is not None:
            self._manifest.close()
