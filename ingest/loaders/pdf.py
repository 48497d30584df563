"""PDF: the text of each page (PDFium) in reading order (see `pdf_layout`), scanned pages read
with OCR (see `ocr`), words broken at line ends joined again; pages that look tabular read
again for their tables (see `pdf_tables`)."""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ingest.loaders.document import UNLIMITED, Budget, FileNotes, LoadError, Parsed, error_summary
from ingest.loaders.ocr import OCR_ADVICE, needs_ocr, ocr_page
from ingest.loaders.pdf_layout import (
    Edges,
    PageLines,
    Running,
    is_running,
    page_edges,
    page_lines,
    read_page,
    running_lines,
    running_title,
)
from ingest.loaders.pdf_tables import page_blocks, tabular_page_text
from ingest.loaders.text import assemble, first_line, normalize_text, title_line

log = logging.getLogger(__name__)

# Lookarounds, so a word broken over three lines ("a-", "b-", "c") is joined at both breaks.
# PDFium already joins most such words itself (see `pdf_layout._BROKEN_HYPHEN`); this catches
# the breaks it leaves, in ASCII or Unicode hyphens.
_PDF_HYPHENATED = re.compile(r"(?<=([^\W\d_]))[-\u2010]\n(?=([^\W\d_]))")


def _dehyphenate(text: str) -> str:
    def join(match: re.Match[str]) -> str:
        left, right = match.group(1), match.group(2)
        return "" if left.islower() and right.islower() else match.group(0)

    return _PDF_HYPHENATED.sub(join, text)


def _finish(text: str) -> str:
    return _dehyphenate(normalize_text(text))


@dataclass
class _Pages:
    """What reading a PDF's pages found: the text of each page that has some, by number."""

    running: Running
    title: str = ""  # the words of a running header or footer (see `pdf_layout.running_title`)
    texts: dict[int, str] = field(default_factory=dict)
    ocr_pages: int = 0
    skipped: list[int] = field(default_factory=list)  # scans left unread: no OCR engine
    failure: Exception | None = None


# Lines of pages kept from the first pass to the second, up to this many characters in all;
# pages past it are read again (a long document's lines would cost more memory than time).
_KEEP_CHARS = 4_000_000


def _read_pages(document: Any, budget: Budget, wanted: Callable[[int], bool]) -> _Pages:
    """The text of each page `wanted(n)`: its text layer in reading order without running
    headers and footers, or OCR of a scanned page. Two passes, as running lines are known
    only from every page (see `pdf_layout`); each PDFium page is closed once read."""
    edges: list[Edges] = []
    pages: list[int] = []  # with text, or scans
    kept: dict[int, PageLines] = {}
    kept_chars = 0
    failure: Exception | None = None
    for number in range(1, len(document) + 1):
        try:
            with _page(document, number) as page:
                found = page_lines(page.get_textpage())
                if found.lines:
                    edges.append(page_edges(found))
                    if wanted(number) and kept_chars + len(found.text) <= _KEEP_CHARS:
                        kept[number] = found
                        kept_chars += len(found.text)
                if found.lines or needs_ocr(page):
                    pages.append(number)
        except Exception as err:
            # One broken page should not cost the reader the rest of the document.
            log.warning("PDF page %d could not be read: %s", number, error_summary(err))
            failure = err
    running = running_lines(edges)
    out = _Pages(running, running_title(edges, running), failure=failure)
    chars = 0
    for number in filter(wanted, pages):
        try:
            text, ocr = _read_page(document, number, out.running, kept.pop(number, None))
        except Exception as err:
            log.warning("PDF page %d could not be read: %s", number, error_summary(err))
            out.failure = err
            continue
        if text is None:
            out.skipped.append(number)
            continue
        out.ocr_pages += ocr
        out.texts[number] = text
        chars += len(text)
        budget.check_chars(chars)
    return out


def _read_page(
    document: Any, number: int, running: Running, found: PageLines | None = None
) -> tuple[str | None, bool]:
    """Page `number`'s text (from its lines `found` in the first pass, or read now), and
    whether it was read by OCR; None for a scan when no OCR engine is installed."""
    with _page(document, number) as page:
        if found is None:
            found = page_lines(page.get_textpage())
        text = read_page(page, found, running)
        if text.strip() or not needs_ocr(page):
            return _finish(text), False
        scanned = ocr_page(page)
        return (None if scanned is None else _finish(scanned)), True


@contextmanager
def _page(document: Any, number: int) -> Iterator[Any]:
    """Page `number`, closed after use (pypdfium2 closes its text page with it): PDFium
    would otherwise keep every page of a long document until the document closes."""
    page = document[number - 1]
    try:
        yield page
    finally:
        page.close()


def load_pdf(data: bytes, budget: Budget) -> Parsed:
    """Text of each page with PDFium (pypdfium2): a C library, some 50 times faster than a
    pure-Python parser on real filings (0.2 s instead of 12 s for a 46-page 10-Q here)."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    try:
        # PDFs "encrypted" only to restrict printing open without a password.
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as err:
        if getattr(err, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD:
            raise LoadError("PDF is encrypted") from None
        raise LoadError(f"corrupt PDF: {error_summary(err)}") from err
    try:
        pages = len(document)
        if budget.pdf_pages is not None and pages > budget.pdf_pages:
            raise LoadError(
                f"{pages:,} pages, over the {budget.pdf_pages:,} page limit (DOSSIER_MAX_PDF_PAGES)"
            )
        read = _read_pages(document, budget, lambda _: True)
        running = partial(is_running, running=read.running)
        blocks, tables = page_blocks(
            document, [(n, read.texts[n]) for n in sorted(read.texts)], _finish, running
        )
        text, sections = assemble(blocks)
        if not text and read.failure is not None:
            raise LoadError(f"corrupt PDF: {error_summary(read.failure)}")
        notes = FileNotes(
            tables=tables,
            ocr_pages=read.ocr_pages,
            skipped_pages=tuple(read.skipped),
            advice=OCR_ADVICE if read.skipped else "",
        )
        title = _pdf_title(document) or read.title or first_line(text)
        return Parsed(title, text, sections, notes=notes)
    finally:
        document.close()


# What the citation check needs of the PDFs it read last, by SHA-256: their running lines
# (which take a read of every page) and the page texts read so far. Checking the citations of
# an answer, or of an eval, reads the same few files page after page.
_READ_LAST: OrderedDict[str, tuple[Running, dict[int, str]]] = OrderedDict()
_READ_LAST_FILES = 4
_read_last_lock = threading.Lock()


def pdf_page_text(data: bytes, number: int) -> str | None:
    """The text of page `number` (1-based, as a viewer counts) exactly as ingest indexes it;
    None when the PDF has no such page or cannot be read."""
    import pypdfium2 as pdfium

    digest = hashlib.sha256(data).hexdigest()
    with _read_last_lock:
        known = _READ_LAST.get(digest)
        if known is not None:
            _READ_LAST.move_to_end(digest)
            if number in known[1]:
                return known[1][number]
    try:
        document = pdfium.PdfDocument(data)
    except Exception:
        return None
    try:
        if not 1 <= number <= len(document):
            return None
        first: dict[int, str | None] = {}
        if known is None:  # the running lines first; no page but this one is read twice
            read = _read_pages(document, UNLIMITED, lambda n: n == number)
            known = (read.running, {})
            first[number] = read.texts.get(number)
        running = known[0]

        def page_text(n: int) -> str | None:
            """Page n as read before its tables (as `load_pdf` has it for `page_blocks`)."""
            if n not in first:
                first[n] = _read_page(document, n, running)[0]
            return first[n]

        # A page that looks tabular is read again with its tables, as `page_blocks` does at ingest.
        is_run = partial(is_running, running=running)
        text = tabular_page_text(document, number, page_text, _finish, is_run) or page_text(number) or ""
    except Exception:
        return None
    finally:
        document.close()
    with _read_last_lock:
        _READ_LAST[digest] = known
        known[1][number] = text
        while len(_READ_LAST) > _READ_LAST_FILES:
            _READ_LAST.popitem(last=False)
    return text


def _pdf_title(document: Any) -> str:
    try:
        title = title_line(str(document.get_metadata_dict().get("Title") or ""))
    except Exception:
        return ""
    # Generators often fill the title with a file name or an accession number; those help nobody.
    if sum(ch.isalpha() for ch in title) < 3 or title.lower().endswith((".pdf", ".doc", ".docx")):
        return ""
    return title
