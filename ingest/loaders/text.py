"""Normalised document text, and the sections it is cut into at headings and pages."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from ingest.loaders.document import MAX_TITLE_CHARS, Section

# -- text normalisation ----------------------------------------------------------------------

# Characters that end a line in some producer's idea of text (PDF form feeds, Unicode
# separators); treated as newlines so they do not glue lines together.
_LINE_BREAKS = re.compile(r"\r\n?|[\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
_INVISIBLE = re.compile(r"[\u00ad\u200b\u2060\ufeff]")
# Unicode category Cc minus "\n"; tabs are already spaces by the time this runs.
_CONTROLS = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
_HSPACE = re.compile(r"[^\S\n]+")
_TRAILING_SPACE = re.compile(r" +\n")
_MANY_NEWLINES = re.compile(r"\n{3,}")
WHITESPACE = re.compile(r"\s+")

_FOLD_TABLE = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
    }
)


def normalize_text(text: str) -> str:
    """Canonical form of document text: NFC, `\\n` line ends, single spaces, at most one blank line.

    Curly quotes and dashes are kept, because answers quote the source verbatim.
    """
    text = unicodedata.normalize("NFC", text)
    text = _LINE_BREAKS.sub("\n", text)
    text = _INVISIBLE.sub("", text)
    # Tabs become spaces before control characters go, so tab-separated words stay apart.
    text = _HSPACE.sub(" ", text)
    text = _CONTROLS.sub("", text)
    text = _HSPACE.sub(" ", text)
    text = _TRAILING_SPACE.sub("\n", text + "\n")
    text = _MANY_NEWLINES.sub("\n\n", text)
    return text.strip()


def fold_for_match(text: str) -> str:
    """A loose comparison key: case, Unicode compatibility forms, quote/dash style and spacing ignored."""
    text = unicodedata.normalize("NFKC", text).casefold().translate(_FOLD_TABLE)
    return WHITESPACE.sub(" ", text).strip()


def title_line(text: str, limit: int = MAX_TITLE_CHARS) -> str:
    return WHITESPACE.sub(" ", text).strip()[:limit].rstrip()


def first_line(text: str) -> str:
    for line in text.split("\n"):
        if line.strip():
            return title_line(line)
    return ""


# -- assembling text and sections ------------------------------------------------------------


@dataclass(frozen=True)
class Break:
    """Where a new section starts in the text, and what it is filed under."""

    offset: int
    heading: str = ""
    page: int | None = None


@dataclass(frozen=True)
class Block:
    text: str
    is_heading: bool = False
    page: int | None = None
    # A part of a table (ingest.loaders.tables) starts a section, so each chunk of a long table
    # opens with its caption; the text after the table goes on in the last part's section.
    own_section: bool = False


def split_sections(text: str, breaks: list[Break]) -> tuple[Section, ...]:
    """Cut `text` at the breaks; each piece is trimmed of surrounding whitespace, empty pieces dropped."""
    if not breaks or breaks[0].offset != 0:
        breaks = [Break(0), *breaks]
    sections: list[Section] = []
    for i, brk in enumerate(breaks):
        end = breaks[i + 1].offset if i + 1 < len(breaks) else len(text)
        start = brk.offset
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            sections.append(Section(text[start:end], start, end, brk.heading, brk.page))
    return tuple(sections)


def assemble(blocks: Sequence[Block]) -> tuple[str, tuple[Section, ...]]:
    """Join blocks with blank lines; a heading block, a new page or a table part starts a new section."""
    parts: list[str] = []
    breaks: list[Break] = []
    pos = 0
    heading = ""
    page: int | None = None
    for block in blocks:
        body = normalize_text(block.text)
        if not body:
            continue
        if parts:
            pos += 2
        if block.is_heading:
            heading = title_line(body)
        if block.is_heading or not parts or block.page != page or block.own_section:
            breaks.append(Break(pos, heading, block.page))
        page = block.page
        parts.append(body)
        pos += len(body)
    text = "\n\n".join(parts)
    return text, split_sections(text, breaks)


def line_spans(text: str) -> list[tuple[int, str]]:
    spans = []
    pos = 0
    for line in text.split("\n"):
        spans.append((pos, line))
        pos += len(line) + 1
    return spans


# -- lines of the original file ----------------------------------------------------------------

# Where an editor ends a line: the text's own "\n", "\r\n" or "\r" (not a form feed or U+2028,
# which normalisation also makes a line break).
_EDITOR_LINE_END = re.compile(r"\r\n|\r|\n")


def editor_lines(raw: str) -> list[str]:
    """`raw` cut into lines as an editor numbers them (line 1 is `[0]`)."""
    return _EDITOR_LINE_END.split(raw)


def original_line_numbers(raw: str, text: str) -> list[int] | None:
    """For each line of `text` (`normalize_text(raw)`), the 1-based number of the line of `raw`
    it comes from, as an editor counts them. None when the two cannot be aligned.

    Normalisation only drops blank lines (runs collapsed, the ends stripped) and turns other
    line-break characters into newlines, so the k-th non-blank line of `text` is the k-th
    non-blank piece of `raw`'s lines; a blank line of `text` is given the line after its
    predecessor's."""
    pieces: list[int] = []
    for number, line in enumerate(editor_lines(raw), 1):
        pieces.extend(number for part in normalize_text(line).split("\n") if part.strip())
    out: list[int] = []
    k = 0
    for line in text.split("\n"):
        if line.strip():
            if k >= len(pieces):
                return None
            out.append(pieces[k])
            k += 1
        else:
            out.append(out[-1] + 1 if out else 1)
    return out if k == len(pieces) else None
