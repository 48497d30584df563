"""How the chat shows things without a terminal's extras: every view's input cleaned of escape
codes (`PrintableView`), plain text for pipes and files (`PlainView`), and the worker thread
an answer runs in so Ctrl-C can abandon it."""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, TextIO

from bot.chat_session import COMMANDS, Ask, View
from bot.printable import one_line, printable
from bot.render import format_answer
from bot.types import Answer, Citation, DocumentInfo, Passage, TokenCallback


class PrintableView:
    """Hands everything to `inner` without escape codes (ingest.printable).

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
        source_note=printable(a.source_note),
        standalone_question=one_line(a.standalone_question),
        citations=tuple(_printable_citation(c) for c in a.citations),
        retrieved=tuple(_printable_passage(p) for p in a.retrieved),
    )


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


def rewritten(answer: Answer) -> bool:
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
        if rewritten(answer):
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
        lines = [f"{documents_and_chunks(docs)}:"]
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


def documents_and_chunks(docs: Sequence[DocumentInfo]) -> str:
    chunks = sum(d.chunks for d in docs)
    return f"{len(docs)} document{'s' * (len(docs) != 1)}, {chunks} chunk{'s' * (chunks != 1)}"


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line if line.strip() else "" for line in text.splitlines())
