"""`dossier chat`: a terminal REPL over the engine, with follow-ups and slash commands.

Two front ends share one `Chat` (conversation state and commands, `bot.chat_session`):

- interactive (stdin and stdout are terminals): prompt_toolkit for line editing and
  persistent history, rich (`bot.chat_rich`) for colour, a spinner and streamed LLM tokens;
- piped (anything else): plain text (`bot.chat_views`), one answer per input line, so
  `dossier chat < questions.txt > answers.txt` works and the output holds no escape codes.

Nothing heavy is imported here: `bot.engine` (LangChain, then torch and Chroma on first
use), rich and prompt_toolkit are imported when first needed, so the prompt comes up at once.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, TextIO

from bot.chat_rich import RichView
from bot.chat_session import COMMAND_NAMES, Chat
from bot.chat_views import PlainView, PrintableView
from bot.printable import one_line
from bot.render import excerpt_line

if TYPE_CHECKING:
    from bot.engine import Engine
    from dossier_common.settings import Settings

log = logging.getLogger(__name__)

HISTORY_FILE = "chat_history"
PROMPT = "dossier> "


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
