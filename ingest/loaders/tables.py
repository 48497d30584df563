"""Tables kept as tables: one shared way to write a table of any format (PDF, HTML, DOCX) as text.

Each row becomes one line that carries its row label and, before each value, the header of
the value's column ("Net sales | Three Months Ended July 1, 2023: $81,797 | ..."), so a row
quoted alone still says what its figures are. A table is written in parts small enough for
one chunk, each part opening with the table's caption and column header: a chunk cut from the
middle of a long table keeps them. Rows are lines holding " | ", which the sentence splitter
(index.sentences) keeps whole.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ingest.loaders.text import WHITESPACE

CELL_SEPARATOR = " | "
# A part of a table (caption and rows) fits one chunk of the default size: 200 word pieces, less
# the title's; rows of figures cost about one word piece per 3.5 characters.
PART_CHARS = 560
_CAPTION_CHARS = 120
# A figure, a percentage, a currency amount, or a dash standing for nil.
_NUMBER = re.compile(r"^[$€£¥]?\s?\(?[-+]?[$€£¥]?\s?\d[\d,.]*\)?\s?%?\)?$|^[—–-]+$")
_YEAR = re.compile(r"^(19|20)\d\d$")


def is_figure(cell: str) -> bool:
    return bool(_NUMBER.match(cell.strip()))


def is_year(cell: str) -> bool:
    return bool(_YEAR.match(cell.strip()))


@dataclass(frozen=True)
class Table:
    """A table read from a document: its caption, the header of each value column (its lines or
    levels, top to bottom: "Three Months Ended", "July 1, 2023"), and rows of (label, one value
    per column)."""

    caption: str
    columns: tuple[tuple[str, ...], ...]
    rows: tuple[tuple[str, tuple[str, ...]], ...]
    label_header: str = ""  # the header of the label column ("Name", "Segment"), when it has one


def _clean(text: str) -> str:
    # A cell holding " | " would read as two cells.
    return WHITESPACE.sub(" ", text).replace(CELL_SEPARATOR, " / ").strip()


def row_line(label: str, values: Sequence[str], columns: Sequence[Sequence[str]]) -> str:
    """One row as one line: the label, then each value under its column header. The header
    levels a value shares with the value before are said once, as a reader reads a header
    spanning columns ("Three Months Ended July 1, 2023: 81,797 | June 25, 2022: 82,959")."""
    cells = [_clean(label)]
    previous: list[str] = []
    for i, value in enumerate(values):
        value = _clean(value)
        if not value:
            continue
        levels = [_clean(level) for level in columns[i]] if i < len(columns) else []
        levels = [level for level in levels if level]
        shared = 0
        while shared < min(len(levels), len(previous)) - 1 and levels[shared] == previous[shared]:
            shared += 1
        header = " ".join(levels[shared:])
        previous = levels
        cells.append(f"{header}: {value}" if header else value)
    return CELL_SEPARATOR.join(cells)


def table_parts(table: Table, part_chars: int = PART_CHARS) -> list[str]:
    """The table as text in parts, each opening with the caption. The column headers go with
    the values in every row (`row_line`), so each part also says what its columns are."""
    caption = _short(_clean(table.caption), _CAPTION_CHARS)
    named = f"{table.label_header}: " if table.label_header else ""
    lines = [row_line(named + label if label else "", values, table.columns) for label, values in table.rows]
    lines = [line for line in lines if line.strip(" |")]
    parts: list[list[str]] = []
    size = part_chars
    for line in lines:
        if size + len(line) + 1 > part_chars:
            parts.append([caption] if caption else [])
            size = len(caption)
        parts[-1].append(line)
        size += len(line) + 1
    return ["\n".join(part) for part in parts]


def _short(text: str, limit: int) -> str:
    """`text` cut at a word to at most `limit` characters."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:(")


def table_from_grid(
    grid: Sequence[Sequence[str]], caption: str = "", header_rows: int | None = None
) -> Table:
    """A table from a grid of cell texts (HTML, DOCX): the first column holds the row labels;
    the leading rows without figures (or `header_rows` of them, when the format marks its
    header) make each column's header, read top to bottom."""
    width = max((len(row) for row in grid), default=0)
    cells = [[_clean(c) for c in row] + [""] * (width - len(row)) for row in grid]
    if header_rows is None:
        header_rows = 0
        # A header row has no figures in it (years excepted), and a body follows it.
        while (
            header_rows < min(3, len(cells) - 1)
            and any(cells[header_rows][1:])
            and not any(is_figure(c) and not is_year(c) for c in cells[header_rows][1:])
        ):
            header_rows += 1
    columns: list[tuple[str, ...]] = []
    for j in range(width):
        levels: list[str] = []
        for row in cells[:header_rows]:
            # A cell spanning rows may be repeated in each: say it once.
            if row[j] and (not levels or levels[-1] != row[j]):
                levels.append(row[j])
        columns.append(tuple(levels))
    rows = tuple((row[0], tuple(row[1:])) for row in cells[header_rows:] if any(row))
    label_header = " ".join(columns[0]) if columns else ""
    return Table(caption, tuple(columns[1:]), _grouped(rows), label_header)


def _grouped(rows: Sequence[tuple[str, tuple[str, ...]]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Rows under a label-only row ("Cost of sales:") are named with it ("Cost of sales: Services"),
    until the next such row or a total."""
    out: list[tuple[str, tuple[str, ...]]] = []
    group = ""
    for label, values in rows:
        if not any(values):
            group = label.rstrip(":") if label and len(label) <= 80 else ""
            out.append((label, values))
            continue
        named = f"{group}: {label}" if group and label and not label.lower().startswith("total") else label
        out.append((named, values))
        if label.lower().startswith("total"):
            group = ""
    # A label-only row says nothing once its rows carry it.
    return tuple((label, values) for label, values in out if any(values) or not _is_group(label, out))


def _is_group(label: str, rows: Sequence[tuple[str, tuple[str, ...]]]) -> bool:
    group = label.rstrip(":")
    return bool(group) and any(other.startswith(f"{group}: ") for other, _ in rows)


def caption_of(previous: str) -> str:
    """The text just above a table, when it is short enough to be its caption."""
    previous = _clean(previous)
    return previous if 0 < len(previous) <= 200 else ""


def is_layout_grid(grid: Sequence[Sequence[str]]) -> bool:
    """A grid used to lay out a page rather than to tabulate: one column, or cells of prose."""
    width = max((sum(1 for c in row if c.strip()) for row in grid), default=0)
    return width < 2 or len(grid) < 2 or any(len(c) > 400 for row in grid for c in row)
