"""Answers written by a language model, streamed into Discord: the real LangChain client
against the local OpenAI stub (slowed down), the real bot against the fake Discord."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

import pytest

from bot.discord_streaming import STOP_ID, STOPPED_NOTE
from bot.llm_client import make_chat_model
from devtools.fake_discord import ADMIN_ID, USER_ID, Call, FakeDiscord, running_bot
from dossier_common.settings import Settings
from tests.fakes import HashEmbedder
from tests.openai_stub import OpenAIStub
from tests.test_discord import make_bot, make_settings

LLM = "openai:gpt-test"
QUESTION = "How many overseas police stations did the report identify?"
REPLY = "The report identified 54 overseas police stations in 30 countries [1]."


@pytest.fixture
def llm_engine(fake_report_index: Settings, openai_stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch) -> Any:
    from bot.engine import Engine

    monkeypatch.setenv("OPENAI_BASE_URL", openai_stub.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    settings = fake_report_index.model_copy(update={"llm": LLM, "llm_timeout": 30.0})
    engine = Engine(settings, embedder=HashEmbedder(), chat_model=make_chat_model(LLM, timeout=30.0))
    yield engine
    engine.close()


def stream_calls(server: FakeDiscord, channel_id: int) -> list[Call]:
    """The post and the edits of the answer message in `channel_id`, in order."""
    return [
        c
        for c in server.calls
        if c.match("POST", rf"/channels/{channel_id}/messages")
        or c.match("PATCH", rf"/channels/{channel_id}/messages/\d+")
    ]


async def test_streamed_answer_edits_at_most_once_a_second_and_ends_with_sources(
    fake_discord: FakeDiscord, tmp_path: Path, llm_engine: Any, openai_stub: OpenAIStub
) -> None:
    # 12 words, 0.25 s apart: about 3 s of writing.
    openai_stub.enqueue(REPLY, chunk_delay=0.25)
    bot = make_bot(make_settings(tmp_path, llm=LLM), llm_engine)
    async with running_bot(fake_discord, bot):
        msg = await fake_discord.send_message(QUESTION)
        thread_id = int(msg["id"])
        [final] = await fake_discord.wait_posted(
            lambda p: p.channel_id == thread_id and p.kind == "edit" and bool(p.embeds), timeout=30
        )
    calls = stream_calls(fake_discord, thread_id)
    assert calls[0].method == "POST" and STOP_ID in str(calls[0].json["components"])
    assert len(calls) >= 3  # posted, edited while written, and the final edit
    gaps = [b.at - a.at for a, b in itertools.pairwise(calls)]
    assert min(gaps) >= 0.8, gaps  # about one edit a second, the last one included
    written = [c.json["content"] for c in calls[:-1]]
    assert len(written) >= 2 and all(text.endswith(" ▍") for text in written)
    assert all(REPLY.startswith(text.removesuffix(" ▍")) for text in written)  # the text so far
    assert len(set(written)) == len(written)  # each edit shows more of it
    # The last edit is the answer as it is shown without streaming: checked, with its sources.
    assert "54" in final.content and "[1]" in final.content and "▍" not in final.content
    assert final.embeds[0]["title"] == "Sources"
    up, _down = final.custom_ids
    assert up.startswith("dossier:fb:up:") and STOP_ID not in final.custom_ids
    assert final.payload["allowed_mentions"]["parse"] == []
    assert len([c for c in calls if c.method == "POST"]) == 1  # one message, edited


async def test_stop_keeps_what_came_and_says_it_was_stopped(
    fake_discord: FakeDiscord, tmp_path: Path, llm_engine: Any, openai_stub: OpenAIStub
) -> None:
    words = [f" word{n}" for n in range(60)]
    openai_stub.enqueue(
        "The report [1]" + "".join(words), chunks=["The", " report", " [1]", *words], chunk_delay=0.2
    )
    bot = make_bot(make_settings(tmp_path, llm=LLM), llm_engine)
    async with running_bot(fake_discord, bot):
        msg = await fake_discord.send_message(QUESTION)
        thread_id = int(msg["id"])
        [opened] = await fake_discord.wait_posted(lambda p: p.channel_id == thread_id, timeout=30)
        await fake_discord.wait_posted(lambda p: p.channel_id == thread_id and p.kind == "edit", timeout=30)

        # Someone else may not stop it (no Manage Messages).
        await fake_discord.click(opened.message_id, STOP_ID, user_id=ADMIN_ID)
        [refusal] = await fake_discord.wait_posted(lambda p: p.kind == "callback" and p.ephemeral)
        assert "Only the person who asked" in refusal.content

        await fake_discord.click(opened.message_id, STOP_ID, user_id=USER_ID)
        [stopped] = await fake_discord.wait_posted(
            lambda p: p.channel_id == thread_id and STOPPED_NOTE in p.content, timeout=10
        )
        edits_then = len(stream_calls(fake_discord, thread_id))
        await asyncio.sleep(1.5)  # the model would still be writing: nothing more is shown
        assert len(stream_calls(fake_discord, thread_id)) == edits_then
    assert stopped.content.startswith("The report [1] word0")
    assert "word59" not in stopped.content and "▍" not in stopped.content
    assert stopped.payload["components"] == [] and not stopped.embeds
    assert not [p for p in fake_discord.posts(thread_id) if p.custom_ids and "dossier:fb" in p.custom_ids[0]]


async def test_slash_ask_streams_into_the_thinking_message(
    fake_discord: FakeDiscord, tmp_path: Path, llm_engine: Any, openai_stub: OpenAIStub
) -> None:
    openai_stub.enqueue(REPLY, chunk_delay=0.15)
    bot = make_bot(make_settings(tmp_path, llm=LLM), llm_engine)
    async with running_bot(fake_discord, bot):
        interaction = await fake_discord.slash("ask", {"question": QUESTION})
        [final] = await fake_discord.wait_posted(lambda p: p.kind == "edit" and bool(p.embeds), timeout=30)
    edits = fake_discord.calls_to("PATCH", rf"/webhooks/\d+/{interaction['token']}/messages/@original")
    assert len(edits) >= 2 and STOP_ID in str(edits[0].json["components"])
    gaps = [b.at - a.at for a, b in itertools.pairwise(edits)]
    assert min(gaps) >= 0.8, gaps
    assert final.content.startswith("**Q:** " + QUESTION) and "54" in final.content
    assert final.embeds[0]["title"] == "Sources" and final.custom_ids[0].startswith("dossier:fb:up:")
    assert not fake_discord.calls_to("POST", r"/webhooks/\d+/[^/]+")  # no second message


class FailingMidway:
    """An engine whose model writes a little, then fails (not a fallback: an error)."""

    def ask(self, question: str, history: Any = (), *, k: int | None = None, on_token: Any = None) -> Any:
        on_token("The report says")
        time.sleep(1.3)  # long enough for the first edit to go out
        on_token(" more")
        raise RuntimeError("boom")


async def test_an_error_midway_leaves_the_text_without_the_stop_button(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    bot = make_bot(make_settings(tmp_path, llm=LLM), FailingMidway())
    async with running_bot(fake_discord, bot):
        msg = await fake_discord.send_message(QUESTION)
        thread_id = int(msg["id"])
        [error] = await fake_discord.wait_posted(lambda p: "something went wrong" in p.content, timeout=10)
    calls = stream_calls(fake_discord, thread_id)
    last = calls[-2] if calls[-1].json.get("content") == error.content else calls[-1]
    assert last.method == "PATCH" and last.json["content"] == "The report says more"
    assert last.json["components"] == []
