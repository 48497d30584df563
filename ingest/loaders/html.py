"""HTML: the page's text in blocks, without scripts, navigation and other page furniture; tables
written as tables (ingest.loaders.tables)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ingest.loaders.document import Budget, FileNotes, LoadError, Parsed, error_summary
from ingest.loaders.plain import BINARY_SNIFF_BYTES, UTF16_BOMS
from ingest.loaders.tables import caption_of, is_layout_grid, table_from_grid, table_parts
from ingest.loaders.text import WHITESPACE, Block, assemble, first_line, title_line

if TYPE_CHECKING:
    from bs4 import BeautifulSoup, Tag


_HTML_DROP = frozenset({"script", "style", "nav", "footer", "header", "noscript", "template", "head"})
_HTML_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_HTML_BLOCKS = frozenset(
    {
        "p",
        "div",
        "li",
        "ul",
        "ol",
        "dl",
        "dt",
        "dd",
        "table",
        "thead",
        "tbody",
        "tfoot",
        "caption",
        "blockquote",
        "pre",
        "section",
        "article",
        "main",
        "aside",
        "figure",
        "figcaption",
        "address",
        "form",
        "fieldset",
        "details",
        "summary",
        "hr",
        "body",
        "html",
    }
)


def _html_blocks(soup: BeautifulSoup) -> tuple[list[Block], int]:
    """The page's blocks, and how many tables were kept as tables."""
    from bs4 import NavigableString, Tag
    from bs4.element import PreformattedString

    blocks: list[Block] = []
    buffer: list[str] = []
    tables = 0

    def flush() -> None:
        if buffer:
            blocks.append(Block("".join(buffer)))
            buffer.clear()

    def dropped(tag: Tag) -> bool:
        if tag.name not in _HTML_DROP:
            return tag.has_attr("hidden")
        # An article's own <header> usually holds its headline, unlike the site banner.
        return not (tag.name == "header" and tag.find_parent(["article", "main"]) is not None)

    def walk(node: Tag, preformatted: bool) -> None:
        nonlocal tables
        for child in node.children:
            if isinstance(child, NavigableString):
                # Comments, CDATA, doctypes and processing instructions are not content.
                if isinstance(child, PreformattedString):
                    continue
                buffer.append(str(child) if preformatted else WHITESPACE.sub(" ", str(child)))
                continue
            if not isinstance(child, Tag) or dropped(child):
                continue
            name = child.name
            if name in _HTML_HEADINGS:
                flush()
                blocks.append(Block(child.get_text(" "), is_heading=True))
            elif name == "table" and (grid := _grid(child)) is not None:
                flush()
                _add_table(blocks, child, grid)
                tables += 1
            elif name == "tr":
                flush()
                cells = [
                    cell.get_text(" ", strip=True) for cell in child.find_all(["td", "th"], recursive=False)
                ]
                blocks.append(Block(" | ".join(cell for cell in cells if cell)))
            elif name == "br":
                buffer.append("\n")
            elif name in _HTML_BLOCKS:
                flush()
                walk(child, preformatted or name == "pre")
                flush()
            else:
                walk(child, preformatted)

    walk(soup, False)
    flush()
    return [Block(_strip_lines(b.text), b.is_heading, own_section=b.own_section) for b in blocks], tables


def _grid(table: Tag) -> tuple[list[list[str]], int] | None:
    """The table's cells row by row (a cell spanning columns repeated in each) and how many
    leading rows are its header (<thead>, or rows of <th> only); None for a layout table."""
    rows = [tr for tr in table.find_all("tr") if tr.find_parent("table") is table]
    grid: list[list[str]] = []
    header = 0
    for tr in rows:
        cells = tr.find_all(["td", "th"], recursive=False)
        row: list[str] = []
        for cell in cells:
            try:
                span = max(1, min(int(str(cell.get("colspan") or 1)), 50))
            except ValueError:
                span = 1
            row.extend([cell.get_text(" ", strip=True)] * span)
        if (
            header == len(grid)
            and cells
            and (tr.find_parent("thead") is not None or all(cell.name == "th" for cell in cells))
        ):
            header += 1
        grid.append(row)
    return None if is_layout_grid(grid) else (grid, header)


def _add_table(blocks: list[Block], table: Tag, found: tuple[list[list[str]], int]) -> None:
    grid, header = found
    caption_tag = table.find("caption")
    caption = caption_tag.get_text(" ", strip=True) if caption_tag is not None else ""
    while blocks and not blocks[-1].text.strip():
        blocks.pop()
    if not caption and blocks and not blocks[-1].own_section:
        caption = caption_of(blocks[-1].text)
        # The line above moves into the table (it opens each part); a heading stays a heading.
        if caption and not blocks[-1].is_heading:
            blocks.pop()
    parsed = table_from_grid(grid, caption, header_rows=header or None)
    blocks.extend(Block(part, own_section=True) for part in table_parts(parsed))


def _strip_lines(text: str) -> str:
    return "\n".join(line.strip() for line in text.split("\n"))


def load_html(data: bytes, budget: Budget) -> Parsed:
    if b"\x00" in data[:BINARY_SNIFF_BYTES] and not data.startswith(UTF16_BOMS):
        raise LoadError("binary file, not text")
    from bs4 import BeautifulSoup

    try:
        # Bytes, not str: BeautifulSoup honours the page's declared charset.
        soup = BeautifulSoup(data, "lxml")
        title_tag = soup.find("title")
        title = title_line(title_tag.get_text(" ")) if title_tag else ""
        if not title:
            h1 = soup.find("h1")
            title = title_line(h1.get_text(" ")) if h1 else ""
        blocks, tables = _html_blocks(soup)
    except LoadError:
        raise
    except Exception as err:
        raise LoadError(f"could not parse HTML: {error_summary(err)}") from err
    text, sections = assemble(blocks)
    return Parsed(title or first_line(text), text, sections, FileNotes(tables=tables))
