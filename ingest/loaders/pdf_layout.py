"""Reading order of a PDF page from PDFium's character boxes: running headers, footers and page numbers left out, two-column pages read one column after the other, footnotes moved
after the body text as a paragraph of their own.

Whether a top or bottom line is a running header, footer or page number is only known from every page, so a
document is read in two passes: `page_edges` gives each page's top and bottom lines,
`running_lines` finds those that repeat, and `read_page` lays each page out without them.
A page with none of these features reads as PDFium reads it: its characters in PDFium's
order.

Characters are given to parts of a page by their boxes rather than with PDFium's
bounded-text call: that call takes every character whose box touches the rectangle, so
cutting a page between two close lines gives the tall letters of one line to both parts.
"""

from __future__ import annotations

import ctypes
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# How many lines at each end of a page may be a running header or footer.
EDGE_LINES = 2
# A line must be at the same end of this many pages to count as running (fewer in short
# documents: see `running_lines`).
RUNNING_PAGES = 3
# Footnotes are set smaller than the body: lines at most this share of its line height.
SMALL_LINE = 0.8
# A two-column block needs this many lines, this share of the body's lines, and on each side
# text on most lines, filling the column (tables have gutters too, but their cells are short
# or leave lines empty).
MIN_COLUMN_LINES = 6
MIN_COLUMN_SHARE = 0.4
MIN_COLUMN_FILL = 0.6
MIN_COLUMN_INKED = 0.65  # share of the column lines with text on each side

_SOFT = frozenset(" \t\r\n\u00a0\u3000\x00")
_NOTE_MARK = re.compile(
    r"\s*(?:\d{1,3}(?!\d)|[¹²³⁴⁵⁶⁷⁸⁹⁰]+|[*†‡§¶]|\(\s*\d{1,3}\s*\)|\[\d{1,3}\]|\(\s*[a-z]\s*\))"
)
_DIGITS = re.compile(r"\d+")
# The key (see `_key`) of a line that is only a page number.
_PAGE_NUMBER = re.compile(r"[^\w#]*(?:(?:page|p\.|pg\.?)\s*)?#(?:\s*(?:of|/)\s*#)?[^\w#]*")
_ROMAN = re.compile(r"[ivxlcdm]+")
_SPACES = re.compile(r"\s+")
# PDFium marks a hyphen it took for a word broken at a line end (U+0002 one character at a
# time, U+FFFE in the page's text). Where the line break is still there the hyphen shows
# again, for `pdf._dehyphenate` to judge; where PDFium joined the word, the mark goes.
_BROKEN_HYPHEN = re.compile(r"[\x02\ufffe](?=\s|$)")
_JOINED_HYPHEN = re.compile(r"[\x02\ufffe]")


@dataclass
class _Run:
    """Characters [first, end) in PDFium's order that sit side by side on one line: `end`
    runs up to the next run, so a run also owns the spaces and line breaks after it."""

    first: int
    end: int
    left: float
    bottom: float
    right: float
    top: float

    @property
    def height(self) -> float:
        return self.top - self.bottom


@dataclass
class _Line:
    bottom: float
    top: float
    runs: list[_Run] = field(default_factory=list)

    @property
    def height(self) -> float:
        return statistics.median(r.height for r in self.runs)

    def spans(self, left: float = -1e9, right: float = 1e9, merge: float = 0.0) -> list[tuple[float, float]]:
        """The x extents of the line's runs clipped to [left, right], touching ones (and gaps up
        to `merge`) united."""
        out: list[tuple[float, float]] = []
        for a, b in sorted((max(r.left, left), min(r.right, right)) for r in self.runs):
            if b <= a:
                continue
            if out and a <= out[-1][1] + merge:
                out[-1] = (out[-1][0], max(out[-1][1], b))
            else:
                out.append((a, b))
        return out


@dataclass(frozen=True)
class Edges:
    """The texts of a page's top and bottom lines, where running headers and footers are."""

    head: tuple[str, ...] = ()  # top first
    foot: tuple[str, ...] = ()  # bottom first


@dataclass(frozen=True)
class Running:
    """The keys (see `_key`) of the lines that run at the top and at the bottom of pages."""

    head: frozenset[str] = frozenset()
    foot: frozenset[str] = frozenset()


@dataclass
class PageLines:
    """A page's characters (PDFium's text, generated spaces and line breaks included) and its
    lines, top to bottom."""

    text: str
    lines: list[_Line]


def page_lines(textpage: Any) -> PageLines:
    """The lines of a page (pypdfium2 `PdfTextPage`)."""
    text, runs = _runs(textpage)
    return PageLines(text, _lines(runs))


def page_edges(page: PageLines) -> Edges:
    """The page's top and bottom lines (the first pass)."""
    text, lines = page.text, page.lines
    edge = min(EDGE_LINES, len(lines))
    return Edges(
        head=tuple(_text(text, line.runs) for line in lines[:edge]),
        foot=tuple(_text(text, line.runs) for line in reversed(lines[len(lines) - edge :])),
    )


def read_page(page: Any, found: PageLines, running: Running) -> str:
    """The text of `page` (pypdfium2 `PdfPage`, whose lines are `found`) in reading order:
    without the running lines at its top and bottom, columns one after the other, footnotes
    last as a paragraph of their own."""
    text, lines = found.text, found.lines
    top = 0
    while top < min(EDGE_LINES, len(lines)) and _key(_text(text, lines[top].runs))[0] in running.head:
        top += 1
    bottom = len(lines)
    while (
        bottom > max(top, len(lines) - EDGE_LINES)
        and _key(_text(text, lines[bottom - 1].runs))[0] in running.foot
    ):
        bottom -= 1
    if top >= bottom:  # nothing but running lines: pages all alike, or a blank page's frame
        top, bottom = 0, len(lines)
    body = lines[top:bottom]
    notes_at = _notes_start(page, text, body)
    notes = _text(text, [r for line in body[notes_at:] for r in line.runs])
    pieces = [_text(text, group) for group in _reading_order(body[:notes_at])]
    if notes.strip():
        pieces.append("\n" + notes)
    joined = _BROKEN_HYPHEN.sub("-", "\n".join(p for p in pieces if p.strip()))
    return _JOINED_HYPHEN.sub("", joined)


def running_lines(pages: Sequence[Edges]) -> Running:
    """The lines that run at the top or bottom of pages, to be left out of the body: lines
    that repeat on enough pages with at most one number changing from page to page (a page
    number: "12", "Page 12 of 40", "Apple Inc. | Q3 2023 Form 10-Q | 12"). Lines whose numbers
    change more are content, such as the totals ending one table after another.

    A running line with words names the document, often with its period, on every page: left
    out of the pages, the most frequent one is kept as the document's title when the PDF names
    none (see `running_title`), so every chunk still carries it in its header."""
    threshold = RUNNING_PAGES if len(pages) > RUNNING_PAGES else 2
    return Running(
        head=_repeated([page.head for page in pages], threshold),
        foot=_repeated([page.foot for page in pages], threshold),
    )


# A page number, and what sets it off, at either end of a running line.
_END_NUMBER = re.compile(
    r"^(?:(?:page|p\.|pg\.?)\s*)?\d+[\s|\-\u2013\u2014\u00b7.:]+"
    r"|[\s|\-\u2013\u2014\u00b7:]+(?:(?:page|p\.|pg\.?)\s*)?\d+(?:\s*(?:of|/)\s*\d+)?$",
    re.I,
)


def is_running(line: str, running: Running) -> bool:
    """Whether a line at a page's top or bottom is one of the running lines."""
    key = _key(line)[0]
    return key in running.head or key in running.foot


def running_title(pages: Sequence[Edges], running: Running) -> str:
    """The words of the running line found on the most pages (its page number taken off), e.g.
    "Apple Inc. | Q3 2023 Form 10-Q"; "" when every running line is a bare page number."""
    seen: dict[str, tuple[int, str]] = {}
    for page in pages:
        for lines, keys in ((page.head, running.head), (page.foot, running.foot)):
            for line in lines:
                key = _key(line)[0]
                if key in keys and not _PAGE_NUMBER.fullmatch(key):
                    words = _END_NUMBER.sub("", _SPACES.sub(" ", line).strip()).strip(" |-")
                    if sum(ch.isalpha() for ch in words) >= 3:
                        count, first = seen.get(key, (0, words))
                        seen[key] = (count + 1, first)
    return max(seen.values(), key=lambda hit: hit[0])[1] if seen else ""


def _repeated(edges: Sequence[tuple[str, ...]], threshold: int) -> frozenset[str]:
    seen: dict[str, list[tuple[str, ...]]] = {}
    for lines in edges:
        keys = dict(_key(line) for line in lines)
        for key, numbers in keys.items():
            if key:
                seen.setdefault(key, []).append(numbers)
    running = set()
    for key, occurrences in seen.items():
        # Not strict: a "#" of the line's own would make one occurrence's numbers fewer.
        changing = sum(len(set(values)) > 1 for values in zip(*occurrences, strict=False))
        if len(occurrences) >= threshold and changing <= 1:
            running.add(key)
    return frozenset(running)


def _key(line: str) -> tuple[str, tuple[str, ...]]:
    """What a running line has on every page (case and spacing ignored, numbers as "#": arabic
    ones, and a short line's roman ones), and its numbers."""
    text = _SPACES.sub(" ", line).strip().casefold()
    numbers = _DIGITS.findall(text)
    tokens = _DIGITS.sub("#", text).split(" ")
    if len(tokens) <= 4:
        numbers += [t for t in tokens if _ROMAN.fullmatch(t)]
        tokens = ["#" if _ROMAN.fullmatch(t) else t for t in tokens]
    return " ".join(tokens), tuple(numbers)


# -- characters into runs and lines ------------------------------------------------------------


def _runs(textpage: Any) -> tuple[str, list[_Run]]:
    """The page's text (PDFium's characters, generated spaces and line breaks included) and
    its runs. This loop visits every character, so it keeps to raw calls and local names.

    Boxes are PDFium's loose ones (the font's ascent to descent, not the glyph's ink): every
    character of a line then has the same height, so heights compare font sizes."""
    import pypdfium2.raw as pdfium_c

    raw = textpage.raw
    count = pdfium_c.FPDFText_CountChars(raw)
    if count <= 0:
        return "", []
    text = _all_text(raw, count)
    get_box = pdfium_c.FPDFText_GetLooseCharBox
    box = pdfium_c.FS_RECTF()
    ref = ctypes.byref(box)
    runs: list[_Run] = []
    # The run being built: its first character and extent.
    first, x0, y0, x1, y1 = -1, 0.0, 0.0, 0.0, 0.0
    for i, char in enumerate(text):
        if char in _SOFT or not get_box(raw, i, ref):
            continue
        left, right, bottom, top = box.left, box.right, box.bottom, box.top
        if top - bottom < 0.01:
            continue
        if first >= 0:
            height = max(y1 - y0, top - bottom)
            overlap = min(y1, top) - max(y0, bottom)
            # Same line, just after the run (a wide gap may be a column gutter).
            if overlap >= 0.5 * min(y1 - y0, top - bottom) and -0.5 * height <= left - x1 <= 0.6 * height:
                x1, y0, y1 = max(x1, right), min(y0, bottom), max(y1, top)
                continue
            runs.append(_Run(first, i, x0, y0, x1, y1))
        first, x0, y0, x1, y1 = i, left, bottom, right, top
    if first >= 0:
        runs.append(_Run(first, count, x0, y0, x1, y1))
    for k in range(len(runs) - 1):
        runs[k].end = runs[k + 1].first
    return text, runs


def _all_text(raw: Any, count: int) -> str:
    """The page's characters, one per index: in one call when PDFium gives one UTF-16 unit per
    character (nearly always), else one by one (characters outside the BMP)."""
    import pypdfium2.raw as pdfium_c

    buffer = (ctypes.c_ushort * (count + 1))()
    written = pdfium_c.FPDFText_GetText(raw, 0, count, buffer)
    if written == count + 1:
        text = bytes(memoryview(buffer).cast("B"))[: 2 * count].decode("utf-16-le", "surrogatepass")
        if not any("\ud800" <= ch <= "\udfff" for ch in text):
            return text
    return "".join(chr(pdfium_c.FPDFText_GetUnicode(raw, i)) for i in range(count))


def _lines(runs: list[_Run]) -> list[_Line]:
    """Runs grouped into lines, top to bottom: a run whose middle lies within a line's height
    joins it; a raised or lowered small run (a note mark, an index) joins the line it touches."""
    lines: list[_Line] = []
    for run in sorted(runs, key=lambda r: -(r.bottom + r.top)):
        middle = (run.bottom + run.top) / 2
        line = lines[-1] if lines else None
        if line is not None and line.bottom <= middle <= line.top:
            line.bottom, line.top = min(line.bottom, run.bottom), max(line.top, run.top)
            line.runs.append(run)
        else:
            lines.append(_Line(run.bottom, run.top, [run]))
    merged: list[_Line] = []
    for line in lines:
        prev = merged[-1] if merged else None
        if prev is not None and min(prev.top, line.top) > max(prev.bottom, line.bottom):
            small, large = sorted((prev, line), key=lambda x: x.top - x.bottom)
            if small.top - small.bottom < 0.75 * (large.top - large.bottom):
                prev.bottom, prev.top = min(prev.bottom, line.bottom), max(prev.top, line.top)
                prev.runs.extend(line.runs)
                continue
        merged.append(line)
    for line in merged:
        line.runs.sort(key=lambda r: r.first)
    return merged


def _text(text: str, runs: Sequence[_Run]) -> str:
    """The characters of `runs` in PDFium's order; where runs of other parts came in between,
    a line break keeps the words apart."""
    out: list[str] = []
    previous_end = -1
    for run in sorted(runs, key=lambda r: r.first):
        if out and run.first != previous_end and not out[-1][-1:].isspace():
            out.append("\n")
        out.append(text[run.first : run.end])
        previous_end = run.end
    return "".join(out)


# -- footnotes ------------------------------------------------------------------------------------


def _notes_start(page: Any, text: str, body: list[_Line]) -> int:
    """Where the footnotes at the bottom of the body start (len(body) when there are none):
    the last lines, set smaller than the body, opened by a note mark or under a rule."""
    if len(body) < 3:
        return len(body)
    usual = statistics.median(line.height for line in body)
    start = len(body)
    while start > 0 and body[start - 1].height <= SMALL_LINE * usual:
        start -= 1
    if start == len(body) or start == 0 or (len(body) - start) * 2 > len(body):
        return len(body)
    first = _text(text, body[start].runs)
    if _NOTE_MARK.match(first) or _rule_between(page, body[start].top, body[start - 1].bottom):
        return start
    return len(body)


def _rule_between(page: Any, low: float, high: float) -> bool:
    """Whether a thin horizontal line is drawn between heights `low` and `high`."""
    import pypdfium2.raw as pdfium_c

    width = page.get_width()
    for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_PATH], max_depth=2):
        try:
            x0, y0, x1, y1 = obj.get_bounds()
        except Exception:
            continue
        if y1 - y0 <= 2 and x1 - x0 >= 0.08 * width and low - 1 <= y0 and y1 <= high + 1:
            return True
    return False


# -- columns --------------------------------------------------------------------------------------


def _reading_order(lines: list[_Line]) -> list[list[_Run]]:
    """The body's runs in reading order, as groups to be read one after the other: on a
    two-column page each stretch of column lines gives its left column, then its right;
    lines across the gutter (a title, a wide figure caption) are read where they stand."""
    gutter = _gutter(lines)
    if gutter is None:
        return [[r for line in lines for r in line.runs]]
    groups: list[list[_Run]] = []
    left: list[_Run] = []
    right: list[_Run] = []
    for line in lines:
        if _crosses(line, gutter):
            groups.extend(g for g in (left, right) if g)
            left, right = [], []
            groups.append(line.runs)
        else:
            left.extend(r for r in line.runs if r.right <= gutter)
            right.extend(r for r in line.runs if r.right > gutter)
    groups.extend(g for g in (left, right) if g)
    return groups


def _crosses(line: _Line, x: float) -> bool:
    return any(r.left < x < r.right for r in line.runs)


def _gutter(lines: list[_Line]) -> float | None:
    """The x of the gutter between two columns of text, or None: a vertical band in the
    middle of the body that no line crosses in most of the body, at least about a line's
    height wide, with lines on both sides that fill their column."""
    if len(lines) < MIN_COLUMN_LINES:
        return None
    x0 = min(r.left for line in lines for r in line.runs)
    x1 = max(r.right for line in lines for r in line.runs)
    lo, hi = int(x0 + 0.3 * (x1 - x0)), int(x0 + 0.7 * (x1 - x0))
    if hi - lo < 4:
        return None
    # How many lines have text over each point of the middle, by 1-point steps.
    changes = [0] * (hi - lo + 2)
    for line in lines:
        for a, b in line.spans(lo, hi):
            changes[int(a) - lo] += 1
            changes[int(b) - lo + 1] -= 1
    covered, total = [], 0
    for step in changes[:-1]:
        total += step
        covered.append(total)
    fewest = min(covered)
    if fewest > (1 - MIN_COLUMN_SHARE) * len(lines):
        return None
    # The widest band of points crossed by that fewest number of lines.
    best, start = (0, 0), None
    for i, c in enumerate([*covered, fewest + 1]):
        if c == fewest and start is None:
            start = i
        elif c != fewest and start is not None:
            best = max(best, (i - start, start))
            start = None
    width, begin = best
    usual = statistics.median(line.height for line in lines)
    if width < max(6.0, 0.8 * usual):
        return None
    gutter = lo + begin + width / 2
    columns = [line for line in lines if not _crosses(line, gutter)]
    if len(columns) < max(MIN_COLUMN_LINES, MIN_COLUMN_SHARE * len(lines)):
        return None
    # Text columns run down their side line after line, and each line fills its column; a
    # table of terms and their descriptions leaves lines of its first column empty.
    for side in ((x0, lo + begin), (lo + begin + width, x1)):
        fills = []
        for line in columns:
            spans = line.spans(side[0], side[1], merge=line.height)
            if spans:
                fills.append(sum(b - a for a, b in spans) / (side[1] - side[0]))
        if len(fills) < MIN_COLUMN_INKED * len(columns) or statistics.median(fills) < MIN_COLUMN_FILL:
            return None
    return gutter
