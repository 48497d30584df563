"""`load_file`: one file read within its limits and handed to the loader for its format."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from ingest.loaders.discovery import bytes_if_unchanged
from ingest.loaders.document import (
    BYTES_PER_MB,
    UNLIMITED,
    Budget,
    LoadedDocument,
    Loader,
    LoadError,
    Parsed,
)
from ingest.loaders.docx import load_docx
from ingest.loaders.html import load_html
from ingest.loaders.pdf import load_pdf
from ingest.loaders.plain import decode_text, load_markdown, load_txt
from ingest.loaders.text import normalize_text, original_line_numbers, title_line

log = logging.getLogger(__name__)

_LOADERS: dict[str, Loader] = {
    ".txt": load_txt,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
    ".docx": load_docx,
}


def _read(path: Path, max_bytes: int | None) -> bytes:
    try:
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise LoadError(f"larger than the {max_bytes / BYTES_PER_MB:.4g} MB limit", path)
        with path.open("rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise LoadError("file vanished while reading", path) from None
    except PermissionError:
        raise LoadError("permission denied", path) from None
    except IsADirectoryError:
        raise LoadError("is a directory, not a file", path) from None
    except OSError as err:
        raise LoadError(f"could not read file ({err.strerror or err})", path) from None
    # The file may have grown between stat and read.
    if max_bytes is not None and len(data) > max_bytes:
        raise LoadError(f"larger than the {max_bytes / BYTES_PER_MB:.4g} MB limit", path)
    return data


def _source_name(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            return path.name


def load_file(
    path: Path, root: Path, *, max_bytes: int | None = None, budget: Budget = UNLIMITED
) -> LoadedDocument:
    """Read one file into a `LoadedDocument`; raises `LoadError` with a user-facing reason."""
    path = Path(path)
    suffix = path.suffix.lower()
    loader = _LOADERS.get(suffix)
    if loader is None:
        raise LoadError(f"unsupported type {suffix or '(no extension)'}", path)
    data = _read(path, max_bytes)
    if not data or data.isspace():
        raise LoadError("empty file", path)
    try:
        parsed = loader(data, budget)
        budget.check_chars(len(parsed.text))
    except LoadError as err:
        err.path = path
        raise
    except MemoryError:
        # Only under a memory limit (ingest.isolated); the budgets should have caught it first.
        raise LoadError("needs more memory than this ingest may use", path) from None
    if not parsed.text:
        raise LoadError(_no_text_reason(suffix, parsed), path)
    log.debug("loaded %s: %d chars, %d sections", path, len(parsed.text), len(parsed.sections))
    return LoadedDocument(
        source=_source_name(path, root),
        path=path,
        title=title_line(parsed.title) or path.stem,
        text=parsed.text,
        sections=parsed.sections,
        content_hash=hashlib.sha256(data).hexdigest(),
        notes=parsed.notes,
    )


def _no_text_reason(suffix: str, parsed: Parsed) -> str:
    if suffix != ".pdf":
        return "empty file"
    if parsed.notes.skipped_pages:  # scans, and no OCR engine to read them
        return f"no extractable text ({parsed.notes.advice})"
    return "no extractable text (scanned PDF?)"


# Formats whose text is the file's own lines, so a citation can name them.
LINE_SUFFIXES = frozenset({".txt", ".md", ".markdown"})


def original_lines(path: Path, content_hash: str) -> list[int] | None:
    """For each line of the indexed text of a txt or Markdown file, its line number in the file
    on disk (see `original_line_numbers`); None for other formats, or when the file is gone or
    no longer the one indexed (its SHA-256 differs from `content_hash`)."""
    if Path(path).suffix.lower() not in LINE_SUFFIXES:
        return None
    data = bytes_if_unchanged(path, content_hash)
    if data is None:
        return None
    try:
        raw = decode_text(data)
    except LoadError:
        return None
    return original_line_numbers(raw, normalize_text(raw))
