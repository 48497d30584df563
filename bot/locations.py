"""Citation locations: the lines of the file on disk (as an editor shows them), the page and
the section heading that hold a passage or a quote."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Generic, TypeVar

from bot.types import Citation, Passage
from index.manifest import Manifest

T = TypeVar("T")


class _ReadAgain(Generic[T]):
    """Something derived from an indexed file by reading it again while it is the one indexed
    (same SHA-256), kept per file until its size, time or record changes. Derived at answer
    time rather than stored at ingest: nothing in the index changes, so every existing index
    gets it without a migration or a re-ingest, and the cost is one read of each cited file
    per process."""

    def __init__(self, manifest: Manifest, read: Callable[[Path, str], T | None]) -> None:
        self.manifest = manifest
        self.read = read  # ingest's reader: the fact, if the file is still the one indexed
        self._records: tuple[int, dict[str, tuple[str, str]]] = (-1, {})
        self._cache: dict[str, tuple[tuple[str, str, int, int], T | None]] = {}
        self._lock = threading.Lock()

    def record(self, source: str) -> tuple[str, str] | None:
        """The indexed file's path and SHA-256."""
        generation = self.manifest.generation()
        with self._lock:
            if self._records[0] != generation:
                records = {s: (r.path, r.content_hash) for s, r in self.manifest.files().items()}
                self._records = (generation, records)
            return self._records[1].get(source)

    def read_again(self, record: tuple[str, str], source: str) -> T | None:
        try:
            info = os.stat(record[0])
        except OSError:
            return None
        key = (*record, info.st_size, info.st_mtime_ns)
        with self._lock:
            cached = self._cache.get(source)
        if cached is not None and cached[0] == key:
            return cached[1]
        fact = self.read(Path(record[0]), record[1])
        with self._lock:
            self._cache[source] = (key, fact)
        return fact


class OriginalLines(_ReadAgain[list[int]]):
    """Line numbers of indexed txt and Markdown files as an editor shows them, one per line of
    the indexed text; empty for formats that have no lines of their own (PDF, HTML, DOCX).
    None when not known (the file changed or is gone): citations then count lines of the
    indexed text, as before."""

    def __init__(
        self,
        manifest: Manifest,
        read_lines: Callable[[Path, str], list[int] | None],
        line_suffixes: frozenset[str],
    ) -> None:
        super().__init__(manifest, read_lines)
        self.line_suffixes = line_suffixes

    def __call__(self, source: str) -> list[int] | None:
        record = self.record(source)
        if record is None:
            return None
        if Path(record[0]).suffix.lower() not in self.line_suffixes:
            return []  # a PDF, a web page, a DOCX: cited by page and heading, not lines
        return self.read_again(record, source)


class PageLabels(_ReadAgain[list[str]]):
    """The printed page labels of indexed PDFs ("iv", "12"), one per page, where the PDF sets
    them (empty when it sets none); None for other formats or when not known."""

    def __call__(self, source: str) -> list[str] | None:
        record = self.record(source)
        if record is None or Path(record[0]).suffix.lower() != ".pdf":
            return None
        return self.read_again(record, source)


class Locations:
    """Where a passage or a quote is in its source, as every front end shows it: "p. 3,
    § Heading, lines 12-18"; "p. 12 (printed 10)" where a PDF prints its own page numbers."""

    def __init__(
        self,
        manifest: Manifest,
        line_numbers: Callable[[str], Sequence[int] | None] | None,
        page_labels: Callable[[str], Sequence[str] | None] | None = None,
    ) -> None:
        self.manifest = manifest
        # A source's line numbers on disk, one per line of its indexed text (None: not known,
        # and lines are counted in the indexed text).
        self.line_numbers = line_numbers
        # A PDF's printed page labels, one per page (None or empty: it has none).
        self.page_labels = page_labels

    def locate(self, passage: Passage, text: str | None = None) -> Passage:
        """The passage with its human-readable location (page, section, lines); `text` is its
        source's text when the caller has already read it."""
        text = (self.manifest.file_text(passage.source) or "") if text is None else text
        where = self._where(passage.source, passage.page, passage.section, text, passage.start, passage.end)
        # Chunks are exact spans of the source text, so a merged passage is one slice of it.
        body = text[passage.start : passage.end] if len(passage.chunk_ids) > 1 and text else passage.text
        return Passage(**{**passage.__dict__, "text": body, "location": where})

    def locate_all(self, passages: Sequence[Passage]) -> list[Passage]:
        """`locate` for each passage, each source's text read once."""
        texts: dict[str, str] = {}
        return [self.locate(p, self._text(texts, p.source)) for p in passages]

    def _text(self, texts: dict[str, str], source: str) -> str:
        if source not in texts:
            texts[source] = self.manifest.file_text(source) or ""
        return texts[source]

    def _where(self, source: str, page: int | None, section: str, text: str, start: int, end: int) -> str:
        """ "p. 3, § Heading, lines 12-18": the lines are those of the file on disk when its
        line numbers are known, else of the indexed text."""
        first = text.count("\n", 0, start) + 1
        last = first + text.count("\n", start, max(start, end - 1) if end > start else start)
        numbers = self.line_numbers(source) if self.line_numbers is not None else None
        if numbers and last <= len(numbers):
            first, last = numbers[first - 1], numbers[last - 1]
        parts = []
        if page is not None:
            parts.append(f"p. {page}{self._printed(source, page)}")
        if section:
            parts.append(f"§ {section}")
        # A format without lines of its own is cited by page and heading when it has them.
        if numbers is None or len(numbers) > 0 or not parts:
            parts.append(f"line {first}" if first == last else f"lines {first}-{last}")
        return ", ".join(parts)

    def _printed(self, source: str, page: int) -> str:
        """ " (printed iv)" when the page's printed label is not its number as a viewer counts."""
        labels = self.page_labels(source) if self.page_labels is not None else None
        if not labels or not 1 <= page <= len(labels):
            return ""
        label = " ".join(labels[page - 1].split())
        return f" (printed {label})" if label and label != str(page) else ""

    def cite(self, citation: Citation, passage: Passage, text: str | None = None) -> Citation:
        """The citation located at its quote: the lines (and page, and section) of the passage
        that hold the quoted text, rather than the whole passage's."""
        at = passage.text.find(citation.quote) if citation.quote else -1
        if at < 0:
            return citation
        start = passage.start + at
        end = start + len(citation.quote)
        page, section = passage.page, passage.section
        if len(passage.chunk_ids) > 1:  # the chunk the quote starts in has its page and heading
            for row in self.manifest.chunks(list(passage.chunk_ids)):
                if row["start"] <= start < row["end"]:
                    page, section = row["page"], row["section"]
                    break
        text = (self.manifest.file_text(passage.source) or "") if text is None else text
        if text[start:end] != citation.quote:
            return citation
        return replace(citation, location=self._where(passage.source, page, section, text, start, end))

    def located(self, citations: Sequence[Citation], passages: Sequence[Passage]) -> tuple[Citation, ...]:
        """Each citation located at its quote; a citation of no passage given stays as it is."""
        by_id = {p.id: p for p in passages}
        texts: dict[str, str] = {}
        out = []
        for c in citations:
            passage = by_id.get(c.passage_id)
            if passage is None or passage.source != c.source:
                out.append(c)
                continue
            out.append(self.cite(c, passage, self._text(texts, c.source)))
        return tuple(out)
