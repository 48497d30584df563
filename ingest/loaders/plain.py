"""Plain text and Markdown: decoded, with headings found in the lines."""

from __future__ import annotations

import re

from ingest.loaders.document import Budget, LoadError, Parsed
from ingest.loaders.text import Break, first_line, line_spans, normalize_text, split_sections, title_line

# Long enough to catch a stray binary file renamed to .txt, short enough to stay cheap.
BINARY_SNIFF_BYTES = 8192
TXT_HEADING_MAX_CHARS = 80

UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def decode_text(data: bytes) -> str:
    # Windows editors save "Unicode" text as UTF-16 with a byte-order mark; the mark makes it
    # unambiguous, and its NUL bytes must not be mistaken for a binary file.
    if data.startswith(UTF16_BOMS):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise LoadError("not valid UTF-16 text") from None
    if b"\x00" in data[:BINARY_SNIFF_BYTES]:
        raise LoadError("binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LoadError("not valid UTF-8 text") from None


_CLOSERS = "\"'”’»)]*_"
_SENTENCE_END = ".!?:;,"


def _is_txt_heading(line: str) -> bool:
    stripped = line.strip()
    if not stripped or len(stripped) > TXT_HEADING_MAX_CHARS:
        return False
    if stripped[0] in "-*•" or not any(ch.isalpha() for ch in stripped):
        return False
    # A quoted sentence ends in punctuation inside the quote: look past closing marks.
    return stripped.rstrip(_CLOSERS)[-1:] not in _SENTENCE_END


def load_txt(data: bytes, budget: Budget) -> Parsed:
    text = normalize_text(decode_text(data))
    lines = line_spans(text)
    breaks: list[Break] = []
    for i, (offset, line) in enumerate(lines):
        before_blank = i == 0 or not lines[i - 1][1].strip()
        after_blank = i + 1 < len(lines) and not lines[i + 1][1].strip()
        if before_blank and after_blank and _is_txt_heading(line):
            breaks.append(Break(offset, title_line(line)))
    return Parsed(first_line(text), text, split_sections(text, breaks))


_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-{2,})[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def load_markdown(data: bytes, budget: Budget) -> Parsed:
    text = normalize_text(decode_text(data))
    lines = line_spans(text)
    breaks: list[Break] = []
    fence = ""
    for i, (offset, line) in enumerate(lines):
        opener = _FENCE.match(line)
        if fence:
            if opener and opener.group(1)[0] == fence[0] and len(opener.group(1)) >= len(fence):
                fence = ""
            continue
        if opener:
            fence = opener.group(1)
            continue
        atx = _ATX_HEADING.match(line)
        if atx and atx.group(2):
            breaks.append(Break(offset, title_line(atx.group(2))))
            continue
        # Setext headings only after a blank line, so a paragraph's last line followed by a
        # "---" rule inside running text is not mistaken for one.
        if (
            line.strip()
            and (i == 0 or not lines[i - 1][1].strip())
            and i + 1 < len(lines)
            and _SETEXT_UNDERLINE.match(lines[i + 1][1])
        ):
            breaks.append(Break(offset, title_line(line)))
    title = breaks[0].heading if breaks else first_line(text)
    return Parsed(title, text, split_sections(text, breaks))
