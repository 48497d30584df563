"""Overview answers from the briefs chosen at ingest: a document's key sentences as cited
bullets, or one cited line per document for the whole collection.

Every bullet is a sentence of the document, quoted verbatim and cited with its location,
so a summary is as checkable as any other answer. A summary of an indexed document never
abstains: every document with a sentence in it has a brief.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.quotes import ScoredSentence, render
from bot.retrieval import passage_of
from bot.types import Draft, Passage
from index.briefs import BriefSentence, brief_of
from index.manifest import Manifest

# The collection overview lists this many documents at most; the note says how many more.
MAX_DOCUMENTS = 15
BRIEF_BULLETS = 6


@dataclass(frozen=True)
class Overview:
    draft: Draft
    passages: tuple[Passage, ...]


_BYLINE = re.compile(r"^(written\s+)?by\s", re.I)


def headline(text: str) -> tuple[int, int] | None:
    """The span of a headline the document opens with (a first line of 6 to 30 words that is
    not a sentence or a byline): what a news article or report says it is about."""
    stripped = text.lstrip()
    start = len(text) - len(stripped)
    end = text.find("\n", start)
    end = len(text) if end == -1 else end
    line = text[start:end].strip()
    words = len(line.split())
    if 6 <= words <= 30 and line[-1] not in ".!?:" and not _BYLINE.match(line):
        return start, start + len(line)
    return None


class Summaries:
    def __init__(self, manifest: Manifest, locate: Callable[[Passage], Passage]) -> None:
        self.manifest = manifest
        self.locate = locate

    def brief(self, source: str) -> list[BriefSentence]:
        """The document's brief; an index built before briefs existed gets one made now from
        its stored sentence vectors (the same choice ingest would make)."""
        stored = self.manifest.brief(source)
        if stored is not None:
            return stored
        text = self.manifest.file_text(source) or ""
        rows = self.manifest.chunks_of(source)
        vectors = self.manifest.sentence_vectors([r["id"] for r in rows])
        return brief_of(text, [(r["id"], r["start"]) for r in rows], vectors)

    def document(self, source: str, extra: Sequence[tuple[int, int]] = (), room: int = 1) -> Overview:
        """The document's brief as cited bullets in reading order. Up to `room` of the `extra`
        sentences (offsets into its text: those that best match what the question says of the
        document, best first) that the brief lacks take the places of its weakest sentences."""
        brief = sorted(self.brief(source), key=lambda s: -s[2])
        spans = [(a, b) for a, b, _ in brief]
        added = [(a, b) for a, b in extra if not any(a < y and x < b for x, y in spans)][:room]
        spans = spans[: max(3, BRIEF_BULLETS - len(added))] + added
        head = headline(self.manifest.file_text(source) or "")
        if head is not None and not any(head[0] < y and x < head[1] for x, y in spans):
            spans.insert(0, head)
        return self._quote([(source, a, b) for a, b in sorted(spans)], labels=False)

    def collection(self, ranked: Sequence[str]) -> Overview:
        """One line per document (its best brief sentence), in the order given."""
        picks = []
        for source in ranked[:MAX_DOCUMENTS]:
            brief = self.brief(source)
            if brief:
                a, b, _ = max(brief, key=lambda s: s[2])
                picks.append((source, a, b))
        overview = self._quote(picks, labels=True)
        if len(ranked) > MAX_DOCUMENTS:
            more = len(ranked) - MAX_DOCUMENTS
            note = f"{more} more documents are indexed; ask for the summary of one by name."
            return Overview(Draft(**{**overview.draft.__dict__, "note": note}), overview.passages)
        return overview

    def _quote(self, picks: Sequence[tuple[str, int, int]], *, labels: bool) -> Overview:
        """Cite each (source, start, end) sentence from the chunk that holds it."""
        passages: list[Passage] = []
        index: dict[str, int] = {}
        chosen: list[ScoredSentence] = []
        label_of: dict[int, str] = {}
        for source, a, b in picks:
            row = next(
                (r for r in self.manifest.chunks_of(source) if r["start"] <= a and b <= r["end"]), None
            )
            if row is None:
                continue
            if row["id"] not in index:
                index[row["id"]] = len(passages)
                passages.append(self.locate(passage_of(row, 1.0)))
            i = index[row["id"]]
            p = passages[i]
            start, end = a - p.start, b - p.start
            chosen.append(ScoredSentence(i, start, end, p.text[start:end], 1.0))
            label_of[len(chosen) - 1] = source
        if not chosen:
            return Overview(Draft(text="", citations=(), abstained=True), ())
        draft = render(chosen, passages, bullets=True)
        if labels:
            lines = draft.text.split("\n")
            draft = Draft(
                text="\n".join(f"- {label_of[n]}: {line[2:]}" for n, line in enumerate(lines)),
                citations=draft.citations,
                abstained=False,
            )
        return Overview(draft, tuple(passages))
