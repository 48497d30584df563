"""Answers fitted to Discord: pure functions from core objects to message parts.

Limits (Discord's): an embed's field value 1,024, field name 256, description 4,096, 25
fields, 6,000 characters in all embeds of one message. Text from a question or a document
goes through `bot.discord_text` (made harmless, split between messages) first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import discord

from bot.discord_text import (
    MAX_CONTENT,
    clip_text,
    escape,
    escape_answer_text,
    escape_clipped,
    plural,
    source_name,
    split_text,
)
from bot.excerpts import in_quotes, shown_quote
from bot.prompts import CANNOT_ANSWER
from bot.types import Answer, Citation, DocumentInfo, IndexStatus, Passage

MAX_EMBED_TOTAL = 6000
MAX_FIELDS = 25
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_TITLE = 256
MAX_DESCRIPTION = 4096
MAX_FOOTER = 2048
MAX_CHOICES = 25  # autocomplete suggestions, each name and value at most 100 characters
MAX_CHOICE = 100
QUOTE_CHARS = 300
CLOSEST_PASSAGES = 3
NOT_COVERED = CANNOT_ANSWER

COLOUR_ANSWER = discord.Colour(0x3B82F6)
COLOUR_ABSTAIN = discord.Colour(0x9CA3AF)


@dataclass
class Part:
    """One Discord message: content (may be empty when there are embeds) and embeds."""

    content: str = ""
    embeds: list[discord.Embed] = field(default_factory=list)


# -- embeds ---------------------------------------------------------------------------------------


def _field_name(n: int | None, source: str, location: str) -> str:
    label = f"[{n}] " if n is not None else ""
    name = label + escape(source_name(source))
    if location:
        name += " · " + escape(location)
    return name if len(name) <= MAX_FIELD_NAME else label + escape_clipped(source_name(source), 200)


def _quote_value(text: str, chars: int) -> str:
    body = escape_clipped(text, min(chars, MAX_FIELD_VALUE - 4))
    return in_quotes(body) if body else "\u2014"


def _with_link(value: str, c: Citation) -> str:
    """The field value with a link to the page at the quote, for a source ingested from a URL
    (left out when it would not fit in the field)."""
    link = f"\n[open at the quote](<{c.link}>)" if c.link and not any(ch in c.link for ch in "()<> ") else ""
    return value + link if link and len(value) + len(link) <= MAX_FIELD_VALUE else value


def _fill_embeds(
    title: str, colour: discord.Colour, fields: Sequence[tuple[str, str]], footer: str = ""
) -> list[discord.Embed]:
    """As many embeds as needed so each holds <= 25 fields and <= 6,000 characters."""
    embeds: list[discord.Embed] = []
    current: discord.Embed | None = None
    for name, value in fields:
        if (
            current is None
            or len(current.fields) >= MAX_FIELDS
            or len(current) + len(name) + len(value) + len(footer) > MAX_EMBED_TOTAL
        ):
            current = discord.Embed(title=title if not embeds else title + " (continued)", colour=colour)
            embeds.append(current)
        current.add_field(name=name, value=value, inline=False)
    if embeds and footer:
        embeds[-1].set_footer(text=footer[:MAX_FOOTER])
    return embeds


def sources_embeds(
    citations: Sequence[Citation], quote_chars: int = QUOTE_CHARS, footer: str = ""
) -> list[discord.Embed]:
    fields = [
        (
            _field_name(c.n, c.source, c.location),
            _with_link(_quote_value(shown_quote(c, quote_chars), quote_chars), c),
        )
        for c in citations
    ]
    return _fill_embeds("Sources", COLOUR_ANSWER, fields, footer=footer)


def _footer(answer: Answer) -> str:
    total = answer.timings_ms.get("total")
    if not total:
        return answer.answerer
    return answer.answerer + (f" · {total:.0f} ms" if total < 1000 else f" · {total / 1000:.1f} s")


def closest_embeds(passages: Sequence[Passage], quote_chars: int = QUOTE_CHARS) -> list[discord.Embed]:
    fields = [
        (_field_name(None, p.source, p.location), _quote_value(p.text, quote_chars))
        for p in passages[:CLOSEST_PASSAGES]
    ]
    return _fill_embeds("Closest passages", COLOUR_ABSTAIN, fields, footer="Not stated in the documents")


def _compact_sources(citations: Sequence[Citation], quote_chars: int) -> list[str]:
    lines = ["**Sources**"]
    for c in citations:
        where = escape(source_name(c.source)) + (", " + escape(c.location) if c.location else "")
        lines.append(
            f"[{c.n}] {where}: {in_quotes(escape_clipped(shown_quote(c, quote_chars), quote_chars))}"
        )
    return lines


# -- whole answers ----------------------------------------------------------------------------------


def render_answer(
    answer: Answer,
    *,
    question_header: bool = False,
    compact: bool = False,
    quote_chars: int = QUOTE_CHARS,
) -> list[Part]:
    """The messages for one answer, in order; the sources go with the last one.

    `question_header` repeats the question on top (slash commands do not show it in the
    channel). `compact` lists the sources as text instead of an embed.
    """
    blocks: list[str] = []
    if question_header:
        blocks.append("**Q:** " + escape_clipped(answer.question, 300))
    text = answer.text.strip()
    if answer.source_note and text:
        blocks.append("-# " + escape(clip_text(answer.source_note, 200)))
    blocks.append(escape_answer_text(text) if text else NOT_COVERED)
    if answer.note:
        blocks.append("-# " + escape(clip_text(answer.note, 500)))

    if compact:
        if answer.abstained:
            passages = answer.retrieved[:CLOSEST_PASSAGES]
            lines = ["**Closest passages**"] + [
                f"• {escape(source_name(p.source))}"
                + (f", {escape(p.location)}" if p.location else "")
                + f": {in_quotes(escape_clipped(p.text, quote_chars))}"
                for p in passages
            ]
            if passages:
                blocks.append("\n".join(lines))
        elif answer.citations:
            blocks.append("\n".join(_compact_sources(answer.citations, quote_chars)))
        embeds: list[discord.Embed] = []
    elif answer.abstained:
        embeds = closest_embeds(answer.retrieved, quote_chars)
    else:
        embeds = sources_embeds(answer.citations, quote_chars, footer=_footer(answer))

    parts = [Part(content=chunk) for chunk in split_text("\n\n".join(blocks))]
    if not parts:
        parts = [Part(content=NOT_COVERED)]
    if embeds:
        # One embed per message keeps every message under the 6,000-character total.
        parts[-1].embeds.append(embeds[0])
        parts.extend(Part(embeds=[e]) for e in embeds[1:])
    return parts


def document_choices(
    documents: Sequence[DocumentInfo], typed: str, limit: int = MAX_CHOICES
) -> list[tuple[str, str]]:
    """Autocomplete suggestions for a document option, as (shown name, value) pairs: the
    documents whose path or title holds every word typed, those whose file name starts with
    it first. The value is the source, or its file name when the source is longer than
    Discord allows (the engine resolves either)."""
    words = typed.lower().split()
    prefix = " ".join(words)
    ranked: list[tuple[int, str, str, str]] = []
    for doc in documents:
        name = source_name(doc.source)
        title = doc.title if doc.title and doc.title != name else ""
        haystack = f"{doc.source} {title}".lower()
        if not all(word in haystack for word in words):
            continue
        rank = 0 if name.lower().startswith(prefix) else 1 if title.lower().startswith(prefix) else 2
        shown = clip_text(f"{name} — {title}" if title else name, MAX_CHOICE)
        value = doc.source if len(doc.source) <= MAX_CHOICE else name[:MAX_CHOICE]
        ranked.append((rank, name.lower(), shown, value))
    return [(shown, value) for _, _, shown, value in sorted(ranked)[:limit]]


def render_documents(documents: Sequence[DocumentInfo], limit: int = 40) -> list[Part]:
    if not documents:
        return [
            Part(content="No documents are indexed yet. An admin can add some with `/ingest` or `/reingest`.")
        ]
    total_chunks = sum(d.chunks for d in documents)
    lines = [f"**{plural(len(documents), 'document')} indexed** ({plural(total_chunks, 'passage')})"]
    for doc in sorted(documents, key=lambda d: source_name(d.source).lower())[:limit]:
        title = (
            f" — {escape_clipped(doc.title, 80)}"
            if doc.title and doc.title != source_name(doc.source)
            else ""
        )
        lines.append(f"• {escape(source_name(doc.source))}{title} ({plural(doc.chunks, 'passage')})")
    if len(documents) > limit:
        lines.append(f"…and {len(documents) - limit} more.")
    return [Part(content=chunk) for chunk in split_text("\n".join(lines).replace("\n", "\n\n"))]


def _when(timestamp: float | None) -> str:
    if not timestamp:
        return "never"
    return f"<t:{int(timestamp)}:f> (<t:{int(timestamp)}:R>)"


def render_status(status: IndexStatus) -> Part:
    embed = discord.Embed(title="Dossier status", colour=COLOUR_ANSWER)
    embed.add_field(name="Documents", value=str(status.documents))
    embed.add_field(name="Passages", value=str(status.chunks))
    embed.add_field(name="Last ingest", value=_when(status.last_ingest), inline=False)
    embed.add_field(name="Embedding model", value=escape(clip_text(status.model, 200)) or "?", inline=False)
    embed.add_field(name="Answerer", value=escape(clip_text(status.answerer, 200)) or "?", inline=False)
    embed.add_field(name="Collection", value=escape(clip_text(status.collection, 200)) or "?", inline=False)
    return Part(embeds=[embed])


def _how_many(value: Any) -> int:
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, Sequence | Mapping) and not isinstance(value, str):
        return len(value)
    return 0


def render_ingest_report(report: Any, *, title: str = "Ingest finished") -> str:
    """One short summary of an IngestReport (or its `to_dict()`), within one message."""
    data: Mapping[str, Any] = report.to_dict() if hasattr(report, "to_dict") else dict(report)
    counts = ", ".join(
        f"{_how_many(data.get(key))} {key}" for key in ("added", "updated", "deleted", "unchanged")
    )
    seconds = float(data.get("seconds") or 0.0)
    lines = [
        f"**{title}** in {seconds:.1f} s: {counts}.",
        f"{plural(_how_many(data.get('chunks')), 'passage')} in the index, "
        f"{_how_many(data.get('embedded'))} embedded by this run.",
    ]
    for key in ("failed", "skipped"):
        problems = data.get(key)
        if problems is None or not _how_many(problems):
            continue
        lines.append(f"**{_how_many(problems)} {key}:**")
        items: Iterable[Any] = problems.items() if isinstance(problems, Mapping) else problems
        for item in list(items)[:10]:
            if isinstance(item, Mapping):
                path, reason = item.get("path") or item.get("source") or "?", item.get("reason") or ""
            elif isinstance(item, tuple | list) and len(item) == 2:
                path, reason = item
            else:
                path, reason = getattr(item, "path", item), getattr(item, "reason", "")
            entry = "• " + escape(source_name(str(path)))
            if reason:
                entry += ": " + escape_clipped(str(reason), 200)
            lines.append(entry)
    text = "\n".join(lines)
    return text if len(text) <= MAX_CONTENT else split_text(text)[0]
