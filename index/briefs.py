"""Document briefs: each document's key sentences, chosen at ingest from vectors it already has.

A sentence is key when it is close to what the document says overall (its vector near the
mean of the document's sentence vectors), carries facts (numbers, names) or opens the
document (news leads, abstracts and essay theses come first). The brief is chosen greedily
with a penalty for repeating a sentence already chosen (maximal marginal relevance), so it
covers the document instead of saying its main point five times. No model call: the
sentence vectors come from the chunks' own forward pass; without them (an embedder that
gives none) hashed word counts stand in.
"""

from __future__ import annotations

import itertools
import re
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from index.sentences import SEAM, glued_heading_length, split_sentences

BriefSentence = tuple[int, int, float]  # start, end (offsets into the document text), score

_WORD = re.compile(r"[a-z0-9]+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NAME = re.compile(r"(?<=[a-z,;:] )[A-Z][a-z]+")  # a capitalised word inside a sentence
_OPENS_SENTENCE = re.compile(r"[A-Z0-9“\"‘'(\[]")
_ENDS_SENTENCE = re.compile(r"[.!][\"”’')\]]*$")
# Where a document's own text ends and its apparatus (notes, references) begins.
_BACK_MATTER = re.compile(
    r"(?:^|\n|[.!?”\"] ?)(Notes|References|Bibliography|Footnotes|Endnotes)(?=\s*\n|\s*\[1\])"
)
# Phrases by which writers announce their point ("in one sentence", "the answer is").
_SUMS_UP = re.compile(
    r"\b(in(to)? (one|a single) sentence|in short|in sum|to sum up|in summary|to summari[sz]e|in a nutshell|"
    r"the (main|key|real|whole) point|the answer(,? I think,?)? is|the lesson|the conclusion|my (thesis|claim|point)|"
    r"what (this|that) means is|the most important)\b",
    re.I,
)
_NOTE_MARK = re.compile(r"(\[\d{1,3}\]\s*)+")
_STOP = frozenset(
    "the a an of to in on and or for by with how why what is are was be your you my our".split()
)
# Likeness to a sentence already chosen costs _DIVERSITY per unit of cosine above _ALIKE:
# sentences on one subject may all be kept, near repeats are not.
_DIVERSITY = 0.6
_CONCEPTS = 0.1  # worth of covering the most repeated concepts any one sentence holds
_ALIKE = 0.6
_HASH_DIM = 512


def brief_size(sentences: int) -> int:
    """3 to 6 sentences: a short note gets 3, a long report 6."""
    return max(3, min(6, sentences // 12 + 3))


def quotable(sentence: str) -> bool:
    """A whole sentence a reader can take as it stands: it starts like a sentence, has a few
    words, and is not a question or a caption."""
    words = sentence.split()
    return (
        6 <= len(words) <= 70
        and bool(_OPENS_SENTENCE.match(sentence))
        and bool(_ENDS_SENTENCE.search(sentence))
        and not SEAM.search(sentence)
        and sum(ch.isalpha() for ch in sentence) > len(sentence) / 2
    )


def build_brief(
    text: str,
    spans: Sequence[tuple[int, int]],
    vectors: np.ndarray | None = None,
    size: int | None = None,
) -> list[BriefSentence]:
    """The document's key sentences in reading order. `spans` are sentence offsets into
    `text`; `vectors` (one row per span) their embeddings, or None."""
    back = _BACK_MATTER.search(text)
    body_end = back.start(1) if back and back.start(1) > len(text) // 2 else len(text)
    title = _title_words(text)
    keep: list[int] = []
    starts: list[int] = []
    for i, (a, b) in enumerate(spans):
        if a >= body_end:
            break
        skip = glued_heading_length(text[a:b])  # "Other placesChinese officials say ..."
        mark = _NOTE_MARK.match(text, a + skip, b)  # "[4]Once you know ...": the source's note mark
        skip = mark.end() - a if mark else skip
        if quotable(text[a + skip : b]):
            keep.append(i)
            starts.append(a + skip)
    if not keep:
        return []
    matrix = (
        np.asarray(vectors, dtype=np.float32)[keep]
        if vectors is not None and len(vectors)
        else _hashed([text[a:b] for a, b in (spans[i] for i in keep)])
    )
    matrix = matrix / np.clip(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12, None)
    centroid = matrix.mean(axis=0)
    centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
    central = matrix @ centroid
    n = len(keep)
    scores = np.empty(n, dtype=np.float32)
    for j, i in enumerate(keep):
        a, b = starts[j], spans[i][1]
        sentence = text[a:b]
        prior = 0.0
        prior += 0.04 * min(2, len(_NUMBER.findall(sentence)))  # figures: facts
        if _NAME.search(sentence):
            prior += 0.02
        prior += 0.1 * max(0.0, 1.0 - j / 6)  # the opening sentences
        prior += 0.03 * (1.0 - j / n)  # a gentle lean towards the start
        if n >= 20 and j >= n - max(3, n // 12):
            prior += 0.05  # the closing sentences: where an essay or report concludes
        if _SUMS_UP.search(sentence):
            prior += 0.06
        # A sentence that restates the title is often the thesis.
        prior += 0.02 * min(2, len(title & _words(sentence)))
        scores[j] = float(central[j]) + prior
    # Concepts (after concept-based summarization): word pairs the document repeats in
    # several sentences ("disagreement hierarchy", "police stations"). Each chosen sentence
    # covers its concepts; a sentence is worth more while it covers concepts still uncovered.
    concepts = [_pairs(text[starts[j] : spans[i][1]]) for j, i in enumerate(keep)]
    weight = Counter(c for found in concepts for c in found)
    weight = Counter({c: w for c, w in weight.items() if w >= 2})
    # Figures are facts of their own: each is a concept, once said enough.
    for j, i in enumerate(keep):
        for number in _NUMBER.findall(text[starts[j] : spans[i][1]]):
            concepts[j].add(("#", number))
            weight[("#", number)] = 2
    covered: set[tuple[str, str]] = set()
    top_gain = max((sum(weight[c] for c in found) for found in concepts), default=0) or 1
    chosen: list[int] = []
    for _ in range(min(size or brief_size(n), n)):
        gain = np.array([sum(weight[c] for c in found - covered) for found in concepts], dtype=np.float32)
        value = scores + _CONCEPTS * gain / top_gain
        if chosen:
            similar = (matrix @ matrix[chosen].T).max(axis=1)
            value -= _DIVERSITY * np.clip(similar - _ALIKE, 0.0, None)
            value[chosen] = -np.inf
        chosen.append(int(np.argmax(value)))
        covered |= concepts[chosen[-1]]
    chosen.sort()
    return [(starts[j], spans[keep[j]][1], round(float(scores[j]), 4)) for j in chosen]


def brief_of(
    text: str,
    chunks: Sequence[tuple[str, int]],
    stored: Mapping[str, Sequence[tuple[int, int, int, bytes]]],
) -> list[BriefSentence]:
    """The brief of a document from its chunks' stored sentence vectors. `chunks` holds each
    chunk's id and start offset; `stored` the (start, end, kind, float16 vector) rows of each
    chunk's sentences, offsets relative to the chunk. Overlapping chunks repeat sentences:
    each counts once."""
    by_span: dict[tuple[int, int], bytes] = {}
    for chunk_id, start in chunks:
        for a, b, kind, blob in stored.get(chunk_id, ()):
            if kind == 0:
                by_span.setdefault((start + a, start + b), blob)
    if not by_span:
        return build_brief(text, split_sentences(text))
    spans = sorted(by_span)
    vectors = np.stack([np.frombuffer(by_span[s], dtype=np.float16) for s in spans])
    return build_brief(text, spans, vectors)


def _pairs(sentence: str) -> set[tuple[str, str]]:
    """Adjacent content-word pairs (crude stems) of a sentence."""
    words = [w[:5] for w in _WORD.findall(sentence.lower()) if len(w) > 2 and w not in _STOP]
    return set(itertools.pairwise(words))


def _words(text: str) -> set[str]:
    """Crude stems (first five letters) of the content words: enough to see a title restated."""
    return {w[:5] for w in _WORD.findall(text.lower()) if len(w) > 2 and w not in _STOP}


def _title_words(text: str) -> set[str]:
    """Words of the short lines a document opens with (its title and headings), not of a byline."""
    lines = [line.strip() for line in text[:400].splitlines() if line.strip()][:4]
    titles = [
        line
        for line in lines
        if len(line.split()) <= 14
        and line[-1] not in ".!?"
        and not re.match(r"(written\s+)?by\s", line, re.I)
    ]
    return _words(" ".join(titles))


def _hashed(sentences: Sequence[str]) -> np.ndarray:
    """Bag-of-words vectors (hashed to a fixed width) for documents without sentence vectors."""
    out = np.zeros((len(sentences), _HASH_DIM), dtype=np.float32)
    for row, sentence in enumerate(sentences):
        for word in _WORD.findall(sentence.lower()):
            if len(word) > 3:
                out[row, zlib.crc32(word.encode()) % _HASH_DIM] += 1.0
    return out
