"""Value objects shared by the engine and its front ends. The core never formats for a medium."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from dossier_common.urls import is_url, quote_link


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk (or a merged run of neighbouring chunks) of one source."""

    id: str
    source: str
    text: str
    location: str  # human readable: "p. 3", "§ Other places", "lines 12-18"
    score: float
    title: str = ""
    page: int | None = None
    section: str = ""
    start: int = 0  # char offsets into the source's normalised text
    end: int = 0
    chunk_ids: tuple[str, ...] = ()
    language: str = ""  # of its (first) chunk: index.languages.detect_language codes

    def brief(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "location": self.location,
            "text": self.text,
            "score": round(self.score, 4),
        }


@dataclass(frozen=True)
class Citation:
    n: int
    source: str
    location: str
    quote: str
    passage_id: str = ""
    # The sentences the answer uses, as offsets into `quote` (empty: all of it); what a shown
    # excerpt of a long quote is centred on.
    spans: tuple[tuple[int, int], ...] = ()

    @property
    def link(self) -> str:
        """For a source ingested from a URL, that URL with a text fragment on the quote (a
        click lands on it); "" for files."""
        return quote_link(self.source, self.quote) if is_url(self.source) else ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "n": self.n,
            "source": self.source,
            "location": self.location,
            "quote": self.quote,
        }
        if self.link:
            out["link"] = self.link
        return out


@dataclass(frozen=True)
class Turn:
    """One earlier exchange of a conversation."""

    question: str
    answer: str = ""


@dataclass(frozen=True)
class Answer:
    question: str
    text: str  # with [n] markers that refer to `citations`
    citations: tuple[Citation, ...]
    abstained: bool
    retrieved: tuple[Passage, ...]
    timings_ms: dict[str, float] = field(default_factory=dict)
    standalone_question: str = ""
    note: str = ""  # e.g. "The language model failed (timeout); showing the extractive answer."
    answerer: str = "extractive"
    kind: str = "factoid"  # what the question asks for (bot.kinds.KINDS)
    language: str = "en"  # the question's (index.languages.detect_language)
    # One line in the asker's language when the quotes are in another: "Quoted from the English source:"
    source_note: str = ""
    # The best sentence score the extractive answerer found for the question (what the
    # abstention threshold is compared with); None for overviews. Auto-answers need more of it.
    evidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The `dossier ask --json` object of DESIGN.md."""
        out: dict[str, Any] = {
            "question": self.question,
            "answer": self.text,
            "abstained": self.abstained,
            "citations": [c.to_dict() for c in self.citations],
            "retrieved": [p.brief() for p in self.retrieved],
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
            "kind": self.kind,
        }
        if self.standalone_question and self.standalone_question != self.question:
            out["standalone_question"] = self.standalone_question
        if self.note:
            out["note"] = self.note
        if self.language != "en":
            out["language"] = self.language
        if self.source_note:
            out["source_note"] = self.source_note
        out["answerer"] = self.answerer
        return out


@dataclass(frozen=True)
class DocumentInfo:
    source: str
    title: str
    chunks: int
    chars: int
    ingested_at: float


@dataclass(frozen=True)
class IndexStatus:
    home: str
    store: str  # "embedded: PATH" or the server URL
    collection: str
    model: str
    answerer: str
    documents: int
    chunks: int
    last_ingest: float | None
    vectors: int | None = None  # in the vector store; differs from chunks when it was lost
    problem: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Draft:
    """What an answerer returns: text whose [n] markers number into `citations`."""

    text: str
    citations: tuple[Citation, ...]
    abstained: bool
    note: str = ""
    evidence: float | None = None  # the best sentence score, when the answerer measures one


TokenCallback = Callable[[str], None]


class StopAnswer(Exception):
    """Raised by a TokenCallback to end an answer being written (a Stop button): the answerers
    let it through instead of falling back, and `Engine.ask` raises it to its caller."""


class Answerer(Protocol):
    """Turns a question and numbered passages (1-based, in the order given) into a Draft."""

    name: str

    def answer(
        self,
        question: str,
        passages: Sequence[Passage],
        history: Sequence[Turn] = (),
        on_token: TokenCallback | None = None,
        kind: str = "factoid",
        narrowed: str = "",
    ) -> Draft: ...
