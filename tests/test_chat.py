"""`dossier chat` driven through stdin/stdout with the real engine over the report corpus (indexed
with the fake embedder: the chat plumbing, not the model, is under test here)."""

from __future__ import annotations

import _thread
import io
import logging
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from bot.chat import run_chat
from bot.chat_rich import RichView
from bot.chat_session import Chat
from bot.types import Answer, Turn
from dossier_common.settings import Settings
from tests.openai_stub import OpenAIStub, openai_stub  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[@-_]")
FOUNDER = "Who founded Safeguard Defenders?"
FOLLOW_UP = "Where is his organization based?"


def chat(engine: Any, settings: Settings, *lines: str) -> tuple[int, list[tuple[str, str]]]:
    """Feed `lines` to a piped chat; returns the exit code and (input, output) pairs."""
    out = io.StringIO()
    code = run_chat(settings, engine=engine, stdin=io.StringIO("\n".join(lines) + "\n"), stdout=out)
    text = out.getvalue()
    assert "\x1b" not in text  # piped output is plain: no colour, no cursor movement
    return code, transcript(text)


def transcript(text: str) -> list[tuple[str, str]]:
    pairs = []
    for block in re.split(r"^> ", text, flags=re.M)[1:]:
        line, _, output = block.partition("\n")
        pairs.append((line, output.strip()))
    return pairs


def test_follow_up_is_read_with_the_conversation(fake_report_engine, fake_report_index: Settings) -> None:
    code, pairs = chat(fake_report_engine, fake_report_index, FOUNDER, FOLLOW_UP)
    assert code == 0
    assert [line for line, _ in pairs] == [FOUNDER, FOLLOW_UP]
    first, second = pairs[0][1], pairs[1][1]
    assert "Dahlin" in first
    assert "read as" not in first
    # The follow-up is searched with the earlier question's subject.
    assert re.search(r"^\(follow-up read as: .*Safeguard.*\)$", second, re.M), second
    answer_text = second.split("\n\nSources:")[0]
    assert "Spain" in answer_text


def test_second_follow_up_keeps_the_subject(fake_report_engine, fake_report_index: Settings) -> None:
    third = "And what is his job title there?"
    code, pairs = chat(fake_report_engine, fake_report_index, FOUNDER, FOLLOW_UP, third)
    assert code == 0 and [line for line, _ in pairs] == [FOUNDER, FOLLOW_UP, third]
    # read with the subject of the first question, two questions back
    assert re.search(r"^\(follow-up read as: .*Safeguard Defenders job title.*\)$", pairs[2][1], re.M)


def test_reset_forgets_the_conversation(fake_report_engine, fake_report_index: Settings) -> None:
    _, pairs = chat(fake_report_engine, fake_report_index, FOUNDER, "/reset", FOLLOW_UP, "/sources")
    assert pairs[1] == ("/reset", "Conversation forgotten: the next question starts afresh.")
    assert "read as" not in pairs[2][1]  # searched as asked: no earlier turn to lean on
    assert pairs[3][0] == "/sources" and "[1]" in pairs[3][1]


def test_sources_and_open_show_the_passages(fake_report_engine, fake_report_index: Settings) -> None:
    _, pairs = chat(
        fake_report_engine, fake_report_index, FOUNDER, "/sources", "/open 1", "/open 9", "/open x"
    )
    answer, sources, opened, missing, bad = (output for _, output in pairs)
    quote = re.search(r"^\s+“(.*)”$", answer, re.M)
    assert quote is not None, answer

    assert sources.startswith("Cited passages:")
    assert "[1] overseas-police-stations-canada.txt (lines " in sources
    # The full passage, not the trimmed quote under the answer.
    assert "So, at least in some countries, they’re certainly aware of it." in sources
    assert len(sources) > len(quote.group(1))

    # /open centres on the cited quote, under the citation's own location (its lines on disk).
    located = re.search(r"^  \[1\] overseas-police-stations-canada\.txt \((lines? [\d-]+)\)$", answer, re.M)
    assert located is not None, answer
    assert opened.startswith(f"[1] overseas-police-stations-canada.txt ({located.group(1)}), in context:")
    marked = re.search(r">>> (.*?) <<<", opened, re.S)
    assert marked is not None and marked.group(1).startswith("Peter Dahlin, founder and director")
    assert " ".join(marked.group(1).split()) == quote.group(1)
    before, after = opened[: marked.start()], opened[marked.end() :]
    assert "Spain-based Safeguard Defenders" in before  # the text around the passage
    assert "Other places" in after

    assert missing == "No passage 9: the last answer has passages 1."
    assert bad == "Usage: /open N, where N is a passage number of the last answer (1)."


def test_abstention_lists_closest_passages_that_open_by_rank(
    fake_report_engine, fake_report_index: Settings
) -> None:
    _, pairs = chat(
        fake_report_engine, fake_report_index, "What is the capital of Peru?", "/sources", "/open 2"
    )
    answer, sources, opened = (output for _, output in pairs)
    assert answer.startswith("The documents don't say.")
    assert "Closest passages:" in answer
    assert sources.startswith("Retrieved passages (nothing was cited):")
    assert "[5] overseas-police-stations-canada.txt" in sources
    second = re.search(r"^\[2\] (.*)$", sources, re.M)
    assert second is not None
    assert opened.startswith(f"[2] {second.group(1)}, in context:")
    assert ">>> " in opened and " <<<" in opened


def test_docs_lists_what_is_indexed(fake_report_engine, fake_report_index: Settings) -> None:
    _, pairs = chat(fake_report_engine, fake_report_index, "/docs")
    [(_, output)] = pairs
    chunks = sum(d.chunks for d in fake_report_engine.documents())
    assert output.splitlines()[0] == f"1 document, {chunks} chunks:"
    assert "overseas-police-stations-canada.txt — There are likely three or more" in output


def test_help_unknown_command_and_quit(fake_report_engine, fake_report_index: Settings) -> None:
    code, pairs = chat(
        fake_report_engine, fake_report_index, "/help", "/frobnicate 3", "/quit", FOUNDER, "/docs"
    )
    assert code == 0
    assert [line for line, _ in pairs] == ["/help", "/frobnicate 3", "/quit"]  # nothing after /quit
    help_text = pairs[0][1]
    for command in ("/sources", "/open N", "/docs", "/summary [DOC]", "/reset", "/help", "/quit"):
        assert re.search(rf"^  {re.escape(command)} ", help_text, re.M), command
    assert pairs[1][1] == (
        "Unknown command /frobnicate. Commands: /sources /open N /docs /summary [DOC] /reset /help /quit; "
        "anything else is a question."
    )
    assert pairs[2][1] == ""


def test_summary_shows_the_brief_as_cited_bullets(fake_report_engine, fake_report_index: Settings) -> None:
    source = fake_report_engine.documents()[0].source
    _, pairs = chat(
        fake_report_engine,
        fake_report_index,
        "/summary",
        "/sources",
        "/summary zebra crossing",
        f'/SUMMARY "{source}"',
    )
    (_, brief), (_, sources), (_, missing), (_, named) = pairs
    text, _, cited = brief.partition("\n\nSources:\n")
    bullets = text.split("\n")
    assert 3 <= len(bullets) <= 6
    assert all(re.fullmatch(r"- .+ \[\d+\]", b) for b in bullets), bullets
    assert "54 Chinese overseas police stations in 30 countries" in text
    assert re.search(rf"^  \[1\] {re.escape(source)} \(lines \d+-\d+\)$", cited, re.M)
    # /sources and /open work on a summary as on any answer
    assert sources.startswith("Cited passages:") and f"[1] {source}" in sources
    assert missing.startswith("error: No indexed document matches 'zebra crossing'")
    assert named == brief  # the one document, named (quotes are not part of the name): the same brief


def test_bullets_wrap_with_a_hanging_indent_in_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    long = "The Harbor Lighthouse was built in 1872 by the engineer Margaret Olsen on the northern cliff."
    answer = Answer(
        "Summarize x.", f"- {long} [1]\n- It is 42 metres tall. [2]", (), False, (), kind="overview"
    )
    out = FakeTerminal()
    RichView(out).answer(answer, first=False)
    lines = [line.rstrip() for line in ANSI.sub("", out.getvalue()).splitlines() if line.strip()]
    assert lines[0].startswith("• The Harbor Lighthouse") and len(lines[0]) <= 60
    assert lines[1].startswith("  ") and lines[1].strip().endswith(
        "cliff. [1]"
    )  # under the text, not the dot
    assert lines[2] == "• It is 42 metres tall. [2]"


def test_commands_before_any_answer(fake_report_engine, fake_report_index: Settings) -> None:
    _, pairs = chat(fake_report_engine, fake_report_index, "/sources", "/open 1")
    assert [output for _, output in pairs] == ["No answer yet: ask a question first."] * 2


def test_end_of_input_ends_the_session(fake_report_engine, fake_report_index: Settings) -> None:
    out = io.StringIO()
    code = run_chat(
        fake_report_index, engine=fake_report_engine, stdin=io.StringIO("\n  \n/help"), stdout=out
    )
    assert code == 0
    assert out.getvalue().startswith("> /help\nAsk a question")
    assert (
        run_chat(fake_report_index, engine=fake_report_engine, stdin=io.StringIO(""), stdout=io.StringIO())
        == 0
    )


def test_error_mid_session_is_one_line(fake_report_engine, fake_report_index: Settings) -> None:
    code, pairs = chat(fake_report_engine, fake_report_index, "x" * 10_000, FOUNDER)
    assert code == 0
    echoed, error = pairs[0]
    assert len(echoed) <= 300  # the echo of a huge line is trimmed
    assert error == "error: That question is 10,000 characters long; the limit is 2,000. Please shorten it."
    assert "Dahlin" in pairs[1][1]


def test_no_index_is_one_line_and_the_session_goes_on(settings: Settings, fake_embedder) -> None:
    from bot.engine import Engine

    engine = Engine(settings, embedder=fake_embedder)
    try:
        code, pairs = chat(engine, settings, FOUNDER, "/docs", "/help")
    finally:
        engine.close()
    assert code == 0
    assert pairs[0][1] == "error: No documents indexed yet: run `dossier ingest PATH`"
    assert pairs[1][1] == "No documents indexed yet: run `dossier ingest PATH`"
    assert pairs[2][1].startswith("Ask a question about the documents")


class BrokenEngine:
    def ask(self, question: str, history: Sequence[Turn] = (), **kwargs: Any) -> Answer:
        raise RuntimeError("boom")


def test_unexpected_error_is_one_line_and_logged(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="bot.chat_session"):
        code, pairs = chat(BrokenEngine(), settings, "anything?", "/help")
    assert code == 0
    assert pairs[0][1] == "error: something went wrong (RuntimeError: boom)"
    assert pairs[1][0] == "/help"
    [record] = caplog.records
    assert record.exc_info is not None and "boom" in str(record.exc_info[1])


class StallingEngine:
    """The first question never finishes by itself: it presses Ctrl-C, as a person would, and
    waits until the session has moved on to the next question (the chat waits for abandoned
    workers at exit, so releasing it then costs nothing)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.release = threading.Event()
        self.questions: list[str] = []

    def ask(self, question: str, history: Sequence[Turn] = (), **kwargs: Any) -> Answer:
        self.questions.append(question)
        if len(self.questions) == 1:
            _thread.interrupt_main()  # SIGINT's KeyboardInterrupt, in the waiting main thread
            self.release.wait(30)
        else:
            self.release.set()  # the chat asked again: the first answer was abandoned
        return self.engine.ask(question, history, **kwargs)


def test_ctrl_c_cancels_the_answer_not_the_session(fake_report_engine, fake_report_index: Settings) -> None:
    engine = StallingEngine(fake_report_engine)
    try:
        code, pairs = chat(engine, fake_report_index, "How many stations were found?", FOUNDER, "/sources")
    finally:
        engine.release.set()
    assert code == 0
    assert pairs[0][1] == "cancelled"
    assert "Dahlin" in pairs[1][1]
    assert "[1] overseas-police-stations-canada.txt (lines " in pairs[2][1]  # the answer that finished


# -- with a language model (the real LangChain client against the local stub) -------------------------


@pytest.fixture
def llm_engine(openai_stub: OpenAIStub, fake_report_index: Settings, fake_embedder, monkeypatch):  # noqa: F811
    from bot.engine import Engine
    from bot.llm_client import make_chat_model

    monkeypatch.setenv("OPENAI_BASE_URL", openai_stub.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    settings = fake_report_index.model_copy(update={"llm": "openai:gpt-test"})
    engine = Engine(
        settings, embedder=fake_embedder, chat_model=make_chat_model("openai:gpt-test", timeout=5)
    )
    yield engine
    engine.close()


def test_llm_down_falls_back_with_a_note(openai_stub: OpenAIStub, llm_engine) -> None:  # noqa: F811
    openai_stub.enqueue_error(500)
    code, pairs = chat(llm_engine, llm_engine.settings, FOUNDER, "/help")
    assert code == 0
    assert "Dahlin" in pairs[0][1]
    assert re.search(
        r"^note: The language model failed \(.*\); showing the extractive answer\.", pairs[0][1], re.M
    )
    assert pairs[1][1].startswith("Ask a question")


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_llm_tokens_stream_in_a_terminal_then_the_final_answer(
    openai_stub: OpenAIStub,  # noqa: F811
    llm_engine,
) -> None:
    pieces = ["Peter Dahlin ", "founded ", "Safeguard Defenders ", "[1][9]."]
    openai_stub.enqueue("".join(pieces), chunks=pieces)
    out = FakeTerminal()
    Chat(llm_engine.settings, llm_engine, RichView(out), stream=True).handle(FOUNDER)
    raw = out.getvalue()
    text = ANSI.sub("", raw)
    assert "\x1b[" in raw  # a terminal gets colour
    assert "Safeguard Defenders [1][9]" in text  # the raw reply, as it streamed
    final = "Peter Dahlin founded Safeguard Defenders [1]."
    assert final in text  # the checked answer replaces it: [9] was never retrieved
    assert text.rindex(final) > text.rindex("[1][9]")
    assert "Sources" in text and "[1] overseas-police-stations-canada.txt · " in text


# -- the real command ----------------------------------------------------------------------------------


def test_dossier_chat_answers_questions_piped_on_stdin(report_index: Settings, dossier_cli) -> None:
    proc = dossier_cli("chat", home=report_index.home, stdin=f"{FOUNDER}\n/docs\n/quit\nnot asked\n")
    assert proc.returncode == 0, proc.stderr
    pairs = transcript(proc.stdout)
    assert [line for line, _ in pairs] == [FOUNDER, "/docs", "/quit"]
    assert "Dahlin" in pairs[0][1] and "Sources:" in pairs[0][1]
    assert "overseas-police-stations-canada.txt" in pairs[1][1]
    assert "\x1b" not in proc.stdout
