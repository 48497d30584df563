"""Chunk records as the index holds them, and the scheme that names them.

A chunk is a contiguous span of its document's text (offsets exact), recorded in the
manifest and embedded in the vector store under the same id. How documents are cut into
chunks is ingest's business (ingest/chunking.py); what a chunk is, and what of it gets
embedded and keyword-indexed, both sides read from here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


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
    language: str | None = None  # index.languages.detect_language of the text, set at ingest

    @property
    def embed_text(self) -> str:
        """What gets embedded and keyword-indexed: the text under its title and heading."""
        return embed_text(self.title, self.section, self.text)

    @property
    def text_offset(self) -> int:
        """Where `text` starts inside `embed_text`."""
        return len(self.embed_text) - len(self.text)


def embed_text(title: str, section: str, text: str) -> str:
    """A chunk's text under its "title > section" header (parts the text already opens with
    are left out)."""
    header = " > ".join(part for part in (title, section) if part and part not in text[:200])
    return f"{header}\n{text}" if header else text


def text_digest(text: str) -> str:
    """The SHA-256 of a chunk's text, hex: its content hash is the first 16 characters."""
    return hashlib.sha256(text.encode()).hexdigest()


def chunk_id(source: str, digest: str, occurrence: int) -> str:
    """The id of the `occurrence`-th chunk (from 0) with text digest `digest` in `source`:
    stable across re-ingests while the text stays, so unchanged chunks are not embedded again."""
    return hashlib.sha256(f"{source}\0{digest}\0{occurrence}".encode()).hexdigest()[:32]


def chunk_ids(source: str, texts: list[str] | tuple[str, ...]) -> list[tuple[str, str]]:
    """The id and content hash of each of a document's chunk texts, in order: a chunk's id
    counts how many earlier chunks of the document have the same text."""
    ids: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for text in texts:
        digest = text_digest(text)
        occurrence = seen.get(digest, 0)
        seen[digest] = occurrence + 1
        ids.append((chunk_id(source, digest, occurrence), digest[:16]))
    return ids
