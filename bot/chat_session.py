"""The conversation of `dossier chat` and its slash commands, whatever the medium: a `Chat`
keeps the turns and the last answer and shows everything through a `View`."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from bot.render import excerpt_line
from bot.types import Answer, DocumentInfo, Passage, TokenCallback, Turn
from dossier_common.errors import DossierError, NoIndexError

if TYPE_CHECKING:
    from bot.engine import Engine
    from dossier_common.settings import Settings

log = logging.getLogger(__name__)

MAX_TURNS = 6  # earlier turns passed to the engine; follow-ups rarely reach further back

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
        if answer.abstained:  # a knowledge gap (`dossier gaps`)
            from bot.gaps import GapStore, record_declined

            record_declined(GapStore.for_settings(self.settings), answer.question, "chat")
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
        passage = at_quote(answer, wanted, passage)
        context = self.engine.context(passage) if passage.end > passage.start else passage.text
        self.view.context(wanted, passage, context)


def at_quote(answer: Answer, n: int, passage: Passage) -> Passage:
    """The cited passage narrowed to citation [n]'s quote, under the citation's location, so
    /open shows the quote in its context (not the passage's start) where the answer cites it."""
    citation = next((c for c in answer.citations if c.n == n), None)
    at = passage.text.find(citation.quote) if citation is not None and citation.quote else -1
    if citation is None or at < 0:
        return passage
    if passage.end <= passage.start:  # no offsets into its source
        return replace(passage, text=citation.quote, location=citation.location)
    start = passage.start + at
    return replace(
        passage, text=citation.quote, location=citation.location, start=start, end=start + len(citation.quote)
    )


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
