"""Terminal output and command-line edges: no escape codes reach the terminal, bad options and
environment errors give one line, a download that cannot be loaded is not kept."""

from __future__ import annotations

import io
import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bot.chat_views import PlainView, PrintableView
from bot.printable import json_printable, one_line, printable
from bot.types import Answer, Citation, DocumentInfo, Passage
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


def test_titles_and_file_names_reach_the_terminal_clean(tmp_path: Path, dossier_cli) -> None:
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
    ingest = dossier_cli("ingest", str(docs), home=home)
    assert ingest.returncode == 0, ingest.stderr
    assert_clean(ingest.stdout + ingest.stderr)

    ask = dossier_cli("ask", "What temperature does the kiln at Tarnby run at?", home=home)
    assert ask.returncode == 0, ask.stderr
    assert_clean(ask.stdout)
    assert "red.md" in ask.stdout

    chat = dossier_cli("chat", home=home, stdin=f"/docs\nHow much is the ferry{CLEAR}?\n")
    assert chat.returncode == 0, chat.stderr
    assert_clean(chat.stdout)
    assert "PWNED" in chat.stdout and "red.md" in chat.stdout

    as_json = dossier_cli("ask", "What temperature does the kiln at Tarnby run at?", "--json", home=home)
    assert_clean(as_json.stdout)
    assert json.loads(as_json.stdout)["citations"][0]["source"] == "\x1b[31mred\x1b[0m.md"  # data intact


# -- options and the environment -------------------------------------------------------------------


@pytest.mark.parametrize("k", ["-1", "0", "100000"])
def test_k_out_of_range_is_one_line(tmp_path: Path, k: str) -> None:
    result = _run(tmp_path / "home", "ask", "Anything?", "-k", k)
    assert result.returncode == 2
    assert result.stderr.strip() == f"dossier: -k must be between 1 and 50 (got {k})."


def test_environment_errors_are_one_line(tmp_path: Path) -> None:
    home_file = tmp_path / "not-a-folder"
    home_file.write_text("")
    ingest = _run(home_file, "ingest", str(ROOT / "docs" / "sample"))
    assert ingest.returncode == 1
    assert "Traceback" not in ingest.stderr and len(ingest.stderr.strip().splitlines()) == 1
    assert str(home_file) in ingest.stderr

    export = _run(
        tmp_path / "home", "feedback", "export", "-o", str(tmp_path / "missing" / "dir" / "f.jsonl")
    )
    assert export.returncode == 1
    assert (
        export.stderr.strip()
        == f"dossier: No such file or directory: {tmp_path / 'missing' / 'dir' / 'f.jsonl'}"
    )


# -- a fetched file that cannot be loaded is not kept ------------------------------------------------


class _BrokenPdf(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"%PDF-1.4\nthis is not really a PDF\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/pdf")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def broken_pdf_url() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _BrokenPdf)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/report.pdf"
    httpd.shutdown()
    httpd.server_close()


def test_download_that_cannot_be_loaded_is_removed(tmp_path: Path, broken_pdf_url: str, dossier_cli) -> None:
    home = tmp_path / "home"
    result = dossier_cli("ingest", broken_pdf_url, home=home, DOSSIER_FETCH_ALLOW_HOSTS="127.0.0.1")
    assert result.returncode == 1
    assert "failed:" in result.stderr and "Traceback" not in result.stderr
    web = home / "documents" / "web"
    assert list(web.iterdir()) == []  # neither the PDF nor its sidecar is left to fail again


def test_a_newline_in_a_source_name_cannot_forge_a_line() -> None:
    from bot.render import format_answer

    forged = Citation(1, "a\nfailed: fake.md", "line 1", "The kiln runs hot.", "p1")
    text = format_answer(Answer("q", "The kiln runs hot [1].", (forged,), abstained=False, retrieved=()))
    assert "  [1] a failed: fake.md (line 1)" in text
    assert not any(line.startswith("failed:") for line in text.splitlines())
