"""What a loaded file is: the document, its sections, the budget it must stay within, and the
error every loader raises for a file a user can fix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dossier_common.errors import DossierError

BYTES_PER_MB = 1024 * 1024
MAX_TITLE_CHARS = 200


@dataclass(frozen=True)
class Section:
    """A contiguous structural piece of a document: `text == document.text[start:end]`."""

    text: str
    start: int
    end: int
    heading: str = ""
    page: int | None = None


@dataclass(frozen=True)
class FileNotes:
    """What reading one file found that its owner may want to know (`ingest --json` gives it
    per file): tables kept as tables, pages read with OCR, pages left out and what would let
    them be read."""

    tables: int = 0
    ocr_pages: int = 0
    skipped_pages: tuple[int, ...] = ()
    advice: str = ""


NO_NOTES = FileNotes()


@dataclass(frozen=True)
class LoadedDocument:
    source: str
    path: Path
    title: str
    text: str
    sections: tuple[Section, ...]
    content_hash: str
    notes: FileNotes = NO_NOTES


@dataclass(frozen=True)
class Budget:
    """What one file may expand into, checked before parsing where the format says (PDF page
    count, DOCX unpacked size) and while text is extracted. A small crafted file can
    otherwise unpack to gigabytes or list one page a million times. None: no limit."""

    pdf_pages: int | None = None
    unzipped_bytes: int | None = None
    text_chars: int | None = None

    def check_chars(self, n: int) -> None:
        if self.text_chars is not None and n > self.text_chars:
            raise LoadError(f"more than {self.text_chars:,} characters of text (DOSSIER_MAX_TEXT_CHARS)")


UNLIMITED = Budget()


class LoadError(DossierError):
    """A file could not be turned into text; `reason` says why in words a user understands."""

    def __init__(self, reason: str, path: Path | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path


@dataclass(frozen=True)
class Parsed:
    """What each per-format loader makes of the raw bytes."""

    title: str
    text: str
    sections: tuple[Section, ...]
    notes: FileNotes = NO_NOTES


Loader = Callable[[bytes, Budget], Parsed]


def error_summary(err: BaseException) -> str:
    message = str(err).strip().split("\n")[0]
    return message[:120] if message else type(err).__name__
