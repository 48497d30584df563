"""`dossier chat`: a terminal REPL over the engine, with follow-ups and slash commands.

Two front ends share one `Chat` (conversation state and commands):

- interactive (stdin and stdout are terminals): prompt_toolkit for line editing and
  persistent history, rich for colour, a spinner and streamed LLM tokens;
- piped (anything else): plain text, one answer per input line, so
  `dossier chat < questions.txt > answers.txt` works and the output holds no escape codes.

Nothing heavy is imported here: `bot.engine` (LangChain, then torch and Chroma on first
use), rich and prompt_toolkit are imported when first needed, so the prompt comes up at once.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from bot.printable import one_line, printable
from bot.render import excerpt_line, format_answer
from bot.types import Answer, Citation, DocumentInfo, Passage, TokenCallback, Turn
from dossier_common.errors import DossierError, NoIndexError

if TYPE_CHECKING:
    from bot.engine import Engine
    from dossier_common.settings import Settings

log = logging.getLogger(__name__)

HISTORY_FILE = "chat_history"
MAX_TURNS = 6  # earlier turns passed to the engine; follow-ups rarely reach further back
QUOTE_CHARS = 200  # quotes in the compact sources list under an answer
CLOSEST_PASSAGES = 3
PROMPT = "dossier> "

COMMANDS: tuple[tuple[str, str], ...] = (
    ("/sources", "the full passages behind the last answer"),
    ("/open N", "passage N of the last answer, with the text around it in its source"),
    ("/docs", "the documents in the index"),
    ("/summary [DOC]", "the brief of document DOC (a file name or title), or one line per document"),
    ("/reset", "forget the conversation (the next question starts afresh)"),
    ("/help", "this list"),
    ("/quit", "leave (Ctrl-D also works; Ctrl-C cancels an answer in progress)"),
)
COMMAND_NAMES = tuple(name.split()[0] for name, _ in COMMANDS)
SHORT_HELP = "Commands: " + " ".join(name for name, _ in COMMANDS) + "; anything else is a question."

Ask = Callable[[TokenCallback | None], Answer]


class View(Protocol):
    """How a Chat shows things; one implementation per medium."""

    def run_answer(self, ask: Ask, *, stream: bool) -> Answer: ...
    def answer(self, answer: Answer, *, first: bool) -> None: ...
    def passages(self, items: Sequence[tuple[int, Passage]], *, cited: bool) -> None: ...
    def context(self, n: int, passage: Passage, context: str) -> None: ...
    def documents(self, docs: Sequence[DocumentInfo]) -> None: ...
    def help(self) -> None: ...
    def notice(self, text: str) -> None: ...
    def error(self, text: str) -> None: ...


class PrintableView:
    """Hands everything to `inner` without escape codes (bot.printable).

    Sources, titles, passages, questions and model tokens all come from outside; cleaned
    here, once, neither view has to remember it.
    """

    def __init__(self, inner: View) -> None:
        self.inner = inner

    def run_answer(self, ask: Ask, *, stream: bool) -> Answer:
        def clean_ask(on_token: TokenCallback | None) -> Answer:
            if on_token is None:
                return ask(None)
            return ask(lambda piece: on_token(printable(piece)))

        return self.inner.run_answer(clean_ask, stream=stream)

    def answer(self, answer: Answer, *, first: bool) -> None:
        self.inner.answer(_printable_answer(answer), first=first)

    def passages(self, items: Sequence[tuple[int, Passage]], *, cited: bool) -> None:
        self.inner.passages([(n, _printable_passage(p)) for n, p in items], cited=cited)

    def context(self, n: int, passage: Passage, context: str) -> None:
        self.inner.context(n, _printable_passage(passage), printable(context))

    def documents(self, docs: Sequence[DocumentInfo]) -> None:
        self.inner.documents([replace(d, source=one_line(d.source), title=one_line(d.title)) for d in docs])

    def help(self) -> None:
        self.inner.help()

    def notice(self, text: str) -> None:
        self.inner.notice(printable(text))

    def error(self, text: str) -> None:
        self.inner.error(printable(text))


def _printable_passage(p: Passage) -> Passage:
    return replace(p, source=one_line(p.source), location=one_line(p.location), text=printable(p.text))


def _printable_citation(c: Citation) -> Citation:
    return replace(c, source=one_line(c.source), location=one_line(c.location), quote=printable(c.quote))


def _printable_answer(a: Answer) -> Answer:
    return replace(
        a,
        text=printable(a.text),
        note=printable(a.note),
        standalone_question=one_line(a.standalone_question),
        citations=tuple(_printable_citation(c) for c in a.citations),
        retrieved=tuple(_printable_passage(p) for p in a.retrieved),
    )


def run_chat(
    settings: Settings,
    *,
    engine: Engine | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> int:
    """Run the chat until /quit or end of input; returns the exit code (0)."""
    stdin = stdin if stdin is not None else sys.stdin
    stdout = stdout if stdout is not None else sys.stdout
    try:
        if _isatty(stdin) and _isatty(stdout):
            return _run_interactive(settings, engine, stdin, stdout)
        return _run_piped(settings, engine, stdin, stdout)
    finally:
        _wait_for_workers()


def _wait_for_workers(timeout: float = 30.0) -> None:
    """Let an abandoned answer or the warm-up finish: the interpreter shutting down under a
    thread that is inside torch or Chroma can abort the process."""
    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        if thread.name in {"dossier-answer", "dossier-warm-up"}:
            thread.join(max(0.0, deadline - time.monotonic()))


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


# -- the conversation and its commands (medium-independent) -------------------------------------


class Chat:
    """Conversation state, questions and slash commands; output goes through a View."""

    def __init__(
        self, settings: Settings, engine: Engine | None, view: View, *, stream: bool = False
    ) -> None:
        self.settings = settings
        self.view = view
        self.stream = stream
        self.history: list[Turn] = []
        self.last: Answer | None = None
        self._engine = engine
        self._engine_lock = threading.Lock()
        self._answered = 0

    @property
    def engine(self) -> Engine:
        with self._engine_lock:
            if self._engine is None:
                from bot.engine import Engine

                self._engine = Engine(self.settings)
            return self._engine

    def warm_up(self) -> None:
        """Load the model and open the index in the background while the person types."""

        def work() -> None:
            try:
                self.engine.retrieve("warm up", k=1)
            except Exception:  # the first question reports any problem properly
                log.debug("warm-up failed", exc_info=True)

        threading.Thread(target=work, name="dossier-warm-up", daemon=True).start()

    def handle(self, line: str) -> bool:
        """Act on one input line; False means the session is over."""
        line = line.strip()
        if not line:
            return True
        if line.startswith("/"):
            name, _, arg = line.partition(" ")
            name = name.lower()
            if name in ("/quit", "/exit", "/q"):
                return False
            return self._guard(lambda: self._command(name, arg.strip()))
        return self._guard(lambda: self._ask(line))

    def _guard(self, action: Callable[[], None]) -> bool:
        try:
            action()
        except KeyboardInterrupt:
            self.view.notice("cancelled")
        except DossierError as err:
            self.view.error(str(err))
        except Exception as err:
            log.exception("chat: unexpected error")
            self.view.error(excerpt_line(f"something went wrong ({type(err).__name__}: {err})", 300))
        return True

    def _ask(self, question: str) -> None:
        engine = self.engine
        history = tuple(self.history[-MAX_TURNS:])

        def ask(on_token: TokenCallback | None) -> Answer:
            return engine.ask(question, history, on_token=on_token)

        answer = self.view.run_answer(ask, stream=self.stream)
        self.last = answer
        self.history.append(Turn(answer.question, answer.text))
        self._answered += 1
        self.view.answer(answer, first=self._answered == 1)

    def _command(self, name: str, arg: str) -> None:
        if name == "/sources":
            answer = self._last_answer()
            if answer is not None:
                self.view.passages(numbered_passages(answer), cited=bool(answer.citations))
        elif name == "/open":
            self._open(arg)
        elif name == "/summary":
            self._summary(arg.strip("\"'“”‘’ "))
        elif name == "/docs":
            docs = self.engine.documents()  # read afresh: another process may have re-ingested
            if not docs:
                self.view.notice(str(NoIndexError()))
            else:
                self.view.documents(docs)
        elif name == "/reset":
            self.history.clear()
            self.last = None
            self.view.notice("Conversation forgotten: the next question starts afresh.")
        elif name == "/help":
            self.view.help()
        else:
            self.view.notice(f"Unknown command {name}. {SHORT_HELP}")

    def _summary(self, document: str) -> None:
        engine = self.engine

        def summarize(on_token: TokenCallback | None) -> Answer:
            return engine.summary(document or None)

        # Like an answer: /sources and /open show its passages, and follow-ups can build on it.
        answer = self.view.run_answer(summarize, stream=False)
        self.last = answer
        self.history.append(Turn(answer.question, answer.text))
        self._answered += 1
        self.view.answer(answer, first=self._answered == 1)

    def _last_answer(self) -> Answer | None:
        if self.last is None:
            self.view.notice("No answer yet: ask a question first.")
        return self.last

    def _open(self, arg: str) -> None:
        answer = self._last_answer()
        if answer is None:
            return
        items = numbered_passages(answer)
        numbers = [n for n, _ in items]
        if not items:
            self.view.notice("The last answer has no passages to open.")
            return
        span = f"{numbers[0]}" if len(numbers) == 1 else f"{numbers[0]}-{numbers[-1]}"
        try:
            wanted = int(arg.lstrip("[").rstrip("]"))
        except ValueError:
            self.view.notice(f"Usage: /open N, where N is a passage number of the last answer ({span}).")
            return
        passage = dict(items).get(wanted)
        if passage is None:
            self.view.notice(f"No passage {wanted}: the last answer has passages {span}.")
            return
        context = self.engine.context(passage) if passage.end > passage.start else passage.text
        self.view.context(wanted, passage, context)


def numbered_passages(answer: Answer) -> list[tuple[int, Passage]]:
    """The passages behind an answer, numbered as the person sees them.

    Cited answers use their [n] numbers; abstentions (no citations) number the retrieved
    passages in rank order, as the "closest passages" list does.
    """
    if not answer.citations:
        return list(enumerate(answer.retrieved, 1))
    by_id = {p.id: p for p in answer.retrieved}
    by_place = {(p.source, p.location): p for p in answer.retrieved}
    items: list[tuple[int, Passage]] = []
    for c in answer.citations:
        passage = by_id.get(c.passage_id) or by_place.get((c.source, c.location))
        if passage is None:  # not expected: citations are checked against what was retrieved
            passage = Passage(id=c.passage_id, source=c.source, text=c.quote, location=c.location, score=0.0)
        items.append((c.n, passage))
    return items


def call_in_worker(ask: Ask, on_token: TokenCallback | None = None) -> Answer:
    """Run `ask` in a worker thread and wait; tokens are delivered on this thread.

    The wait wakes up often, so Ctrl-C (KeyboardInterrupt, which only the main thread
    receives) abandons the answer at once; the worker finishes on its own and its result
    is dropped.
    """
    events: queue.Queue[tuple[str, Any]] = queue.Queue()

    def work() -> None:
        try:
            sink = (lambda piece: events.put(("token", piece))) if on_token is not None else None
            events.put(("done", ask(sink)))
        except BaseException as err:
            events.put(("error", err))

    threading.Thread(target=work, name="dossier-answer", daemon=True).start()
    while True:
        try:
            kind, value = events.get(timeout=0.1)
        except queue.Empty:
            continue
        if kind == "token":
            assert on_token is not None
            on_token(value)
        elif kind == "done":
            return value  # type: ignore[no-any-return]
        else:
            raise value


def _rewritten(answer: Answer) -> bool:
    """Whether a follow-up was searched as a different, standalone question (worth showing)."""
    return bool(answer.standalone_question) and answer.standalone_question != answer.question


def find_span(context: str, text: str) -> tuple[int, int] | None:
    """Where `text` (a passage) sits in `context` (its surroundings), if it can be found."""
    at = context.find(text)
    if at >= 0:
        return at, at + len(text)
    head, tail = text[:60], text[-60:]
    start = context.find(head)
    if start < 0:
        return None
    end = context.find(tail, start)
    return (start, end + len(tail)) if end >= 0 else None


# -- piped: plain text ------------------------------------------------------------------------------


class PlainView:
    """Plain text for pipes and files: no colour, no spinner, no cursor movement."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def write(self, text: str) -> None:
        self.out.write(text.rstrip("\n") + "\n\n")
        self.out.flush()

    def run_answer(self, ask: Ask, *, stream: bool) -> Answer:
        return call_in_worker(ask)  # tokens are not streamed: the final answer is printed whole

    def answer(self, answer: Answer, *, first: bool) -> None:
        text = format_answer(answer)
        if _rewritten(answer):
            text = f"(follow-up read as: {answer.standalone_question})\n{text}"
        self.write(text)

    def passages(self, items: Sequence[tuple[int, Passage]], *, cited: bool) -> None:
        heading = "Cited passages:" if cited else "Retrieved passages (nothing was cited):"
        blocks = [heading]
        for n, p in items:
            blocks.append(f"[{n}] {p.source} ({p.location})\n{_indent(p.text.strip())}")
        self.write("\n\n".join(blocks))

    def context(self, n: int, passage: Passage, context: str) -> None:
        span = find_span(context, passage.text)
        if span is not None:  # mark the passage inside its context
            start, end = span
            context = f"{context[:start]}>>> {context[start:end]} <<<{context[end:]}"
        self.write(f"[{n}] {passage.source} ({passage.location}), in context:\n\n{context.strip()}")

    def documents(self, docs: Sequence[DocumentInfo]) -> None:
        lines = [f"{_documents_and_chunks(docs)}:"]
        for d in docs:
            title = f" — {d.title}" if d.title and d.title != d.source else ""
            lines.append(f"  {d.source}{title} ({d.chunks} chunks)")
        self.write("\n".join(lines))

    def help(self) -> None:
        width = max(len(name) for name, _ in COMMANDS)
        lines = ["Ask a question about the documents; follow-ups use the conversation so far."]
        lines += [f"  {name.ljust(width)}  {text}" for name, text in COMMANDS]
        self.write("\n".join(lines))

    def notice(self, text: str) -> None:
        self.write(text)

    def error(self, text: str) -> None:
        self.write(f"error: {text}")


def _documents_and_chunks(docs: Sequence[DocumentInfo]) -> str:
    chunks = sum(d.chunks for d in docs)
    return f"{len(docs)} document{'s' * (len(docs) != 1)}, {chunks} chunk{'s' * (chunks != 1)}"


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line if line.strip() else "" for line in text.splitlines())


def _run_piped(settings: Settings, engine: Engine | None, stdin: TextIO, stdout: TextIO) -> int:
    chat = Chat(settings, engine, PrintableView(PlainView(stdout)))
    while True:
        line = stdin.readline()
        if not line:
            return 0
        line = line.strip()
        if not line:
            continue
        stdout.write(f"> {excerpt_line(one_line(line), 300)}\n")
        if not chat.handle(line):
            stdout.flush()
            return 0


# -- interactive: prompt_toolkit + rich --------------------------------------------------------------


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

        if _rewritten(answer):
            self._print(Text(f"↳ read as: {answer.standalone_question}", style="dim italic"))
        if answer.abstained:
            self._print(Text("Not in the documents", style="bold yellow"))
            self._print(Text(answer.text, style="yellow"))
        else:
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
                self._source_line(c.n, c.source, c.location, c.quote)
        if first and (answer.citations or answer.retrieved):
            self._print(Text("/sources shows the full passages, /open N one in context.", style="dim"))
        self._print()

    def _source_line(self, n: int, source: str, location: str, quote: str) -> None:
        from rich.text import Text

        line = Text.assemble((f"[{n}] ", "bold cyan"), (source, "bold"), (f" · {location}", "dim"))
        self._print(line)
        self._print(Text(f"    “{excerpt_line(quote, QUOTE_CHARS)}”", style="italic dim"))

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

        table = Table(title=_documents_and_chunks(docs), title_justify="left")
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


def _prompt_session(settings: Settings, stdin: TextIO, stdout: TextIO) -> Any:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
    from prompt_toolkit.completion import WordCompleter
    from prompt_toolkit.history import FileHistory, History, InMemoryHistory
    from prompt_toolkit.input import create_input
    from prompt_toolkit.output import create_output

    history: History
    try:
        settings.home.mkdir(parents=True, exist_ok=True)
        history = FileHistory(str(settings.home / HISTORY_FILE))
    except OSError as err:  # a read-only home still allows a session, without saved history
        log.warning("chat history not saved: %s", err)
        history = InMemoryHistory()
    return PromptSession(
        history=history,
        auto_suggest=AutoSuggestFromHistory(),
        completer=WordCompleter(list(COMMAND_NAMES), sentence=True),
        complete_while_typing=True,
        input=create_input(stdin),
        output=create_output(stdout),
    )


def _run_interactive(settings: Settings, engine: Engine | None, stdin: TextIO, stdout: TextIO) -> int:
    view = PrintableView(RichView(stdout))
    chat = Chat(settings, engine, view, stream=settings.llm != "extractive")
    session = _prompt_session(settings, stdin, stdout)
    view.notice(f"Dossier: ask about the documents in {settings.home}. /help lists commands, Ctrl-D quits.")
    chat.warm_up()
    while True:
        try:
            line = session.prompt([("bold ansicyan", PROMPT)])
        except KeyboardInterrupt:  # Ctrl-C at the prompt: drop the line, prompt again
            continue
        except EOFError:  # Ctrl-D
            return 0
        if not chat.handle(line):
            return 0
