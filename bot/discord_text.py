"""Text made safe for Discord and cut to fit its messages.

Text that comes from a question or a document is made harmless first: every `@` is followed
by a zero-width space (no @everyone, @here, role or user pings, whatever the
allowed_mentions) and markdown is escaped, while our own [n] markers stay intact and are
never split across messages (2,000 characters of content per message).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import PurePath

MAX_CONTENT = 2000
MAX_THREAD_NAME = 100
ZWSP = "\u200b"
DISCORD_THREAD_URL = "https://discord.com/channels/"

# `[3]`, `[1, 2]`, `[1][2]` are kept in one piece wherever a message is split.
CITATION_RE = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")
_URL_RE = re.compile(r"https?://[^\s<>\"'()\[\]]*[^\s<>\"'()\[\].,;:!?]")
_MARKDOWN_CHARS = set("\\*_~`|>#[]")
# A sentence ends at . ! ? (plus closing quotes/brackets and its citation markers) before a space.
_SENTENCE_END_RE = re.compile(r"[.!?][\"'”’)]*(?:\s*\[\d+(?:\s*,\s*\d+)*\])*(?=\s)")
_TOKEN_RE = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]|\S+")


# -- making text harmless ------------------------------------------------------------------


def neutralize_mentions(text: str) -> str:
    """Break every mention (@everyone, @here, <@id>, <@!id>, <@&id>) with a zero-width space."""
    return text.replace("@", "@" + ZWSP)


# Users, nicknames, roles, channels, slash commands, @everyone and @here, as Discord writes them.
_MENTION_RE = re.compile(r"<(?:@[!&]?|#)\d+>|</[^\s<>:]+(?: [^\s<>:]+)*:\d+>|(?<![\w.])@(?:everyone|here)\b")


def strip_mentions(text: str) -> str:
    """A question without its mentions (they are noise to retrieval), on one line."""
    return " ".join(_MENTION_RE.sub(" ", text).split())


def _escape_markdown(text: str) -> str:
    return "".join("\\" + ch if ch in _MARKDOWN_CHARS else ch for ch in text)


def escape(text: str) -> str:
    """Text from a question or a document, safe to put in a message or an embed.

    Links are left unescaped (escaping would break them) and wrapped in <> so they
    produce no preview; everything else has its markdown escaped and mentions broken.
    """
    out: list[str] = []
    pos = 0
    for match in _URL_RE.finditer(text):
        out.append(_escape_markdown(text[pos : match.start()]))
        out.append("<" + match.group(0) + ">")
        pos = match.end()
    out.append(_escape_markdown(text[pos:]))
    return neutralize_mentions("".join(out))


def escape_answer_text(text: str) -> str:
    """Like `escape`, but the answer's own [n] citation markers are kept as they are."""
    out: list[str] = []
    pos = 0
    for match in CITATION_RE.finditer(text):
        out.append(escape(text[pos : match.start()]))
        out.append(match.group(0))
        pos = match.end()
    out.append(escape(text[pos:]))
    return "".join(out)


def clip_text(text: str, limit: int) -> str:
    """`text` on one line-normalised run, cut at a word boundary to at most `limit` characters."""
    text = re.sub(r"[ \t]+", " ", text).strip()
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "…"


def escape_clipped(raw: str, limit: int) -> str:
    """Escape `raw` and fit the result into `limit` characters (escaping adds characters)."""
    budget = limit
    while True:
        out = escape(clip_text(raw, budget))
        if len(out) <= limit or budget <= 1:
            return out[:limit]
        budget -= max(len(out) - limit, 1)


def plural(n: int, word: str, words: str | None = None) -> str:
    """ "1 passage", "2 passages"."""
    return f"{n} {word if n == 1 else (words or word + 's')}"


def source_name(source: str) -> str:
    """The file name of a source path or the last part of a URL."""
    if source.startswith(DISCORD_THREAD_URL):
        return "Discord thread"  # a saved thread (bot.thread_documents): its URL ends in an id
    if "://" in source:
        tail = source.rstrip("/").rsplit("/", 1)[-1]
        return tail or source
    return PurePath(source).name or source


def thread_name(question: str) -> str:
    """A thread title from the question (thread names never ping, but stay tidy)."""
    name = clip_text(" ".join(question.split()), MAX_THREAD_NAME - 1).replace("@", "@" + ZWSP)
    return name[:MAX_THREAD_NAME] or "Question"


# -- splitting ---------------------------------------------------------------------------------


def _pack(units: Iterable[str], sep: str, limit: int) -> list[str]:
    """Greedily join `units` with `sep` into chunks of at most `limit` characters."""
    chunks: list[str] = []
    current = ""
    for unit in units:
        if not unit:
            continue
        candidate = current + sep + unit if current else unit
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            chunks.append(current)
        current = unit
    if current:
        chunks.append(current)
    return chunks


def _sentences(paragraph: str) -> list[str]:
    out: list[str] = []
    pos = 0
    for match in _SENTENCE_END_RE.finditer(paragraph):
        out.append(paragraph[pos : match.end()].strip())
        pos = match.end()
    out.append(paragraph[pos:].strip())
    return [s for s in out if s]


def _split_words(sentence: str, limit: int) -> list[str]:
    tokens: list[str] = []
    for token in _TOKEN_RE.findall(sentence):
        # Only a run of non-space characters longer than a whole message is ever cut.
        while len(token) > limit:
            tokens.append(token[:limit])
            token = token[limit:]
        tokens.append(token)
    return _pack(tokens, " ", limit)


def _split_line(line: str, limit: int) -> list[str]:
    """An oversized line as whole-sentence pieces, packed; words only for an overlong sentence."""
    units: list[str] = []
    for piece in _pack(_sentences(line), " ", limit):
        if len(piece) <= limit:
            units.append(piece)
        else:
            units.extend(_split_words(piece, limit))
    return units


def split_text(text: str, limit: int = MAX_CONTENT) -> list[str]:
    """Split on paragraph boundaries, then lines (a bullet stays whole), then sentences, then
    words; never inside a [n] marker."""
    text = text.strip()
    if len(text) <= limit:
        return [text] if text else []
    units: list[str] = []
    for paragraph in re.split(r"\n[ \t]*\n", text):
        paragraph = paragraph.strip()
        if len(paragraph) <= limit:
            units.append(paragraph)
            continue
        # An oversized paragraph (a long list) is cut between its lines, each piece packed
        # with the line breaks kept; only a line longer than a message is cut inside.
        lines: list[str] = []
        for line in paragraph.splitlines():
            line = line.rstrip()
            lines.extend([line] if len(line) <= limit else _split_line(line, limit))
        units.extend(_pack(lines, "\n", limit))
    pieces: list[str] = []
    for unit in units:
        if len(unit) > limit:
            pieces.extend(_split_words(unit, limit))
        else:
            pieces.append(unit)
    return _pack(pieces, "\n\n", limit)
