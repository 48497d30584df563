"""PDF layout and scans: running page numbers left out, words broken at line ends joined, two columns read one after the other, footnotes kept apart, printed page labels,
and pages without a text layer read with OCR (or reported as skipped without an engine)."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from pathlib import Path

import pytest
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont

from bot.engine import Engine
from bot.evaluate import LocationCheck
from dossier_common.settings import Settings
from ingest.loaders import load_file, pdf_page_labels, pdf_page_text
from ingest.loaders import ocr as ocr_module
from ingest.loaders.pdf_layout import Edges, is_running, running_lines, running_title
from ingest.pipeline import ingest_paths

HEADER = "Harbour Authority Annual Review"
BODY = [
    "The harbour authority met eleven times during the year.",
    "Its members approved a new budget for the eastern channel.",
    "The dredging contract was awarded to",
    "Nordsund Marine after an open tender.",
    "Work began in March and ended before the autumn storms.",
]
FOOTNOTE = "1 Two of the meetings were held in the keeper's cottage."
LEFT = (
    "The northern pier was rebuilt in granite after the winter storm, and its old timber "
    "deck went to the museum. Fishing boats moored on its inner side all summer while the "
    "works went on, and the crane stood at the end of the new"
)
RIGHT = (
    "water wall. The southern slipway stayed open to small craft and the lifeboat, whose "
    "crew trained there on Sunday mornings. A new fuel berth was added near the ferry "
    "ramp, with a tank holding forty thousand litres of diesel oil."
)
SCAN_TEXT = ["The lighthouse keeper counted 47", "fishing boats on the first of May."]
LAST_PAGE = "Passenger numbers on the island ferry rose to 18,400 during the summer season."


def _wrap(pdf: FPDF, text: str, width: float) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if line and pdf.get_string_width(candidate) > width:
            lines.append(line)
            line = word
        else:
            line = candidate
    return [*lines, line]


def _frame(pdf: FPDF, number: int) -> None:
    """The running header and the page number."""
    pdf.set_font("Helvetica", size=9)
    pdf.text(60, 40, HEADER)
    pdf.text(280, 810, f"Page {number}")
    pdf.set_font("Helvetica", size=11)


def _scan_image() -> Image.Image:
    image = Image.new("RGB", (1400, 260), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=56)
    for i, line in enumerate(SCAN_TEXT):
        draw.text((40, 40 + 100 * i), line, fill="black", font=font)
    return image


def report_pdf(*, scan: bool = True) -> bytes:
    """Pages (printed labels i, 1, 2, ...): a body with a footnote, two columns, a word broken
    over two lines, [a scanned page], a last page; all but the scan with a running header and
    page number. Content is written in an order a viewer does not show: the footnote between
    body lines, the two columns line by line across the page."""
    pdf = FPDF(unit="pt", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_title("Harbour review")
    # Page 1: body, with the footnote written between its lines, under a rule.
    pdf.add_page()
    pdf.set_page_label("r")
    _frame(pdf, 1)
    y = 120
    for i, line in enumerate(BODY):
        if i == 3:
            pdf.set_font("Helvetica", size=7)
            pdf.line(60, 770, 200, 770)
            pdf.text(60, 785, FOOTNOTE)
            pdf.set_font("Helvetica", size=11)
        pdf.text(60, y, line)
        y += 16
    # Page 2: two columns, written row by row across the gutter.
    pdf.add_page()
    pdf.set_page_label("D", label_start=1)
    _frame(pdf, 2)
    left = _wrap(pdf, LEFT, 220)
    left[-1] += " break-"
    right = _wrap(pdf, RIGHT, 220)
    for i in range(max(len(left), len(right))):
        if i < len(left):
            pdf.text(60, 120 + 16 * i, left[i])
        if i < len(right):
            pdf.text(315, 120 + 16 * i, right[i])
    # Page 3: a word broken over a line end.
    pdf.add_page()
    _frame(pdf, 3)
    pdf.text(60, 120, "During the spring the cargo was kept for trans-")
    pdf.text(60, 136, "shipment at the northern quay.")
    pdf.text(60, 152, "The customs office moved into the old net loft.")
    if scan:  # Page 4: an image only, as a scanner makes.
        pdf.add_page()
        pdf.image(_scan_image(), x=40, y=100, w=515)
    pdf.add_page()
    _frame(pdf, 5 if scan else 4)
    pdf.text(60, 120, LAST_PAGE)
    return bytes(pdf.output())


def _folded(text: str) -> str:
    return " ".join(text.split())


def test_layout_headers_columns_hyphens_and_footnotes(tmp_path: Path) -> None:
    path = tmp_path / "review.pdf"
    path.write_bytes(report_pdf(scan=False))
    doc = load_file(path, tmp_path)
    pages = {s.page: s.text for s in doc.sections}
    assert sorted(pages) == [1, 2, 3, 4]

    # The running page numbers and the running header are gone from every page (the PDF
    # sets its own title; see the next test for one that does not).
    assert not re.search(r"Page \d", doc.text)
    assert HEADER not in doc.text and doc.title == "Harbour review"

    # The footnote no longer splits the body's sentence and closes its page as a paragraph.
    body, _, note = pages[1].rpartition("\n\n")
    assert _folded(body) == " ".join(BODY)
    assert note == FOOTNOTE

    # Two columns: the left one read whole before the right one, the word broken across the
    # gutter joined again.
    left, right = _folded(LEFT), _folded(RIGHT)
    assert _folded(pages[2]) == f"{left} breakwater{right.removeprefix('water')}"

    # A word hyphenated at a line end is joined.
    assert "kept for transshipment at the northern quay." in _folded(pages[3])
    assert LAST_PAGE in pages[4]

    # A citation check reads each page back exactly as it was indexed.
    data = path.read_bytes()
    for number, text in pages.items():
        assert pdf_page_text(data, number) == text
    assert pdf_page_text(data, 9) is None


def test_printed_page_labels(tmp_path: Path) -> None:
    path = tmp_path / "review.pdf"
    path.write_bytes(report_pdf(scan=False))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert pdf_page_labels(path, digest) == ["i", "1", "2", "3"]
    assert pdf_page_labels(path, "0" * 64) is None  # no longer the file indexed
    plain = tmp_path / "plain.pdf"
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.text(20, 20, "No labels here.")
    plain.write_bytes(bytes(pdf.output()))
    assert pdf_page_labels(plain, hashlib.sha256(plain.read_bytes()).hexdigest()) == []


def test_ocr_absent_pages_reported_and_rest_indexed(
    tmp_path: Path, fake_embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if the engine were not installed: importing it fails.
    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)
    monkeypatch.setattr(ocr_module, "_engine", None)
    monkeypatch.setattr(ocr_module, "_missing", False)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "review.pdf").write_bytes(report_pdf())
    scan_only = FPDF()
    scan_only.add_page()
    scan_only.image(_scan_image(), x=10, y=30, w=190)
    (docs / "scan.pdf").write_bytes(bytes(scan_only.output()))

    settings = Settings(home=tmp_path / "home", _env_file=None)
    report = ingest_paths([docs], settings, fake_embedder)

    [review] = report.files
    assert review.path.endswith("review.pdf")
    assert review.skipped_pages == (4,) and review.ocr_pages == 0
    assert "pip install rapidocr-onnxruntime" in review.advice
    [failure] = report.failed
    assert failure.path.endswith("scan.pdf")
    assert failure.reason.startswith("no extractable text (scanned, no text layer: ")
    assert "pip install rapidocr-onnxruntime" in failure.reason
    # The other pages are indexed.
    engine = Engine(settings, embedder=fake_embedder)
    try:
        answer = engine.ask("How many passengers did the island ferry carry?")
        assert "18,400" in answer.text
        # Cited by the page a viewer shows and the number printed on it.
        cited = [c for c in answer.citations if "18,400" in c.quote]
        assert cited and cited[0].location.startswith("p. 5 (printed 4)")
    finally:
        engine.close()


@pytest.mark.skipif(importlib.util.find_spec("rapidocr_onnxruntime") is None, reason="no OCR engine")
def test_scanned_page_read_with_ocr_answers_a_question(tmp_path: Path, embedder) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    path = docs / "review.pdf"
    path.write_bytes(report_pdf())
    settings = Settings(home=tmp_path / "home", _env_file=None)
    report = ingest_paths([docs], settings, embedder)
    [review] = report.files
    assert review.ocr_pages == 1 and review.skipped_pages == ()

    engine = Engine(settings, embedder=embedder)
    try:
        answer = engine.ask("How many fishing boats did the lighthouse keeper count?")
    finally:
        engine.close()
    assert not answer.abstained and "47" in answer.text
    cited = [c for c in answer.citations if "47" in c.quote]
    assert cited and cited[0].location.startswith("p. 4 (printed 3)")
    # The cited page, OCR'd again from the file, holds the quote.
    assert LocationCheck({"review.pdf": path})(cited[0])


def test_running_header_words_name_a_document_without_a_title() -> None:
    # A filing's footer on every page, its page number changing: left out of the pages, and
    # its words (without the number) are the title when the PDF sets none.
    edges = [
        Edges(head=(f"{topic} grew this quarter",), foot=(f"Acme Corp. | Q3 2023 Form 10-Q | {n}",))
        for n, topic in enumerate(["Revenue", "Income", "Cash", "Margin", "Debt"], start=1)
    ]
    running = running_lines(edges)
    assert is_running("Acme Corp. | Q3 2023 Form 10-Q | 17", running)
    assert not is_running("Revenue grew this quarter", running)
    assert running_title(edges, running) == "Acme Corp. | Q3 2023 Form 10-Q"
    # Only bare page numbers: no title from them.
    numbers = [Edges(foot=(f"- {n} -",)) for n in range(1, 6)]
    assert running_title(numbers, running_lines(numbers)) == ""
