"""The chat at a terminal: colour, a spinner while answering, LLM tokens as they arrive (rich)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TextIO

from bot.chat_session import COMMANDS, Ask
from bot.chat_views import call_in_worker, documents_and_chunks, find_span, rewritten
from bot.excerpts import in_quotes, shown_quote
from bot.render import excerpt_line
from bot.types import Answer, DocumentInfo, Passage

QUOTE_CHARS = 200  # quotes in the compact sources list under an answer
CLOSEST_PASSAGES = 3


class RichView:
    """Colour, a spinner while answering, LLM tokens as they arrive."""

    def __init__(self, out: TextIO) -> None:
        from rich.console import Console

        self.console = Console(file=out, highlight=False, emoji=False)

    # Text from documents and questions goes in rich.text.Text objects, never markup
    # strings: "[Chinese]" in a passage would otherwise be taken for a style tag.
    def _print(self, *parts: Any, **options: Any) -> None:
        self.console.print(*parts, **options)

    def run_answer(self, ask: Ask, *, stream: bool) -> Answer:
        from rich.live import Live
        from rich.spinner import Spinner
        from rich.text import Text

        pieces: list[str] = []
        spinner = Spinner("dots", text=Text("Searching the documents…", style="dim"), style="cyan")
        # Transient: the spinner and the raw streamed reply disappear when the answer is in,
        # and the final answer (citations renumbered, or the fallback's) is printed in place.
        live = Live(spinner, console=self.console, transient=True, refresh_per_second=12.5)

        def show(piece: str) -> None:
            pieces.append(piece)
            live.update(_Tail("".join(pieces)), refresh=True)

        # Not `with Live(...)`: a Ctrl-C that lands while start() is still running would skip
        # __exit__ and leave the spinner drawn under everything printed afterwards.
        try:
            live.start(refresh=True)
            return call_in_worker(ask, show if stream else None)
        finally:
            live.stop()

    def answer(self, answer: Answer, *, first: bool) -> None:
        from rich.text import Text

        if rewritten(answer):
            self._print(Text(f"↳ read as: {answer.standalone_question}", style="dim italic"))
        if answer.abstained:
            self._print(Text("Not in the documents", style="bold yellow"))
            self._print(Text(answer.text, style="yellow"))
        else:
            if answer.source_note:
                self._print(Text(answer.source_note, style="dim"))
            self._print(_answer_body(answer.text))
        if answer.note:
            self._print(Text(f"note: {answer.note}", style="dim yellow"))
        if answer.abstained and answer.retrieved:
            self._print(Text("\nClosest passages", style="bold dim"))
            for n, p in list(enumerate(answer.retrieved, 1))[:CLOSEST_PASSAGES]:
                self._source_line(n, p.source, p.location, p.text)
        elif answer.citations:
            self._print(Text("\nSources", style="bold dim"))
            for c in answer.citations:
                self._source_line(c.n, c.source, c.location, shown_quote(c, QUOTE_CHARS), c.link)
        if first and (answer.citations or answer.retrieved):
            self._print(Text("/sources shows the full passages, /open N one in context.", style="dim"))
        self._print()

    def _source_line(self, n: int, source: str, location: str, quote: str, link: str = "") -> None:
        from rich.text import Text

        line = Text.assemble((f"[{n}] ", "bold cyan"), (source, "bold"), (f" · {location}", "dim"))
        self._print(line)
        self._print(Text("    " + in_quotes(excerpt_line(quote, QUOTE_CHARS)), style="italic dim"))
        if link:  # opens the page at the quote
            self._print(Text(f"    {link}", style=f"dim link {link}"))

    def passages(self, items: Sequence[tuple[int, Passage]], *, cited: bool) -> None:
        from rich.padding import Padding
        from rich.text import Text

        heading = "Cited passages" if cited else "Retrieved passages (nothing was cited)"
        self._print(Text(heading, style="bold"))
        for n, p in items:
            self._print()
            self._print(
                Text.assemble((f"[{n}] ", "bold cyan"), (p.source, "bold"), (f" · {p.location}", "dim"))
            )
            self._print(Padding(Text(p.text.strip()), (0, 0, 0, 4)))
        self._print()

    def context(self, n: int, passage: Passage, context: str) -> None:
        from rich.padding import Padding
        from rich.text import Text

        header = Text.assemble(
            (f"[{n}] ", "bold cyan"), (passage.source, "bold"), (f" · {passage.location}", "dim")
        )
        self._print(header)
        body = Text(context.strip("\n"), style="dim")
        span = find_span(body.plain, passage.text)
        if span is not None:
            body.stylize("not dim bold", *span)
        self._print(Padding(body, (0, 0, 0, 4)))
        self._print()

    def documents(self, docs: Sequence[DocumentInfo]) -> None:
        from rich.table import Table

        table = Table(title=documents_and_chunks(docs), title_justify="left")
        table.add_column("Source", overflow="fold")
        table.add_column("Title", overflow="fold")
        table.add_column("Chunks", justify="right")
        for d in docs:
            table.add_row(d.source, d.title if d.title != d.source else "", str(d.chunks))
        self._print(table)
        self._print()

    def help(self) -> None:
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan")
        table.add_column()
        for name, text in COMMANDS:
            table.add_row(name, text)
        self._print(
            "Ask a question about the documents; follow-ups use the conversation so far.", markup=False
        )
        self._print(table)
        self._print()

    def notice(self, text: str) -> None:
        from rich.text import Text

        self._print(Text(text, style="dim"))

    def error(self, text: str) -> None:
        from rich.text import Text

        self._print(Text.assemble(("error: ", "bold red"), text))


class _Tail:
    """The end of a growing text, cut to the screen so a live display can redraw it."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __rich_console__(self, console: Any, options: Any) -> Any:
        lines = _with_markers(self.text).wrap(console, options.max_width)
        room = max(1, console.height - 2)
        yield from list(lines)[-room:]


def _with_markers(text: str) -> Any:
    from rich.text import Text

    out = Text(text)
    out.highlight_regex(r"\[\d+(?:\s*,\s*\d+)*\]", "bold cyan")
    return out


def _answer_body(text: str) -> Any:
    """The answer with its markers highlighted; bullets ("- ... [n]") get a hanging indent, so a
    bullet that wraps stays clear of the next one."""
    from rich.console import Group
    from rich.table import Table

    lines = text.split("\n")
    if not any(line.startswith("- ") for line in lines):
        return _with_markers(text)
    parts: list[Any] = []
    grid: Table | None = None
    for line in lines:
        if not line.startswith("- "):
            grid = None
            parts.append(_with_markers(line))
            continue
        if grid is None:
            grid = Table.grid(padding=(0, 1))
            grid.add_column(style="cyan")
            grid.add_column()
            parts.append(grid)
        grid.add_row("•", _with_markers(line[2:]))
    return Group(*parts)
