"""LLM answers through the real LangChain OpenAI client against a local OpenAI-compatible stub."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from langchain_core.language_models import BaseChatModel

from bot.llm import (
    MAP_GROUP,
    NOTE_ECHO,
    NOTE_NO_CITATION,
    NOTE_OVERRULED,
    NOTE_RAN_LONG,
    LLMAnswerer,
    note_model_failed,
    note_uncited,
)
from bot.llm_citations import clean_citations
from bot.llm_client import condense_question, make_chat_model
from bot.llm_prompting import ANSWER_PLACEHOLDERS, CONDENSE_PLACEHOLDERS
from bot.prompts import CANNOT_ANSWER, load_prompt
from bot.summary import Overview
from bot.types import Citation, Draft, Passage, TokenCallback, Turn
from dossier_common.errors import ConfigError
from tests.openai_stub import OpenAIStub, openai_stub  # noqa: F401  (fixture)

PASSAGES = (
    Passage(
        id="p1",
        source="article.txt",
        location="§ Overview",
        score=0.9,
        text="Safeguard Defenders published the report 110 Overseas in September 2022. "
        "It listed 54 overseas police service stations run by Chinese public security bureaus.",
    ),
    Passage(
        id="p2",
        source="report.md",
        location="§ Methods",
        score=0.8,
        text="The researchers relied on official Chinese sources. "
        "Local media reports were also used to confirm the addresses of the stations.",
    ),
    Passage(
        id="p3",
        source="article.txt",
        location="§ Reactions",
        score=0.7,
        text="The Netherlands ordered the stations in Amsterdam and Rotterdam to close. "
        "Ireland ordered the station in Dublin to close in October 2022.",
    ),
    Passage(
        id="p4",
        source="article.txt",
        location="§ Other places",
        score=0.6,
        text="Stations were also reported in Toronto and New York.\nLaura Harth spoke for the group.",
    ),
    Passage(
        id="p5",
        source="notes.txt",
        location="lines 1-4",
        score=0.5,
        text="The weather was mild that week. Nothing else happened.",
    ),
)

QUESTION = "Who published the 110 Overseas report, and what happened in Ireland?"


class FakeFallback:
    """Stands in for the extractive answerer: quotes the first sentence of passage 1."""

    name = "fake-extractive"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def answer(
        self,
        question: str,
        passages: Sequence[Passage],
        history: Sequence[Turn] = (),
        on_token: TokenCallback | None = None,
        kind: str = "factoid",
        narrowed: str = "",
    ) -> Draft:
        self.calls.append(question)
        first = passages[0]
        quote = first.text.split(". ")[0] + "."
        citation = Citation(1, first.source, first.location, quote, first.id)
        return Draft(text=f'"{quote}" [1]', citations=(citation,), abstained=False)


ModelFactory = Callable[..., BaseChatModel]


@pytest.fixture
def make_model(openai_stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch) -> ModelFactory:  # noqa: F811
    monkeypatch.setenv("OPENAI_BASE_URL", openai_stub.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)  # would win over OPENAI_BASE_URL

    def factory(timeout: float = 5.0) -> BaseChatModel:
        return make_chat_model("openai:gpt-test", timeout=timeout)

    return factory


@pytest.fixture
def fallback() -> FakeFallback:
    return FakeFallback()


def assert_quotes_verbatim(draft: Draft) -> None:
    by_id = {p.id: p for p in PASSAGES}
    for citation in draft.citations:
        passage = by_id[citation.passage_id]
        assert citation.quote, citation
        assert citation.quote in passage.text, citation
        assert (citation.source, citation.location) == (passage.source, passage.location)


def test_cited_answer_maps_citations_to_passages(
    openai_stub: OpenAIStub,  # noqa: F811
    make_model: ModelFactory,
    fallback: FakeFallback,
) -> None:
    openai_stub.enqueue(
        "Safeguard Defenders published the report in September 2022 [1]. "
        "Ireland ordered the Dublin station to close [3]."
    )
    draft = LLMAnswerer(make_model(), fallback).answer(QUESTION, PASSAGES)

    assert draft.text == (
        "Safeguard Defenders published the report in September 2022 [1]. "
        "Ireland ordered the Dublin station to close [2]."
    )
    assert not draft.abstained and not draft.note
    assert [(c.n, c.passage_id) for c in draft.citations] == [(1, "p1"), (2, "p3")]
    assert (
        draft.citations[0].quote == "Safeguard Defenders published the report 110 Overseas in September 2022."
    )
    assert draft.citations[1].quote == "Ireland ordered the station in Dublin to close in October 2022."
    assert_quotes_verbatim(draft)
    assert fallback.calls == []

    [request] = openai_stub.requests
    assert request["model"] == "gpt-test"
    assert openai_stub.headers[0]["authorization"] == "Bearer test"
    roles = [m["role"] for m in request["messages"]]
    assert roles == ["system", "user"]
    assert CANNOT_ANSWER in request["messages"][0]["content"]
    user = request["messages"][1]["content"]
    assert "[1] (article.txt, § Overview)\nSafeguard Defenders published" in user
    assert "[5] (notes.txt, lines 1-4)" in user
    assert QUESTION in user


def test_unknown_citation_is_removed_and_rest_renumbered(
    openai_stub: OpenAIStub,  # noqa: F811
    make_model: ModelFactory,
    fallback: FakeFallback,
) -> None:
    openai_stub.enqueue(
        "The Netherlands closed the stations in Amsterdam and Rotterdam [9][3]. "
        "The report listed 54 stations [1, 9]. It came out in 2022 [9]."
    )
    draft = LLMAnswerer(make_model(), fallback).answer(QUESTION, PASSAGES)

    # "It came out in 2022." lost its only marker, so it is an uncited claim and is left out.
    assert draft.text == (
        "The Netherlands closed the stations in Amsterdam and Rotterdam [1]. The report listed 54 stations [2]."
    )
    assert draft.note == note_uncited(1)
    assert [(c.n, c.passage_id) for c in draft.citations] == [(1, "p3"), (2, "p1")]
    assert draft.citations[0].quote.startswith("The Netherlands ordered")
    assert draft.citations[1].quote.startswith("It listed 54")
    assert_quotes_verbatim(draft)
    assert fallback.calls == []


@pytest.mark.parametrize("reply", ["The report came out in 2022.", "The report came out in 2022 [7]."])
def test_reply_without_valid_citation_falls_back(
    reply: str,
    openai_stub: OpenAIStub,  # noqa: F811
    make_model: ModelFactory,
    fallback: FakeFallback,
) -> None:
    openai_stub.enqueue(reply)
    draft = LLMAnswerer(make_model(), fallback).answer(QUESTION, PASSAGES)

    assert fallback.calls == [QUESTION]
    assert draft.note == NOTE_NO_CITATION
    assert draft.text.startswith('"Safeguard Defenders published')
    assert [c.passage_id for c in draft.citations] == ["p1"]


def test_timeout_falls_back_fast(
    openai_stub: OpenAIStub,  # noqa: F811
    make_model: ModelFactory,
    fallback: FakeFallback,
) -> None:
    openai_stub.enqueue_delay(10, "Too late [1].")
    started = time.monotonic()
    draft = LLMAnswerer(make_model(timeout=0.5), fallback).answer(QUESTION, PASSAGES)

    assert time.monotonic() - started < 4
    assert draft.note == note_model_failed("timeout")
    assert draft.note == "The language model failed (timeout); showing the extractive answer."
    assert fallback.calls == [QUESTION]
    assert len(openai_stub.requests) == 1  # no retries


def test_http_error_falls_back(
    openai_stub: OpenAIStub,  # noqa: F811
    make_model: ModelFactory,
    fallback: FakeFallback,
) -> None:
    openai_stub.enqueue_error(500)
    draft = LLMAnswerer(make_model(), fallback).answer(QUESTION, PASSAGES)

    assert draft.note == "The language model failed (HTTP 500); showing the extractive answer."
    assert fallback.calls == [QUESTION]
    assert len(openai_stub.requests) == 1


def test_unreachable_server_falls_back(monkeypatch: pytest.MonkeyPatch, fallback: FakeFallback) -> None:
    with OpenAIStub() as stub:
        dead_url = stub.base_url  # the port is closed once the stub stops
    monkeypatch.setenv("OPENAI_BASE_URL", dead_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    model = make_chat_model("openai:gpt-test", timeout=2.0)

    draft = LLMAnswerer(model, fallback).answer(QUESTION, PASSAGES)

    assert draft.note == note_model_failed("connection error")
    assert fallback.calls == [QUESTION]


@pytest.mark.parametrize(
    "reply",
    [
        CANNOT_ANSWER,
        "the documents do not say",
        "“The documents don’t say.”",
        "The documents don't say this.",
    ],
)
def test_cannot_answer_reply_abstains(
    reply: str,
    openai_stub: OpenAIStub,  # noqa: F811
    make_model: ModelFactory,
) -> None:
    openai_stub.enqueue(reply)
    weak = EvidentFallback(strong=False)  # the extractive evidence does not clear the bar either
    draft = LLMAnswerer(make_model(), weak).answer("What colour is the report's cover?", PASSAGES)

    assert draft == Draft(text=CANNOT_ANSWER, citations=(), abstained=True)
    assert weak.calls == ["What colour is the report's cover?"]  # consulted, then agreed


def test_streaming_sends_pieces_and_returns_checked_draft(
    openai_stub: OpenAIStub,  # noqa: F811
    make_model: ModelFactory,
    fallback: FakeFallback,
) -> None:
    raw = "Ireland ordered the Dublin station to close in October 2022 [3]."
    openai_stub.enqueue(raw)
    pieces: list[str] = []
    draft = LLMAnswerer(make_model(), fallback).answer(QUESTION, PASSAGES, on_token=pieces.append)

    assert len(pieces) > 3
    assert "".join(pieces) == raw
    assert openai_stub.requests[0]["stream"] is True
    assert draft.text == "Ireland ordered the Dublin station to close in October 2022 [1]."
    assert [(c.n, c.passage_id) for c in draft.citations] == [(1, "p3")]
    assert_quotes_verbatim(draft)


def test_streaming_failure_falls_back(
    openai_stub: OpenAIStub,  # noqa: F811
    make_model: ModelFactory,
    fallback: FakeFallback,
) -> None:
    openai_stub.enqueue_error(503)
    pieces: list[str] = []
    draft = LLMAnswerer(make_model(), fallback).answer(QUESTION, PASSAGES, on_token=pieces.append)

    assert pieces == []
    assert draft.note == note_model_failed("HTTP 503")


def test_history_reaches_the_prompt_without_old_markers(
    openai_stub: OpenAIStub,  # noqa: F811
    make_model: ModelFactory,
    fallback: FakeFallback,
) -> None:
    openai_stub.enqueue("It listed 54 stations [1].")
    history = [Turn("Who wrote the report?", "Safeguard Defenders wrote it [2].")]
    LLMAnswerer(make_model(), fallback).answer("How many stations?", PASSAGES, history)

    user = openai_stub.requests[0]["messages"][1]["content"]
    assert "User: Who wrote the report?\nAssistant: Safeguard Defenders wrote it." in user


def test_condense_question_rewrites_follow_up(
    openai_stub: OpenAIStub,  # noqa: F811
    make_model: ModelFactory,
) -> None:
    openai_stub.enqueue("When did Safeguard Defenders publish the 110 Overseas report?")
    history = [Turn("Who published the 110 Overseas report?", "Safeguard Defenders published it [1].")]

    standalone = condense_question(make_model(), "When did they publish it?", history)

    assert standalone == "When did Safeguard Defenders publish the 110 Overseas report?"
    user = openai_stub.requests[0]["messages"][-1]["content"]
    assert "Who published the 110 Overseas report?" in user
    assert "When did they publish it?" in user
    assert "[1]" not in user


def test_condense_question_keeps_question_on_error_or_without_history(
    openai_stub: OpenAIStub,  # noqa: F811
    make_model: ModelFactory,
) -> None:
    model = make_model()
    assert condense_question(model, "Who wrote it?", []) == "Who wrote it?"
    assert openai_stub.requests == []

    openai_stub.enqueue_error(500)
    assert condense_question(model, "Who wrote it?", [Turn("About the report?", "Yes.")]) == "Who wrote it?"


def test_clean_citations_handles_groups_ranges_and_odd_spacing() -> None:
    text, citations = clean_citations("Stations closed [ 3 ] and a list came out [1-2]; see [0].", PASSAGES)

    assert text == "Stations closed [1] and a list came out [2][3]; see."
    assert [c.passage_id for c in citations] == ["p3", "p1", "p2"]
    for citation in citations:
        assert citation.quote in PASSAGES[int(citation.passage_id[1:]) - 1].text


def test_quote_picks_the_best_supporting_sentence_across_lines() -> None:
    _, [citation] = clean_citations("Laura Harth spoke for the group [4].", PASSAGES)
    assert citation.quote == "Laura Harth spoke for the group."


# -- prompts -----------------------------------------------------------------------------------


def test_real_prompts_load() -> None:
    answer = load_prompt("answer", ANSWER_PLACEHOLDERS)
    condense = load_prompt("condense", CONDENSE_PLACEHOLDERS)
    messages = answer.messages(
        passages="[1] (a.txt)\nText.", question="Q?", history="(none)", cannot_answer=CANNOT_ANSWER
    )
    assert [role for role, _ in messages] == ["system", "human"]
    assert CANNOT_ANSWER in messages[0][1]
    assert "Q?" in messages[1][1] and "[1] (a.txt)" in messages[1][1]
    assert "{" not in condense.format(history="User: hi", question="And then?")


def write_prompt(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.txt"
    path.write_text(text, encoding="utf-8")
    return folder


def test_prompt_with_missing_placeholder_is_rejected(tmp_path: Path) -> None:
    folder = write_prompt(tmp_path, "answer", "Use {passages} to answer {question}.\n{history}\n")
    with pytest.raises(ConfigError, match=r"answer\.txt.*\{cannot_answer\}"):
        load_prompt("answer", ANSWER_PLACEHOLDERS, folder)
    with pytest.raises(ConfigError, match="cannot_answer"):
        LLMAnswerer(make_chat_model_stub(), FakeFallback(), prompts_dir=folder)


def test_prompt_with_unknown_placeholder_is_rejected(tmp_path: Path) -> None:
    folder = write_prompt(tmp_path, "condense", "{history}\n{question}\n{context}\n")
    with pytest.raises(ConfigError, match=r"condense\.txt.*\{context\}"):
        load_prompt("condense", CONDENSE_PLACEHOLDERS, folder)


@pytest.mark.parametrize(
    "template", ["{history} {question} {0}", "{history} {question} {", "{history.x} {question}"]
)
def test_malformed_prompt_is_rejected(tmp_path: Path, template: str) -> None:
    folder = write_prompt(tmp_path, "condense", template)
    with pytest.raises(ConfigError, match=r"condense\.txt"):
        load_prompt("condense", CONDENSE_PLACEHOLDERS, folder)


def test_missing_prompt_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"answer\.txt"):
        load_prompt("answer", ANSWER_PLACEHOLDERS, tmp_path)


def make_chat_model_stub() -> BaseChatModel:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    return FakeListChatModel(responses=["unused"])


# -- model construction ------------------------------------------------------------------------


@pytest.mark.skipif(importlib.util.find_spec("langchain_anthropic") is not None, reason="anthropic installed")
def test_missing_provider_package_names_the_extra() -> None:
    with pytest.raises(ConfigError, match=r"pip install 'dossier\[anthropic\]'"):
        make_chat_model("anthropic:claude-test", timeout=1.0)


def test_unknown_provider_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="nosuch:model"):
        make_chat_model("nosuch:model", timeout=1.0)


# -- kinds of questions --------------------------------------------------------------------------


def test_each_kind_gets_its_own_prompt(
    openai_stub: OpenAIStub,  # noqa: F811
    make_model: ModelFactory,
    fallback: FakeFallback,
) -> None:
    answerer = LLMAnswerer(make_model(), fallback)
    openai_stub.enqueue("- Amsterdam and Rotterdam [3]\n- Dublin [3]\n- Toronto and New York [4]")
    draft = answerer.answer("Which cities had stations closed or reported?", PASSAGES, kind="list")
    openai_stub.enqueue("The researchers used official Chinese sources [2] and local media [2].")
    answerer.answer("How did the researchers find the stations?", PASSAGES, kind="how")
    list_prompt, how_prompt = (r["messages"][0]["content"] for r in openai_stub.requests)
    assert "list" in list_prompt and "bullet" in list_prompt
    assert "every part" in how_prompt and "bullet" not in how_prompt
    assert draft.text.splitlines()[0] == "- Amsterdam and Rotterdam [1]"
    assert fallback.calls == []


def test_a_reply_that_echoes_the_passages_falls_back(
    openai_stub: OpenAIStub,  # noqa: F811
    make_model: ModelFactory,
    fallback: FakeFallback,
) -> None:
    # What a 135M-parameter model does: the prompt's numbered passages come back as the answer.
    echo = "[1] (article.txt, § Overview)\nSafeguard Defenders published the report [1].\n\n[3] (article.txt, § Reactions)\nIreland ordered the station in Dublin to close [3]."
    openai_stub.enqueue(echo)
    draft = LLMAnswerer(make_model(), fallback).answer(QUESTION, PASSAGES)
    assert fallback.calls == [QUESTION]
    assert draft.note.startswith(NOTE_ECHO)


def test_a_reply_far_past_the_asked_length_falls_back(
    openai_stub: OpenAIStub,  # noqa: F811
    make_model: ModelFactory,
    fallback: FakeFallback,
) -> None:
    rambling = " ".join(f"Safeguard Defenders published report number {i} [1]." for i in range(50))
    assert 1800 < len(rambling) < 3000
    openai_stub.enqueue(rambling)
    draft = LLMAnswerer(make_model(), fallback).answer(QUESTION, PASSAGES)
    assert fallback.calls == [QUESTION]
    assert draft.note.startswith(NOTE_RAN_LONG)


class EvidentFallback(FakeFallback):
    """An extractive answerer whose evidence clears the bar, or (strong=False) does not."""

    def __init__(self, strong: bool) -> None:
        super().__init__()
        self.strong = strong

    def answer(self, question, passages, history=(), on_token=None, kind="factoid", narrowed=""):
        draft = super().answer(question, passages, history, on_token)
        return draft if self.strong else Draft(text=CANNOT_ANSWER, citations=(), abstained=True)


@pytest.mark.parametrize("strong", [True, False])
def test_the_models_cannot_answer_does_not_overrule_strong_evidence(
    strong: bool,
    openai_stub: OpenAIStub,  # noqa: F811
    make_model: ModelFactory,
) -> None:
    openai_stub.enqueue(CANNOT_ANSWER)
    draft = LLMAnswerer(make_model(), EvidentFallback(strong)).answer(QUESTION, PASSAGES)
    if strong:
        assert not draft.abstained and draft.citations and draft.note.startswith(NOTE_OVERRULED)
    else:
        assert draft.abstained and draft.text == CANNOT_ANSWER and not draft.note


def test_a_long_document_is_summarized_from_notes_on_its_parts(
    openai_stub: OpenAIStub,  # noqa: F811
    make_model: ModelFactory,
    fallback: FakeFallback,
) -> None:
    chunks = [
        Passage(
            id=f"c{i}",
            source="long.txt",
            location=f"line {i}",
            score=0.0,
            text=f"Fact number {i} is that the pier {i} was rebuilt in {1900 + i}.",
        )
        for i in range(MAP_GROUP + 5)
    ]
    brief = Overview(Draft(text="- Fact number 0 is that ... [1]", citations=(), abstained=False), ())
    openai_stub.enqueue("- Pier 1 was rebuilt in 1901 [2].")  # notes on part 1 (local numbers)
    openai_stub.enqueue("- Pier 13 was rebuilt in 1913 [2].")  # part 2: its [2] is chunk 14
    openai_stub.enqueue("- Pier 1 was rebuilt in 1901 [2].\n- Pier 13 was rebuilt in 1913 [14].")
    overview = LLMAnswerer(make_model(), fallback).summarize("Summarize long.txt.", chunks, brief)
    assert [r["messages"][0]["content"].split("\n")[0] for r in openai_stub.requests] == [
        load_prompt("summary_map", set(ANSWER_PLACEHOLDERS)).template.split("\n")[0]
    ] * 2 + [load_prompt("summary_reduce", set(ANSWER_PLACEHOLDERS)).template.split("\n")[0]]
    assert "[14]" in openai_stub.requests[2]["messages"][1]["content"]  # renumbered for the whole
    assert [c.passage_id for c in overview.draft.citations] == ["c1", "c13"]
    assert overview.passages == tuple(chunks)


def test_a_failed_summary_keeps_the_brief(
    openai_stub: OpenAIStub,  # noqa: F811
    make_model: ModelFactory,
    fallback: FakeFallback,
) -> None:
    brief = Overview(Draft(text="- The brief [1]", citations=(), abstained=False), (PASSAGES[0],))
    openai_stub.enqueue_error(500)
    overview = LLMAnswerer(make_model(), fallback).summarize("Summarize.", PASSAGES, brief)
    assert overview.draft.text == "- The brief [1]" and overview.passages == (PASSAGES[0],)
    assert overview.draft.note.startswith("The language model failed")
