"""Find documents on disk and turn each into normalised text split into structural sections.

One loader per format (txt, md, html, pdf, docx), all returning a `LoadedDocument` whose
`sections` cover its `text` in order with exact character offsets, so later stages can cite
a page or heading and quote the source verbatim. Every failure a user can cause (a corrupt,
encrypted, empty or vanished file) surfaces as a `LoadError` with a readable reason; parser
exceptions never escape.

This module is the package's public face; the rest of the project imports from here:

- `document`: `LoadedDocument`, `Section`, `Budget`, `LoadError`, `Parsed` (what every loader
  returns) and `FileNotes` (tables, OCR'd and skipped pages, reported per file);
- `discovery`: `discover` (files and folders into files to load), `file_hash`;
- `text`: `normalize_text`, `fold_for_match`, and sections cut at headings and pages;
- `reader`: `load_file`, which reads a file and hands it to the loader for its format:
  `plain` (txt, md), `html`, `docx`, `pdf`.
"""

from ingest.loaders.discovery import SUPPORTED_SUFFIXES, Skipped, discover, file_hash
from ingest.loaders.document import (
    BYTES_PER_MB,
    NO_NOTES,
    UNLIMITED,
    Budget,
    FileNotes,
    LoadedDocument,
    LoadError,
    Parsed,
    Section,
)
from ingest.loaders.pdf import pdf_page_text
from ingest.loaders.pdf_labels import pdf_page_labels
from ingest.loaders.plain import decode_text
from ingest.loaders.reader import LINE_SUFFIXES, load_file, original_lines
from ingest.loaders.text import editor_lines, fold_for_match, normalize_text

__all__ = [
    "BYTES_PER_MB",
    "LINE_SUFFIXES",
    "NO_NOTES",
    "SUPPORTED_SUFFIXES",
    "UNLIMITED",
    "Budget",
    "FileNotes",
    "LoadError",
    "LoadedDocument",
    "Parsed",
    "Section",
    "Skipped",
    "decode_text",
    "discover",
    "editor_lines",
    "file_hash",
    "fold_for_match",
    "load_file",
    "normalize_text",
    "original_lines",
    "pdf_page_labels",
    "pdf_page_text",
]
