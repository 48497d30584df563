"""What an LLM reply may put in front of a reader: cited claims only, bounded length, bounded time.

Through the real LangChain OpenAI client, against the local stub or a deliberately slow
local server on 127.0.0.1.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bot.discord_render import render_answer
from bot.llm import LLMAnswerer, note_cut, note_model_failed, note_uncited
from bot.llm_citations import cap_reply, drop_uncited_claims
from bot.llm_client import condense_question, make_chat_model
from bot.types import Answer, Turn
from tests.helpers_proc import drip
from tests.openai_stub import OpenAIStub, openai_stub  # noqa: F401  (fixture)
from tests.test_llm import PASSAGES, QUESTION, FakeFallback, ModelFactory, fallback, make_model  # noqa: F401

# -- every claim cited -------------------------------------------------------------------------


def test_uncited_and_injected_sentences_are_left_out_with_a_note(
    openai_stub: OpenAIStub,  # noqa: F811
    make_model: ModelFactory,  # noqa: F811
    fallback: FakeFallback,  # noqa: F811
) -> None:
    openai_stub.enqueue(
        "The mayor resigned in disgrace. The moon is made of cheese. "
        "Ireland ordered the Dublin station to close in October 2022 [3]."
    )
    draft = LLMAnswerer(make_model(), fallback).answer(QUESTION, PASSAGES)

    assert draft.text == "Ireland ordered the Dublin station to close in October 2022 [1]."
    assert draft.note == note_uncited(2)
    assert draft.note == "Left out 2 sentences of the language model's answer that cited no passage."
    assert fallback.calls == []


def test_fully_cited_reply_keeps_short_connectives_and_lists(
    openai_stub: OpenAIStub,  # noqa: F811
    make_model: ModelFactory,  # noqa: F811
    fallback: FakeFallback,  # noqa: F811
) -> None:
    reply = (
        "Yes. The Netherlands ordered two stations to close. [3]\n"
        "The closures were these:\n"
        "1. Amsterdam and Rotterdam [3]\n"
        "2. Dublin, in October 2022 [3]"
    )
    openai_stub.enqueue(reply)
    draft = LLMAnswerer(make_model(), fallback).answer(QUESTION, PASSAGES)

    assert draft.text == reply.replace("[3]", "[1]")
    assert draft.note == ""


def test_drop_uncited_claims_keeps_line_structure() -> None:
    text, dropped = drop_uncited_claims(
        "Stations were reported in Toronto [4].\nThis is widely known across the whole world.\nIt was 2022 [1]."
    )
    assert (text, dropped) == ("Stations were reported in Toronto [4].\nIt was 2022 [1].", 1)


# -- bounded length ----------------------------------------------------------------------------


def test_a_huge_reply_is_cut_with_a_note(
    openai_stub: OpenAIStub,  # noqa: F811
    make_model: ModelFactory,  # noqa: F811
    fallback: FakeFallback,  # noqa: F811
) -> None:
    openai_stub.enqueue("Ireland ordered the Dublin station to close [3]. " * 40_000)  # ~1.9 M characters
    draft = LLMAnswerer(make_model(), fallback, max_answer_chars=1500).answer(QUESTION, PASSAGES)

    assert 750 < len(draft.text) <= 1500
    assert draft.text.endswith("close [1].")  # cut at a sentence end
    assert draft.note == note_cut(1500)
    answer = Answer(QUESTION, draft.text, draft.citations, abstained=False, retrieved=PASSAGES)
    assert len(render_answer(answer)) <= 2


def test_a_huge_stream_stops_early(
    openai_stub: OpenAIStub,  # noqa: F811
    make_model: ModelFactory,  # noqa: F811
    fallback: FakeFallback,  # noqa: F811
) -> None:
    openai_stub.enqueue("Stations were reported in Toronto [4]. " * 5000)
    pieces: list[str] = []
    draft = LLMAnswerer(make_model(), fallback, max_answer_chars=1000).answer(
        QUESTION, PASSAGES, on_token=pieces.append
    )
    assert len("".join(pieces)) < 1100  # the stream was abandoned, not read to the end
    assert len(draft.text) <= 1000 and draft.note == note_cut(1000)


def test_cap_reply_without_sentence_ends() -> None:
    text, cut = cap_reply("word " * 1000, 300)
    assert cut and len(text) <= 300 and text.endswith(" …")
    assert cap_reply("Short [1].", 300) == ("Short [1].", False)


# -- bounded time --------------------------------------------------------------------------------


class _Drip(BaseHTTPRequestHandler):
    """Answers every request with headers, then one byte every 0.2 s for up to 20 s."""

    protocol_version = "HTTP/1.0"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        drip(self.wfile)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def drip_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelFactory]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Drip)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{httpd.server_address[1]}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    # A per-read timeout of 5 s that a byte every 0.2 s never trips.
    yield lambda: make_chat_model("openai:gpt-test", timeout=5.0)
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("streaming", [False, True])
def test_a_slow_model_is_cut_off_at_the_deadline(
    drip_model: ModelFactory,
    fallback: FakeFallback,  # noqa: F811
    streaming: bool,
) -> None:
    pieces: list[str] = []
    started = time.monotonic()
    draft = LLMAnswerer(drip_model(), fallback, deadline=0.5).answer(
        QUESTION, PASSAGES, on_token=pieces.append if streaming else None
    )
    assert time.monotonic() - started < 3
    assert draft.note == note_model_failed("timeout")
    assert fallback.calls == [QUESTION] and pieces == []


def test_condense_gives_up_at_the_deadline(drip_model: ModelFactory) -> None:
    started = time.monotonic()
    history = [Turn("Who published the report?", "Safeguard Defenders [1].")]
    assert condense_question(drip_model(), "When?", history, deadline=0.5) == "When?"
    assert time.monotonic() - started < 3


def test_engine_holds_llm_calls_to_the_timeout_setting(fake_report_index, fake_embedder, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """DOSSIER_LLM_TIMEOUT bounds the whole call through the engine, not just each read."""
    from bot.engine import Engine

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Drip)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{httpd.server_address[1]}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    settings = fake_report_index.model_copy(update={"llm": "openai:gpt-test", "llm_timeout": 0.5})
    engine = Engine(settings, embedder=fake_embedder)
    try:
        engine.ask("Who founded Safeguard Defenders?")  # warm up retrieval outside the clock
        started = time.monotonic()
        answer = engine.ask("Who founded Safeguard Defenders?")
        assert time.monotonic() - started < 4
        assert answer.note.startswith(note_model_failed("timeout"))
        assert "Dahlin" in answer.text  # the extractive answer
    finally:
        engine.close()
        httpd.shutdown()
        httpd.server_close()
