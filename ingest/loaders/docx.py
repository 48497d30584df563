"""Word (DOCX) files: paragraphs and tables (written as tables, ingest.loaders.tables), headings
from paragraph styles; the zip's unpacked size checked before anything inflates."""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING

from ingest.loaders.document import BYTES_PER_MB, Budget, FileNotes, LoadError, Parsed, error_summary
from ingest.loaders.tables import caption_of, is_layout_grid, table_from_grid, table_parts
from ingest.loaders.text import Block, assemble, first_line, title_line

if TYPE_CHECKING:
    from docx.table import Table


_DOCX_HEADING_STYLE = re.compile(r"^(Heading \d|Title)$", re.IGNORECASE)


def _check_unzipped(data: bytes, limit: int | None) -> None:
    """Refuse a zip whose parts unpack to more than `limit` bytes, before anything inflates.

    The declared sizes can be trusted for this: zipfile never returns more than an entry
    declares, so a part that lies only comes out truncated (and fails its CRC check)."""
    import zipfile

    if limit is None:
        return
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            total = sum(item.file_size for item in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise LoadError(f"corrupt DOCX: {error_summary(err)}") from None
    if total > limit:
        raise LoadError(
            f"unpacks to {total / BYTES_PER_MB:,.0f} MB, over the {limit / BYTES_PER_MB:.4g} MB limit "
            "(DOSSIER_MAX_UNZIPPED_MB)"
        )


def load_docx(data: bytes, budget: Budget) -> Parsed:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    _check_unzipped(data, budget.unzipped_bytes)
    try:
        document = docx.Document(io.BytesIO(data))
        blocks: list[Block] = []
        first_heading = ""
        chars = 0
        tables = 0
        for item in document.iter_inner_content():
            before = len(blocks)
            if isinstance(item, Paragraph):
                style = item.style.name if item.style is not None else ""
                is_heading = bool(style and _DOCX_HEADING_STYLE.match(style))
                if is_heading and not first_heading:
                    first_heading = title_line(item.text)
                blocks.append(Block(item.text, is_heading=is_heading))
            elif isinstance(item, Table):
                grid = _docx_grid(item)
                tables += _add_table(blocks, grid)
                # Counted from its cells: the line above may have moved into the table.
                before = len(blocks)
                chars += sum(len(cell) for row in grid for cell in row)
            chars += sum(len(block.text) for block in blocks[before:])
            budget.check_chars(chars)
        core_title = title_line(document.core_properties.title or "")
    except (LoadError, MemoryError):
        raise
    except Exception as err:
        raise LoadError(f"corrupt DOCX: {error_summary(err)}") from err
    text, sections = assemble(blocks)
    return Parsed(core_title or first_heading or first_line(text), text, sections, FileNotes(tables=tables))


def _docx_grid(table: Table) -> list[list[str]]:
    # A merged cell is reported once per grid column it spans, which keeps the columns aligned.
    return [[title_line(cell.text, limit=10_000) for cell in row.cells] for row in table.rows]


def _add_table(blocks: list[Block], grid: list[list[str]]) -> int:
    """The table's blocks added (1 returned), or, for a table that lays out text, its rows as
    lines (0 returned)."""
    if is_layout_grid(grid):
        for row in grid:
            cells: list[str] = []
            for value in row:
                if value and (not cells or cells[-1] != value):
                    cells.append(value)
            blocks.append(Block(" | ".join(cells)))
        return 0
    caption = ""
    if blocks and not blocks[-1].own_section:
        caption = caption_of(blocks[-1].text)
        # The line above moves into the table (it opens each part); a heading stays a heading.
        if caption and not blocks[-1].is_heading:
            blocks.pop()
    parsed = table_from_grid(grid, caption)
    blocks.extend(Block(part, own_section=True) for part in table_parts(parsed))
    return 1
