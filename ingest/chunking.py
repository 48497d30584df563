"""Structure-aware chunks that never exceed what the embedding model reads.

A chunk is a contiguous span of its document's text, so its character offsets are exact and
any quote taken from it is verbatim. Chunks never cross a section (heading or PDF page);
inside a section they are packed from paragraphs, then sentences, then word windows, and
neighbours share up to `overlap` tokens of whole sentences.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ingest.loaders import LoadedDocument, Section
from ingest.sentences import split_sentences

TokenCounter = Callable[[Sequence[str]], list[int]]

# What a header ("title > section") may cost at most, so the chunk itself keeps most of the window.
_MAX_HEADER_TOKENS = 32


@dataclass(frozen=True)
class Chunk:
    id: str
    source: str
    ord: int
    text: str
    start: int
    end: int
    title: str
    section: str
    page: int | None
    tokens: int
    content_hash: str

    @property
    def embed_text(self) -> str:
        """What gets embedded and keyword-indexed: the text under its title and heading."""
        return embed_text(self.title, self.section, self.text)

    @property
    def text_offset(self) -> int:
        """Where `text` starts inside `embed_text`."""
        return len(self.embed_text) - len(self.text)


def sentence_spans(text: str) -> list[tuple[int, int, int]]:
    """(start, end, kind) of each sentence (kind 0) and, for long sentences, its clauses
    (kind 1): the units the extractive answerer scores."""
    out: list[tuple[int, int, int]] = []
    for a, b in split_sentences(text):
        out.append((a, b, 0))
        out.extend((a + x, a + y, 1) for x, y in clause_spans(text[a:b]))
    return out


def clause_spans(sentence: str) -> list[tuple[int, int]]:
    """Clauses of a long sentence (cut at , ; : and dashes), each of at least five words: a long
    sentence's vector is diluted by its other content, a clause's much less."""
    if len(sentence.split()) < 16:
        return []
    spans: list[tuple[int, int]] = []
    start = 0
    for cut in re.finditer(r"[,;:—–]\s+", sentence):
        if len(sentence[start : cut.start()].split()) >= 5:
            spans.append((start, cut.start()))
            start = cut.end()
    if spans and start < len(sentence):
        if len(sentence[start:].split()) >= 5:
            spans.append((start, len(sentence)))
        else:
            spans[-1] = (spans[-1][0], len(sentence))
    return spans if len(spans) > 1 else []


def embed_text(title: str, section: str, text: str) -> str:
    header = " > ".join(part for part in (title, section) if part and part not in text[:200])
    return f"{header}\n{text}" if header else text


def chunk_ids(source: str, texts: Sequence[str]) -> list[tuple[str, str]]:
    """The id and content hash of each of a document's chunk texts, in order. The id hashes the
    source, the text and how many earlier chunks have the same text: an unchanged chunk keeps it."""
    ids: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for text in texts:
        digest = hashlib.sha256(text.encode()).hexdigest()
        occurrence = seen.get(digest, 0)
        seen[digest] = occurrence + 1
        ids.append(
            (hashlib.sha256(f"{source}\0{digest}\0{occurrence}".encode()).hexdigest()[:32], digest[:16])
        )
    return ids


def chunk_document(
    doc: LoadedDocument, count_tokens: TokenCounter, *, max_tokens: int, overlap: int
) -> list[Chunk]:
    """Split `doc` into chunks of at most `max_tokens` tokens (header included)."""
    pieces: list[tuple[int, int, Section]] = []
    for section in doc.sections:
        header = embed_text(doc.title, section.heading, "")
        header_tokens = min(count_tokens([header])[0], _MAX_HEADER_TOKENS) if header else 0
        budget = max(16, max_tokens - header_tokens)
        spans = _pack_section(doc.text, section, count_tokens, budget, min(overlap, budget // 4))
        pieces.extend((a, b, section) for a, b in spans)

    texts = [doc.text[a:b] for a, b, _ in pieces]
    chunks: list[Chunk] = []
    ids = chunk_ids(doc.source, texts)
    for i, ((a, b, section), text, (chunk_id, content_hash)) in enumerate(
        zip(pieces, texts, ids, strict=True)
    ):
        chunks.append(
            Chunk(
                id=chunk_id,
                source=doc.source,
                ord=i,
                text=text,
                start=a,
                end=b,
                title=doc.title,
                section=section.heading,
                page=section.page,
                tokens=0,
                content_hash=content_hash,
            )
        )
    # One batched call: the real token count of what the model will read, header included.
    counts = count_tokens([c.embed_text for c in chunks]) if chunks else []
    return [_with_tokens(c, n) for c, n in zip(chunks, counts, strict=True)]


def _with_tokens(chunk: Chunk, tokens: int) -> Chunk:
    return Chunk(**{**chunk.__dict__, "tokens": tokens})


def _pack_section(
    text: str, section: Section, count_tokens: TokenCounter, budget: int, overlap: int
) -> list[tuple[int, int]]:
    units = _units(text, section.start, section.end, count_tokens, budget)
    if not units:
        return []
    sizes = count_tokens([text[a:b] for a, b in units])
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(units):
        j, total = i, 0
        while j < len(units) and (j == i or total + sizes[j] <= budget):
            total += sizes[j]
            j += 1
        spans.append((units[i][0], units[j - 1][1]))
        if j >= len(units):
            break
        # Start the next chunk a few whole units back, so a fact on the boundary is whole somewhere.
        back, carried = j, 0
        while back - 1 > i and carried + sizes[back - 1] <= overlap:
            back -= 1
            carried += sizes[back]
        i = back
    return spans


def _units(text: str, start: int, end: int, count_tokens: TokenCounter, budget: int) -> list[tuple[int, int]]:
    """Sentences (paragraph ends included), with any sentence over budget cut into word windows."""
    units: list[tuple[int, int]] = []
    sentences = split_sentences(text, start, end)
    sizes = count_tokens([text[a:b] for a, b in sentences]) if sentences else []
    for (a, b), size in zip(sentences, sizes, strict=True):
        if size <= budget:
            units.append((a, b))
        else:
            units.extend(_word_windows(text, a, b, count_tokens, budget))
    return units


def _word_windows(
    text: str, a: int, b: int, count_tokens: TokenCounter, budget: int
) -> list[tuple[int, int]]:
    words = [(m.start() + a, m.end() + a) for m in re.finditer(r"\S+", text[a:b])]
    sizes = count_tokens([text[x:y] for x, y in words])
    # A single "word" over budget (a long URL, base64): cut it into pieces of budget characters,
    # since a word piece is never shorter than one character.
    step = max(1, budget - 2)
    fixed: list[tuple[int, int]] = []
    fixed_sizes: list[int] = []
    for (x, y), size in zip(words, sizes, strict=True):
        if size <= budget - 2:
            fixed.append((x, y))
            fixed_sizes.append(size)
            continue
        for p in range(x, y, step):
            fixed.append((p, min(y, p + step)))
            fixed_sizes.append(budget - 2)
    words, sizes = fixed, fixed_sizes
    windows: list[tuple[int, int]] = []
    i = 0
    while i < len(words):
        j, total = i, 0
        # Word pieces of separate words add up (no merges across spaces), keep a small margin.
        while j < len(words) and (j == i or total + sizes[j] <= budget - 2):
            total += sizes[j]
            j += 1
        windows.append((words[i][0], words[j - 1][1]))
        i = j
    return windows
