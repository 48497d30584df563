"""Structure-aware chunks that never exceed what the embedding model reads.

A chunk is a contiguous span of its document's text, so its character offsets are exact and
any quote taken from it is verbatim. Chunks never cross a section (heading or PDF page);
inside a section they are packed from paragraphs, then sentences, then word windows, and
neighbours share up to `overlap` tokens of whole sentences.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from index.chunks import Chunk, chunk_ids, embed_text
from index.languages import detect_language, has_cjk
from index.sentences import split_sentences
from ingest.loaders import LoadedDocument, Section

TokenCounter = Callable[[Sequence[str]], list[int]]

# What a header ("title > section") may cost at most, so the chunk itself keeps most of the window.
_MAX_HEADER_TOKENS = 32


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
    for i, ((a, b, section), text, (cid, content_hash)) in enumerate(zip(pieces, texts, ids, strict=True)):
        chunks.append(
            Chunk(
                id=cid,
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
                language=detect_language(text),
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


_WORD = re.compile(r"\S+")
_CJK_PIECE = re.compile(r"[^\s，；：、,;:]+[，；：、,;:]*|[，；：、,;:]+")


def _word_windows(
    text: str, a: int, b: int, count_tokens: TokenCounter, budget: int
) -> list[tuple[int, int]]:
    # CJK text has no spaces between words: its "words" are its clauses (cut after ，；：、).
    word = _CJK_PIECE if has_cjk(text[a:b]) else _WORD
    words = [(m.start() + a, m.end() + a) for m in word.finditer(text[a:b])]
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
