"""Plain-text rendering of answers and status for the terminal (`ask`, piped chat)."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.excerpts import in_quotes, shown_quote
from bot.printable import one_line
from bot.types import Answer, IndexStatus

if TYPE_CHECKING:
    from bot.gaps import GapGroup


def excerpt_line(text: str, limit: int) -> str:
    """`text` on one line (all whitespace runs made one space), cut at a word to at most `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def format_answer(answer: Answer, *, quote_chars: int = 300) -> str:
    lines = [answer.source_note, answer.text] if answer.source_note else [answer.text]
    if answer.note:
        lines += ["", f"note: {answer.note}"]
    if answer.abstained:
        if answer.retrieved:
            lines += ["", "Closest passages:"]
            for p in answer.retrieved[:3]:
                lines.append(
                    f"  - {one_line(p.source)} ({one_line(p.location)}): {in_quotes(excerpt_line(p.text, quote_chars))}"
                )
    elif answer.citations:
        lines += ["", "Sources:"]
        for c in answer.citations:
            # A newline in a file name would otherwise forge a line of its own.
            lines.append(f"  [{c.n}] {one_line(c.source)} ({one_line(c.location)})")
            lines.append(textwrap.indent(in_quotes(shown_quote(c, quote_chars)), "      "))
            if c.link:  # opens the page at the quote
                lines.append(f"      {one_line(c.link)}")
    return "\n".join(lines)


def format_status(info: IndexStatus) -> str:
    last = (
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.last_ingest)) if info.last_ingest else "never"
    )
    return "\n".join(
        [
            f"documents:  {info.documents}",
            f"chunks:     {info.chunks}",
            *([f"vectors:    {info.vectors}"] if info.vectors is not None else []),
            f"last ingest: {last}",
            f"model:      {info.model}",
            f"answerer:   {info.answerer}",
            f"store:      {info.store} (collection {info.collection})",
            f"home:       {info.home}",
            *([f"problem:    {info.problem}"] if info.problem else []),
        ]
    )


def format_gaps(groups: Sequence[GapGroup]) -> str:
    """`dossier gaps`: each group with its count, its most typical question and the nearest
    passages (where a new or better document would go)."""
    if not groups:
        return "No declined or voted-down questions recorded."
    asked = sum(g.count for g in groups)
    lines = [f"{asked} question(s) in {len(groups)} group(s), most asked first:"]
    for group in groups:
        data = group.to_dict()
        why = group.why()
        lines += [
            "",
            f"{group.count}x  {in_quotes(excerpt_line(one_line(group.example), 200))}  ({why}; last {data['last_asked']})",
        ]
        for other in [q for q in data["questions"] if q != group.example][:OTHER_QUESTIONS_LISTED]:
            lines.append(f"      also: {in_quotes(excerpt_line(one_line(other), 160))}")
        for p in group.passages:
            lines.append(f"      nearest: {one_line(p['source'])} ({one_line(p['location'])})")
    return "\n".join(lines)


OTHER_QUESTIONS_LISTED = 3  # besides the example, per group
