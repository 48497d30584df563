"""Tables on PDF pages, found from where the words sit and written as tables
(ingest.loaders.tables).

Only pages whose text looks tabular (`looks_tabular`: several lines ending in two or more
figures) are looked at. On such a page, words and their boxes come from PDFium's characters,
lines are rebuilt from the words' positions and cut into cells at wide gaps; a run of lines
ending in figures is a table. Its columns are the figures' right edges (figures are
right-aligned), its column header the lines just above whose words sit over the columns (read
top to bottom: "Three Months Ended" over "July 1," over "2023"), its caption the line or two
above that. A table without a header of its own takes the header of the table before it, higher
on the page or at the foot of the page before, when it has as many columns.

Rule-based, and on PDFium's characters rather than pdfplumber's: pdfplumber's ruling-line table
finder misses the headers of financial statements (their rules are drawn under figures, not
around headers) and cuts one statement into dozens of tables, and reading words with pdfplumber
took 2.6 to 7 s of CPU per 10-Q here (some 100 s for 20 filings, a third of their whole ingest)
where PDFium's character boxes take 0.1 to 0.2 s.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ingest.loaders.document import error_summary
from ingest.loaders.tables import Table, is_figure, is_year, table_from_grid, table_parts
from ingest.loaders.text import Block, normalize_text

log = logging.getLogger(__name__)

# -- the cheap test on PDFium's text ----------------------------------------------------------

_FIGURE_TOKEN = re.compile(r"^\(?[$€£]?\(?[-+]?\d[\d,.]*\)?%?\)?$|^[—–]$")
# A page is looked at for tables when at least this many lines end in two figures.
_MIN_FIGURE_LINES = 4


def looks_tabular(text: str) -> bool:
    """Whether a page's (PDFium) text has lines of figures, as a table's rows do."""
    count = 0
    for line in text.split("\n"):
        tokens = line.split()[-8:]
        figures = 0
        for token in reversed(tokens):
            if token in ("$", "%", "€", "£"):
                continue
            if not _FIGURE_TOKEN.match(token) or not any(ch.isdigit() or ch in "—–" for ch in token):
                break
            figures += 1
        if figures >= 2:
            count += 1
            if count >= _MIN_FIGURE_LINES:
                return True
    return False


# -- lines and cells from word positions --------------------------------------------------------


@dataclass
class _Cell:
    text: str
    x0: float
    x1: float


@dataclass
class _Line:
    top: float
    bottom: float
    cells: list[_Cell]
    label: str = ""
    values: list[_Cell] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(cell.text for cell in self.cells)

    @property
    def height(self) -> float:
        return max(1.0, self.bottom - self.top)

    @property
    def is_row(self) -> bool:
        """Ends in figures after its label; a line ending in years alone is a header ("2023 2022",
        "Three Months Ended September 30, 2023 2022")."""
        return bool(self.values) and not all(is_year(v.text) for v in self.values)

    @property
    def is_label_only(self) -> bool:
        return not self.values and len(self.cells) == 1 and len(self.text.split()) <= 12


def _lines(words: Sequence[dict[str, Any]]) -> list[_Line]:
    """Words grouped into lines by their baseline, each line cut into cells at wide gaps."""
    lines: list[list[dict[str, Any]]] = []
    for word in sorted(words, key=lambda w: (round(w["bottom"]), w["x0"])):
        if lines and abs(lines[-1][0]["bottom"] - word["bottom"]) <= 2.0:
            lines[-1].append(word)
        else:
            lines.append([word])
    out = []
    for group in lines:
        group.sort(key=lambda w: w["x0"])
        height = max(w["bottom"] - w["top"] for w in group)
        cells: list[_Cell] = []
        for word in group:
            # Word spacing is a third of the font size or so; a gap of a whole size is a cell border.
            # A currency sign opens a cell: it stands before its figure, apart from the one before.
            if cells and word["x0"] - cells[-1].x1 <= 0.9 * height and word["text"] not in _CURRENCY:
                # A closing mark set a little apart ("(260 )") belongs to its figure.
                glue = "" if word["text"] in _CLOSING else " "
                cells[-1].text += glue + word["text"]
                cells[-1].x1 = word["x1"]
            else:
                cells.append(_Cell(word["text"], word["x0"], word["x1"]))
        line = _Line(min(w["top"] for w in group), max(w["bottom"] for w in group), _joined(cells))
        _split_values(line)
        out.append(line)
    return out


_CURRENCY = frozenset({"$", "€", "£", "¥"})
_CLOSING = frozenset({")", "%", "%)"})


def _joined(cells: list[_Cell]) -> list[_Cell]:
    """A currency sign set apart from its figure ("$   60,584") joins it; so does a lone "%"."""
    out: list[_Cell] = []
    pending: _Cell | None = None
    for cell in cells:
        if cell.text in ("$", "€", "£", "¥", "(", "$ ("):
            pending = cell if pending is None else _Cell(pending.text + cell.text, pending.x0, cell.x1)
            continue
        if pending is not None:
            cell = _Cell(f"{pending.text}{cell.text}", pending.x0, cell.x1)
            pending = None
        if cell.text in ("%", ")", "%)") and out:
            out[-1] = _Cell(out[-1].text + cell.text, out[-1].x0, cell.x1)
            continue
        out.append(cell)
    if pending is not None:
        out.append(pending)
    return out


def _split_values(line: _Line) -> None:
    k = len(line.cells)
    while k > 0 and is_figure(line.cells[k - 1].text):
        k -= 1
    line.values = line.cells[k:]
    line.label = " ".join(cell.text for cell in line.cells[:k])


# -- tables from lines -----------------------------------------------------------------------


@dataclass
class _Region:
    first: int  # index of the first line it takes (caption and header included)
    last: int  # index of its last line
    table: Table
    has_header: bool


def _columns(rows: Sequence[_Line]) -> list[tuple[float, float]]:
    """Column spans: figures are right-aligned, so values whose right edges are close share one."""
    edges = sorted((v.x1, v.x0) for row in rows for v in row.values)
    spans: list[list[float]] = []
    for x1, x0 in edges:
        if spans and x1 - spans[-1][1] <= 12:
            spans[-1][0] = min(spans[-1][0], x0)
            spans[-1][1] = x1
        else:
            spans.append([x0, x1])
    return [(a, b) for a, b in spans]


def _column_of(cell: _Cell, columns: Sequence[tuple[float, float]]) -> int:
    return min(range(len(columns)), key=lambda j: abs(columns[j][1] - cell.x1))


def _header_columns(
    header: Sequence[_Line], columns: Sequence[tuple[float, float]]
) -> tuple[tuple[str, ...], ...]:
    """Each column's header, one level per header line: the header cells over it, top to
    bottom (a cell over several columns, "Three Months Ended", heads each of them). Words to
    the left of the columns on a header line head them all ("Three Months Ended September 30,"
    before "2023  2022"), unless in brackets: a unit ("(In millions)"), which the caption keeps."""
    left = min(a for a, _ in columns) - 20
    levels: list[list[str]] = [[] for _ in columns]
    for line in header:
        words: list[list[str]] = [[] for _ in columns]
        aside = [c.text for c in line.cells if c.x1 <= left and not c.text.startswith("(")]
        for cell in line.cells:
            if cell.x1 <= left:
                continue
            over = [j for j, (a, b) in enumerate(columns) if min(cell.x1, b + 3) - max(cell.x0, a - 3) > 0]
            if not over:
                centre = (cell.x0 + cell.x1) / 2
                nearest = min(
                    range(len(columns)), key=lambda j: abs((columns[j][0] + columns[j][1]) / 2 - centre)
                )
                a, b = columns[nearest]
                if abs((a + b) / 2 - centre) > 40:
                    continue
                over = [nearest]
            for j in over:
                words[j].append(cell.text)
        for j, parts in enumerate(words):
            if aside:  # a level of its own, shared by all the columns
                levels[j].append(" ".join(aside))
            if parts:
                levels[j].append(" ".join(parts))
    return tuple(tuple(parts) for parts in levels)


def _is_header_line(line: _Line, columns: Sequence[tuple[float, float]]) -> bool:
    """Cells over the columns, and at most a short one (a unit, "(In millions)") to their left."""
    left = min(a for a, _ in columns) - 20
    over = [c for c in line.cells if c.x1 > left]
    aside = [c for c in line.cells if c.x1 <= left]
    if not over or len(aside) > 1 or any(len(c.text.split()) > 8 for c in aside):
        return False
    # A title centred over the table is its caption: header cells are short and start over
    # the columns.
    if any(len(c.text.split()) > 6 or (c.x0 < left and len(c.text.split()) > 3) for c in over):
        return False
    # Figures over the columns are a header only when they are years.
    return all(not is_figure(c.text) or is_year(c.text) for c in over)


def _near(upper: _Line, lower: _Line, lines_apart: float) -> bool:
    return lower.top - upper.bottom <= lines_apart * max(upper.height, lower.height)


def _row_follows(lines: Sequence[_Line], k: int) -> bool:
    """Whether a row comes at line k, or after one more label-only line ("Commitments and
    contingencies", "Stockholders' equity:")."""
    if k < len(lines) and lines[k].is_row:
        return True
    return k + 1 < len(lines) and lines[k].is_label_only and lines[k + 1].is_row


def _regions(lines: Sequence[_Line]) -> list[tuple[int, int]]:
    """Runs of lines that are rows (label-only lines between rows allowed), at least three rows long."""
    out = []
    i = 0
    while i < len(lines):
        if not lines[i].is_row:
            i += 1
            continue
        last, rows, k = i, 1, i + 1
        while k < len(lines) and _near(lines[k - 1], lines[k], 3.0):
            if lines[k].is_row:
                last, rows = k, rows + 1
            elif not (lines[k].is_label_only and _row_follows(lines, k + 1)):
                break
            k += 1
        if rows >= 3:
            out.append((i, last))
        i = last + 1
    return out


def _trimmed(lines: Sequence[_Line], first: int, last: int) -> int:
    """The region's last line, leaving out closing rows whose figures stand in no column of the
    other rows (a footer's page number)."""
    while True:
        rows = [line for line in lines[first : last + 1] if line.is_row]
        if len(rows) <= 3:
            return last
        columns = _columns(rows[:-1])
        if all(any(abs(b - v.x1) <= 12 for _, b in columns) for v in rows[-1].values):
            return last
        last -= 1
        while not lines[last].is_row:
            last -= 1


def _table(lines: Sequence[_Line], first: int, last: int, taken: int) -> _Region:
    last = _trimmed(lines, first, last)
    body = list(lines[first : last + 1])
    rows = [line for line in body if line.is_row]
    columns = _columns(rows)
    label_left = min((line.cells[0].x0 for line in rows if line.label), default=0.0)
    # Group labels just above the first row ("Net sales:") belong to the table.
    while (
        first - 1 > taken
        and lines[first - 1].is_label_only
        and abs(lines[first - 1].cells[0].x0 - label_left) <= 6
        and lines[first - 1].cells[0].x1 < min(a for a, _ in columns)
        and _near(lines[first - 1], lines[first], 2.0)
    ):
        first -= 1
        body.insert(0, lines[first])
    top = first
    header: list[_Line] = []
    while top - 1 > taken and len(header) < 5 and _near(lines[top - 1], lines[top], 2.5):
        if not _is_header_line(lines[top - 1], columns):
            break
        top -= 1
        header.insert(0, lines[top])
    caption: list[str] = []
    while top - 1 > taken and len(caption) < 2 and _near(lines[top - 1], lines[top], 2.5):
        line = lines[top - 1]
        if line.is_row or len(line.text) > 200:
            break
        top -= 1
        caption.insert(0, line.text)
    grid: list[list[str]] = []
    for line in body:
        cells = [""] * len(columns)
        for value in line.values:
            j = _column_of(value, columns)
            cells[j] = f"{cells[j]} {value.text}".strip()
        label = line.label if line.values else line.text
        # A label too long for its line goes on over the next, where the figures are.
        if grid and not any(grid[-1][1:]) and label[:1].islower():
            grid[-1] = [f"{grid[-1][0]} {label}", *cells]
        else:
            grid.append([label, *cells])
    table = table_from_grid(grid, " ".join(caption), header_rows=0)
    table = Table(table.caption, _header_columns(header, columns), table.rows)
    return _Region(top, last, table, bool(header))


@dataclass(frozen=True)
class PageTables:
    """A page's text in blocks: (text, whether it is a part of a table), and how many tables
    start on it (one going on from the page before is not counted again)."""

    blocks: tuple[tuple[str, bool], ...]
    tables: int


# How many lines at the top and at the bottom of a page may be running headers or footers.
_EDGE_LINES = 2


def _page_blocks(
    words: Sequence[dict[str, Any]], carried: Table | None, running: Callable[[str], bool] = lambda _: False
) -> tuple[PageTables, Table | None]:
    lines = _lines(words)
    # Running headers and footers are left out here as in the page's text (see pdf_layout).
    for _ in range(_EDGE_LINES):
        if lines and running(lines[0].text):
            lines = lines[1:]
        if lines and running(lines[-1].text):
            lines = lines[:-1]
    regions: list[_Region] = []
    taken = -1
    for first, last in _regions(lines):
        if first <= taken:
            continue
        region = _table(lines, first, last, taken)
        regions.append(region)
        taken = region.last
    # A table without a header of its own goes on from the one before (higher on the page, or
    # on the page before) when it has as many columns.
    continued = 0
    for n, region in enumerate(regions):
        if region.has_header:
            carried = region.table
        elif carried is not None and len(carried.columns) == len(region.table.columns):
            caption = region.table.caption or f"{carried.caption} (continued)".strip()
            table = Table(caption, carried.columns, region.table.rows)
            regions[n] = _Region(region.first, region.last, table, True)
            continued += 1
    blocks: list[tuple[str, bool]] = []
    prose: list[str] = []
    i = 0
    for region in regions:
        prose.extend(line.text for line in lines[i : region.first])
        if prose:
            blocks.append(("\n".join(prose), False))
            prose = []
        blocks.extend((part, True) for part in table_parts(region.table))
        i = region.last + 1
    prose.extend(line.text for line in lines[i:])
    if prose:
        blocks.append(("\n".join(prose), False))
    return PageTables(tuple(blocks), len(regions) - continued), carried


def _page_words(page: Any) -> list[dict[str, Any]]:
    """The page's words with their boxes (x0, x1, top, bottom from the top of the page), from
    PDFium's characters: a word ends at a space (typed or one PDFium inferred) or a gap."""
    import pypdfium2.raw as pdfium_c

    textpage = page.get_textpage()
    height = page.get_height()
    words: list[dict[str, Any]] = []
    word: dict[str, Any] | None = None
    for i in range(textpage.count_chars()):
        char = chr(pdfium_c.FPDFText_GetUnicode(textpage.raw, i))
        if char.isspace() or not char.isprintable() or pdfium_c.FPDFText_IsGenerated(textpage.raw, i) == 1:
            word = None
            continue
        # The loose box spans the font's ascent and descent: the same for every letter of a line.
        left, bottom, right, top = textpage.get_charbox(i, loose=True)
        top, bottom = height - top, height - bottom
        if word is not None and abs(word["bottom"] - bottom) <= 2 and -1 <= left - word["x1"] <= 2:
            word["text"] += char
            word["x1"] = max(word["x1"], right)
        else:
            word = {"text": char, "x0": left, "x1": right, "top": top, "bottom": bottom}
            words.append(word)
    return words


def read_tables(
    document: Any, numbers: Sequence[int], running: Callable[[str], bool] = lambda _: False
) -> dict[int, PageTables]:
    """The pages `numbers` (1-based, ascending) of a PDFium document read with their tables. A
    table at the top of a page with no header takes the header of the last table on the page
    before, when that page is among `numbers`. A page that cannot be read is left out.
    `running(line)`: whether a line at a page's top or bottom is a running header or footer."""
    out: dict[int, PageTables] = {}
    carried: Table | None = None
    previous = -1
    for number in numbers:
        if number != previous + 1:
            carried = None
        previous = number
        try:
            words = _page_words(document[number - 1])
        except Exception as err:
            log.warning("PDF page %d: tables not read: %s", number, error_summary(err))
            carried = None
            continue
        out[number], carried = _page_blocks(words, carried, running)
    return out


def page_blocks(
    document: Any,
    pages: Sequence[tuple[int, str]],
    clean: Callable[[str], str],
    running: Callable[[str], bool] = lambda _: False,
) -> tuple[list[Block], int]:
    """Each page's blocks, from (number, PDFium text) in page order: a page that looks tabular
    is read again with its tables (a table part a block of its own), the others stay as they
    are. `clean` is applied to the text around tables. Also: how many tables were found."""
    try:
        read = read_tables(document, [number for number, text in pages if looks_tabular(text)], running)
    except Exception as err:  # tables are a bonus: the pages' text as PDFium gives it
        log.warning("PDF tables not read: %s", error_summary(err))
        read = {}
    blocks: list[Block] = []
    for number, text in pages:
        found = read.get(number)
        if found is None or not _has_table(found):  # the page's text as given (see pdf_layout)
            blocks.append(Block(text, page=number))
            continue
        blocks.extend(
            Block(part if is_table else clean(part), page=number, own_section=is_table)
            for part, is_table in found.blocks
        )
    return blocks, sum(found.tables for found in read.values() if _has_table(found))


def _has_table(found: PageTables) -> bool:
    return any(is_table for _, is_table in found.blocks)


def tabular_page_text(
    document: Any,
    number: int,
    page_text: Callable[[int], str | None],
    clean: Callable[[str], str],
    running: Callable[[str], bool] = lambda _: False,
) -> str | None:
    """Page `number`'s text as `page_blocks` makes it (blocks joined by blank lines), or None
    when the page does not look tabular. `page_text(n)` is page n's PDFium text."""
    text = page_text(number)
    if text is None or not looks_tabular(text):
        return None
    # A table's header comes from the page before when that page is read for tables too: go
    # back over the run of tabular pages ending here, as ingest reads them.
    run = [number]
    while run[0] > 1:
        before = page_text(run[0] - 1)
        if before is None or not looks_tabular(before):
            break
        run.insert(0, run[0] - 1)
    found = read_tables(document, run, running).get(number)
    if found is None or not _has_table(found):
        return text
    parts = (normalize_text(part if is_table else clean(part)) for part, is_table in found.blocks)
    return "\n\n".join(part for part in parts if part)
