"""Terminal output: no escape codes reach the terminal from file names, titles, answers or questions."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

from bot.chat import PlainView, PrintableView
from bot.types import Answer, Citation, DocumentInfo, Passage
from ingest.printable import json_printable, one_line, printable
from tests.helpers_proc import ROOT, dossier_args, dossier_env

ESC = "\x1b"
CLEAR = "\x1b[2J\x1b[H"
CLIPBOARD = "\x1b]52;c;cm0gLXJmIH4=\x07"  # OSC 52: write "rm -rf ~" to the clipboard
HOSTILE = f"{CLEAR}PWNED{CLIPBOARD}\x9b31m\u202etxt.exe\r"


def assert_clean(text: str) -> None:
    for bad in (ESC, "\x07", "\x9b", "\u202e", "\r"):
        assert bad not in text, (bad, text)


# -- the one function ------------------------------------------------------------------------


def test_printable_removes_sequences_and_controls_keeps_text() -> None:
    assert printable(HOSTILE) == "PWNEDtxt.exe"
    assert printable("Zürich\tcafé — 报告\nline two") == "Zürich\tcafé — 报告\nline two"
    assert printable("\x1b[31mred\x1b[0m.md") == "red.md"
    assert printable("unterminated \x1b]0;title") == "unterminated "
    assert one_line("a\nfailed: fake.md") == "a failed: fake.md"


def test_json_printable_escapes_without_changing_the_data() -> None:
    data = {"title": HOSTILE, "source": "a\u2066b\x85c"}
    text = json_printable(json.dumps(data, ensure_ascii=False))
    assert_clean(text)
    assert "\x85" not in text and "\u2066" not in text
    assert json.loads(text) == data


# -- the chat's views --------------------------------------------------------------------------


def _hostile_answer() -> Answer:
    passage = Passage(
        id="p1",
        source=f"{CLEAR}evil.md",
        text=f"The kiln runs hot.{CLIPBOARD}",
        location="lines 1-2",
        score=1.0,
    )
    citation = Citation(1, passage.source, passage.location, f"The kiln{CLEAR} runs hot.", "p1")
    return Answer(
        question="q",
        text=f"The kiln runs hot [1].{CLEAR}{CLIPBOARD}",  # as an LLM reply might say it
        citations=(citation,),
        abstained=False,
        retrieved=(passage,),
        standalone_question=f"How hot?{CLIPBOARD}",
        note=f"note{CLEAR}",
    )


def test_plain_chat_view_prints_no_escape_codes() -> None:
    out = io.StringIO()
    view = PrintableView(PlainView(out))
    answer = _hostile_answer()
    view.answer(answer, first=True)
    view.passages([(1, answer.retrieved[0])], cited=True)
    view.context(1, answer.retrieved[0], f"before {answer.retrieved[0].text} after")
    view.documents([DocumentInfo(f"{CLEAR}a.md", f"{CLIPBOARD}Title", 1, 10, 0.0)])
    view.notice(HOSTILE)
    view.error(HOSTILE)
    printed = out.getvalue()
    assert_clean(printed)
    assert "The kiln runs hot [1]." in printed and "evil.md" in printed and "Title" in printed


class _Recorder:
    """A view that keeps the streamed tokens it is shown."""

    def __init__(self) -> None:
        self.tokens: list[str] = []

    def run_answer(self, ask, *, stream):  # type: ignore[no-untyped-def]
        return ask(self.tokens.append)


def test_streamed_tokens_are_cleaned() -> None:
    view = PrintableView(_Recorder())  # type: ignore[arg-type]

    def ask(on_token):  # type: ignore[no-untyped-def]
        for piece in ["The kiln", CLEAR, " runs", CLIPBOARD, " hot."]:
            on_token(piece)
        return _hostile_answer()

    view.run_answer(ask, stream=True)
    assert "".join(view.inner.tokens) == "The kiln runs hot."  # type: ignore[attr-defined]


# -- end to end: titles and file names from a folder --------------------------------------------


def _run(home: Path, *args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        dossier_args(*args),
        env=dossier_env(home, **env),
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_titles_and_file_names_reach_the_terminal_clean(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "page.html").write_text(
        f"<html><head><title>{CLEAR}PWNED{CLIPBOARD}</title></head>"
        "<body><p>The ferry to Quellmoor costs 4 euros.</p></body></html>",
        encoding="utf-8",
    )
    (docs / "\x1b[31mred\x1b[0m.md").write_text(
        "The kiln at Tarnby runs at 1260 degrees.\n", encoding="utf-8"
    )
    home = tmp_path / "home"
    ingest = _run(home, "ingest", str(docs))
    assert ingest.returncode == 0, ingest.stderr
    assert_clean(ingest.stdout + ingest.stderr)

    ask = _run(home, "ask", "What temperature does the kiln at Tarnby run at?")
    assert ask.returncode == 0, ask.stderr
    assert_clean(ask.stdout)
    assert "red.md" in ask.stdout

    chat = _run(home, "chat", stdin=f"/docs\nHow much is the ferry{CLEAR}?\n")
    assert chat.returncode == 0, chat.stderr
    assert_clean(chat.stdout)
    assert "PWNED" in chat.stdout and "red.md" in chat.stdout

    as_json = _run(home, "ask", "What temperature does the kiln at Tarnby run at?", "--json")
    assert_clean(as_json.stdout)
    assert json.loads(as_json.stdout)["citations"][0]["source"] == "\x1b[31mred\x1b[0m.md"  # data intact
