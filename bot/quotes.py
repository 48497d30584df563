"""Quotes an answer can stand on: whole sentences of the source, verbatim, and how they are shown.

A scored sentence becomes a quote only if it reads as a sentence: the tail of a broken one is
joined to the sentence before it or dropped, a sentence whose subject is in the one before
takes it along, text run together at a seam of machine translation is cut there, and an
overlong sentence keeps its start and its best clause. `render` numbers the quotes' passages
as [n] and builds the citations.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from bot.types import Citation, Draft, Passage
from index.keywords import terms
from index.languages import CJK_RUN, segmenting_chinese
from index.sentences import SEAM, split_sentences, text_length

# The source's own footnote markers ("banned. [4]The second reason"): in an answer they would
# read as citations of ours, so the answer text drops them (the quote keeps them, verbatim).
_FOOTNOTE = re.compile(r"\s*\[\d{1,3}\]\s*")


MAX_CHARS = 360


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
            first = ((0, len(s.text)),)
            citations.append(Citation(numbers[s.passage], p.source, p.location, s.text, p.id, first))
        else:  # a second quote from the same passage: widen the quote to cover both
            n = numbers[s.passage]
            old = citations[n - 1]
            at = p.text.find(old.quote)
            lo = min(at, s.start)
            hi = max(at + len(old.quote), s.end)
            spans = (*((a + at - lo, b + at - lo) for a, b in old.spans), (s.start - lo, s.end - lo))
            citations[n - 1] = Citation(n, old.source, old.location, p.text[lo:hi], old.passage_id, spans)
        shown = f"{_clean(s.text)} …" if s.cut else _clean(s.text)  # "…": the sentence goes on
        lines.append(f"{shown} [{numbers[s.passage]}]")
    text = "\n".join(f"- {line}" for line in lines) if bullets else " ".join(lines)
    return Draft(text=text, citations=tuple(citations), abstained=False)


# A sentence that leans on the one before: its subject is there ("He pointed out that his
# organization identified 22 ..."), or it continues it.
_REFERS_BACK = re.compile(r"^(He|She|It|They|This|These|That|Those|His|Her|Its|Their|Such|The latter)\b")


# What a sentence opens with; a CJK character opens one too (Chinese has no capitals).
_OPENS = re.compile(r"^[A-Z0-9“\"‘'(\[「『（《]|^" + CJK_RUN.pattern)


_WHOLE_CHARS = 480


ASKS_ITSELF = re.compile(r"\?[\"”’')]*$|\?[\"”’')]*\s")


MIN_WORDS = 5  # shorter is a heading, a byline or a caption, not an answer


_READ_ON_CHARS = 600


def sentence_count(s: ScoredSentence) -> int:
    return max(1, len(split_sentences(s.text)))


def first_sentences(s: ScoredSentence, n: int) -> ScoredSentence:
    spans = split_sentences(s.text)
    if len(spans) <= n:
        return s
    end = spans[n - 1][1]
    return ScoredSentence(
        s.passage, s.start, s.start + end, s.text[:end], s.score, None, s.matched, s.previous
    )


def wholes(scored: Sequence[ScoredSentence], passages: Sequence[Passage]) -> list[ScoredSentence]:
    out = []
    for s in scored:
        whole = _whole(s, passages[s.passage].text)
        if whole is not None:
            # A question in the text ("What's wrong with having one founder?") is answered by
            # what follows it: quote that too.
            asks = whole.text.rstrip("”\"’')").endswith("?")
            out.append(read_on(whole, passages[s.passage].text, 2) if asks else whole)
    return out


def read_on(s: ScoredSentence, text: str, sentences: int) -> ScoredSentence:
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
    seam = SEAM.search(s.text)
    if seam is not None:
        # "... April 2021. has been used to ...": quote what comes before the seam, unless what
        # the question asks about is only after it (then the whole run, which opens properly).
        head, tail = s.text[: seam.start() + 1], s.text[seam.start() + 1 :]
        if len(set(terms(head)) & s.matched) >= len(set(terms(tail)) & s.matched):
            if text_length(head) < MIN_WORDS:
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


def shorten(s: ScoredSentence, text: str) -> ScoredSentence:
    """An overlong sentence cut to its best clause; a clause that does not open like a
    sentence keeps the sentence's own start (the quote then ends with that clause)."""
    if len(s.text) <= MAX_CHARS or s.clause is None:
        return s
    a, b = s.clause
    if not _OPENS.match(text[a:b]):
        a = s.start
    quote = text[a:b].rstrip(" ,;:")
    return ScoredSentence(s.passage, a, a + len(quote), quote, s.score, cut=b < s.end)


def _clean(sentence: str) -> str:
    """A quoted sentence as the answer shows it: one line, without the source's footnote marks."""
    return " ".join(_FOOTNOTE.sub(" ", sentence).split())


def sentence_terms(sentence: str) -> frozenset[str]:
    """A sentence's terms, kept: one question scores the same sentences several times (to
    order passages, to answer, for each side of a comparison)."""
    return _sentence_terms(sentence, segmenting_chinese())


@lru_cache(maxsize=8192)
def _sentence_terms(sentence: str, segmenting: bool) -> frozenset[str]:
    # Keyed on the way Chinese is segmented too (index.languages.chinese_segmentation), so
    # the pieces made for one question never stand for jieba's words in the next.
    return frozenset(terms(sentence))


def same_sentence(a: ScoredSentence, b: ScoredSentence) -> bool:
    """The same sentence seen twice (overlapping passages) or a near copy."""
    if a.text == b.text:
        return True
    ta, tb = set(a.text.lower().split()), set(b.text.lower().split())
    return len(ta & tb) / max(1, min(len(ta), len(tb))) > 0.8
