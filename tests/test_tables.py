"""Tables kept as tables: PDF (a table over two pages), HTML and DOCX rows written with their
row label and column headers, the caption opening every chunk of a long table, the page kept,
and an answer about a figure that quotes its row and cites its page."""

from __future__ import annotations

from pathlib import Path

import docx
import pytest
from fpdf import FPDF

from dossier_common.settings import Settings
from ingest.chunking import chunk_document
from ingest.loaders import load_file, pdf_page_text
from ingest.loaders.tables import table_from_grid, table_parts

CAPTION = "Table 4: Net revenue by product line (in thousands)"
PRODUCTS = [
    f"Product line {name}" for name in "Alder Birch Cedar Dogwood Elm Fir Ginkgo Hazel Ivy Juniper".split()
]


def _figures(i: int) -> tuple[str, str]:
    return f"{1_000 + 37 * i:,}", f"{2_000 + 53 * i:,}"


def _table_pdf() -> bytes:
    """Prose, then a captioned table with a two-line column header whose rows run onto a second
    page without a header, then prose again."""
    pdf = FPDF(format="letter")
    pdf.set_auto_page_break(False)
    pdf.set_font("Helvetica", size=10)
    pdf.add_page()
    pdf.set_xy(20, 20)
    pdf.multi_cell(170, 5, "The company sells ten product lines through retail partners. " * 6)
    y = 150.0
    pdf.set_xy(20, y)
    pdf.cell(170, 5, CAPTION, align="C")
    y += 10
    for text, x in (("Three Months Ended", 120), ("Three Months Ended", 160)):
        pdf.set_xy(x, y)
        pdf.cell(30, 5, text, align="R")
    y += 5
    for text, x in (("March 31, 2024", 120), ("March 31, 2023", 160)):
        pdf.set_xy(x, y)
        pdf.cell(30, 5, text, align="R")
    y += 8
    rows = [*((name, *_figures(i)) for i, name in enumerate(PRODUCTS)), ("Total", "99,999", "88,888")]
    for n, (label, now, before) in enumerate(rows):
        if n == 6:  # the rest of the table goes on at the top of page 2
            pdf.add_page()
            y = 20.0
        pdf.set_xy(20, y)
        pdf.cell(80, 5, label)
        pdf.set_xy(120, y)
        pdf.cell(30, 5, now, align="R")
        pdf.set_xy(160, y)
        pdf.cell(30, 5, before, align="R")
        y += 6
    pdf.set_xy(20, y + 10)
    pdf.multi_cell(170, 5, "Revenue grew in every product line. Our outlook remains cautious for the year.")
    return bytes(pdf.output())


@pytest.fixture
def table_pdf(tmp_path: Path) -> Path:
    path = tmp_path / "revenue.pdf"
    path.write_bytes(_table_pdf())
    return path


def _row(i: int) -> str:
    now, before = _figures(i)
    return f"{PRODUCTS[i]} | Three Months Ended March 31, 2024: {now} | March 31, 2023: {before}"


def test_pdf_table_rows_carry_label_and_headers_over_two_pages(table_pdf: Path) -> None:
    doc = load_file(table_pdf, table_pdf.parent)
    assert doc.notes.tables == 1  # one table, though on two pages
    page_of = {}
    for i in range(len(PRODUCTS)):
        section = next(s for s in doc.sections if _row(i) in s.text)
        page_of[i] = section.page
        # Every part of the table opens with the caption (continued on page 2).
        assert section.text.startswith(CAPTION)
    assert [page_of[i] for i in range(len(PRODUCTS))] == [1] * 6 + [2] * 4
    assert "Total | Three Months Ended March 31, 2024: 99,999 | March 31, 2023: 88,888" in doc.text
    # Prose around the table is kept as prose.
    assert "Revenue grew in every product line." in doc.text
    # The page read again for a citation check holds the rows as ingest indexed them.
    data = table_pdf.read_bytes()
    assert _row(7) in (pdf_page_text(data, 2) or "")
    assert _row(2) in (pdf_page_text(data, 1) or "")
    assert _row(7) not in (pdf_page_text(data, 1) or "")


def test_each_chunk_of_a_long_table_opens_with_caption(table_pdf: Path, embedder) -> None:
    doc = load_file(table_pdf, table_pdf.parent)
    # The model's own token count and the default chunk size (a table part is sized to fit one).
    settings = Settings(_env_file=None)
    chunks = chunk_document(
        doc, embedder.count_tokens, max_tokens=settings.chunk_tokens, overlap=settings.chunk_overlap
    )
    table_chunks = [c for c in chunks if " | " in c.text]
    assert len(table_chunks) >= 3
    assert all(chunk.tokens <= settings.chunk_tokens for chunk in table_chunks)
    for chunk in table_chunks:
        assert chunk.text.startswith(CAPTION)
        # Whole rows: each row line in the chunk has its label and its headers.
        rows = [line for line in chunk.text.split("\n") if " | " in line]
        assert rows
        for line in rows:
            assert line.split(" | ")[0] and "March 31, 2023:" in line


def test_html_table_with_spanning_header(tmp_path: Path) -> None:
    path = tmp_path / "results.html"
    path.write_text(
        """<html><body><h1>Results</h1><p>Segment results (in millions):</p>
        <table><thead><tr><th></th><th colspan="2">Year Ended</th></tr>
        <tr><th>Segment</th><th>2023</th><th>2022</th></tr></thead>
        <tbody><tr><td>Cloud</td><td>$1,200</td><td>$900</td></tr>
        <tr><td>Devices</td><td>450</td><td>510</td></tr></tbody></table>
        <p>Cloud grew fastest.</p></body></html>""",
        encoding="utf-8",
    )
    doc = load_file(path, tmp_path)
    assert doc.notes.tables == 1
    assert "Segment results (in millions):\nSegment: Cloud | Year Ended 2023: $1,200 | 2022: $900" in doc.text
    assert "Segment: Devices | Year Ended 2023: 450 | 2022: 510" in doc.text
    assert "Cloud grew fastest." in doc.text


def test_docx_table_header_found_without_markup(tmp_path: Path) -> None:
    path = tmp_path / "memo.docx"
    document = docx.Document()
    document.add_paragraph("Headcount by office:")
    table = document.add_table(rows=3, cols=3)
    for r, row in enumerate([("Office", "2023", "2024"), ("Lisbon", "120", "135"), ("Oslo", "80", "77")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.save(path)
    doc = load_file(path, tmp_path)
    assert doc.notes.tables == 1
    assert (
        "Headcount by office:\nOffice: Lisbon | 2023: 120 | 2024: 135\nOffice: Oslo | 2023: 80 | 2024: 77"
        in doc.text
    )


def test_group_rows_name_their_rows_and_parts_repeat_caption() -> None:
    grid = [
        ["", "Q1", "Q2"],
        ["Cost of sales:", "", ""],
        ["Products", "10", "12"],
        ["Services", "4", "5"],
        ["Total cost of sales", "14", "17"],
    ]
    table = table_from_grid(grid, "Costs")
    parts = table_parts(table, part_chars=40)
    assert len(parts) == 3
    assert all(part.startswith("Costs\n") for part in parts)
    joined = "\n".join(parts)
    assert "Cost of sales: Products | Q1: 10 | Q2: 12" in joined
    assert "Total cost of sales | Q1: 14 | Q2: 17" in joined  # a total closes the group


def test_ask_about_a_figure_quotes_the_row_and_cites_its_page(tmp_path: Path, embedder) -> None:
    from bot.engine import Engine
    from ingest.pipeline import ingest_paths

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "revenue.pdf").write_bytes(_table_pdf())
    settings = Settings(home=tmp_path / "home", _env_file=None)
    ingest_paths([docs], settings, embedder)
    engine = Engine(settings, embedder=embedder)
    try:
        answer = engine.ask(
            "What was the net revenue of Product line Hazel in the three months ended March 31, 2024?"
        )
    finally:
        engine.close()
    assert not answer.abstained
    now, _ = _figures(7)
    assert any(
        c.quote.startswith("Product line Hazel | Three Months Ended March 31, 2024: " + now)
        for c in answer.citations
    )
    hazel = next(c for c in answer.citations if c.quote.startswith("Product line Hazel"))
    assert "p. 2" in hazel.location


def test_a_table_row_is_one_sentence() -> None:
    from index.sentences import clause_spans, split_sentences

    text = (
        "Earnings per share (in U.S. dollars). Diluted figures follow.\n"
        "Basic | Three Months Ended Dec. 30, 2023: $1.27 | Nine Months Ended Dec. 30, 2023: $4.69\n"
        "Diluted | Three Months Ended Dec. 30, 2023: $1.26 | Nine Months Ended Dec. 30, 2023: $4.67\n"
        "Shares rose."
    )
    sentences = [text[a:b] for a, b in split_sentences(text)]
    assert sentences == [
        "Earnings per share (in U.S. dollars).",
        "Diluted figures follow.",
        "Basic | Three Months Ended Dec. 30, 2023: $1.27 | Nine Months Ended Dec. 30, 2023: $4.69",
        "Diluted | Three Months Ended Dec. 30, 2023: $1.26 | Nine Months Ended Dec. 30, 2023: $4.67",
        "Shares rose.",
    ]
    # A long row's clauses all open with its label, so a quote cut to one still names its figure.
    row = sentences[2]
    assert [row[a:b] for a, b in clause_spans(row)] == [
        "Basic | Three Months Ended Dec. 30, 2023: $1.27",
        row,
    ]
