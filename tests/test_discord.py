"""The Discord bot end to end: real discord.py against the fake Discord in devtools/fake_discord.py."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from bot.discord_bot import DossierBot, RateLimiter, run_discord, safe_filename, save_upload
from bot.discord_render import (
    MAX_EMBED_TOTAL,
    MAX_FIELD_VALUE,
    document_choices,
    render_answer,
    render_documents,
    render_ingest_report,
)
from bot.discord_text import (
    CITATION_RE,
    MAX_CONTENT,
    ZWSP,
    escape,
    split_text,
    strip_mentions,
)
from bot.excerpts import in_quotes
from bot.feedback import FeedbackStore, export_feedback
from bot.types import Answer, Citation, DocumentInfo, IndexStatus, Passage, Turn
from devtools.fake_discord import (
    ADMIN_ID,
    BOT_ID,
    CHANNEL_ID,
    GUILD_ID,
    OTHER_BOT_ID,
    OTHER_CHANNEL_ID,
    TOKEN,
    USER_ID,
    FakeDiscord,
    running_bot,
)
from dossier_common.errors import NoIndexError, QuestionError
from dossier_common.settings import Settings

# -- fakes ---------------------------------------------------------------------------------------------


def passage(n: int, source: str = "docs/report.md", text: str = "") -> Passage:
    return Passage(
        id=f"p{n}",
        source=source,
        text=text or f"Passage {n} says the stations were in 53 countries.",
        location=f"§ Part {n}",
        score=0.9 - n / 10,
    )


def cited_answer(question: str, text: str = "", n_citations: int = 2) -> Answer:
    citations = tuple(
        Citation(
            n=i, source="docs/report.md", location=f"§ Part {i}", quote=f"Quote number {i} from the report."
        )
        for i in range(1, n_citations + 1)
    )
    return Answer(
        question=question,
        text=text
        or "The report counts 54 stations in 30 countries [1]. It was published by Safeguard Defenders [2].",
        citations=citations,
        abstained=False,
        retrieved=tuple(passage(i) for i in range(1, 4)),
        timings_ms={"total": 12.0},
    )


REPORT = DocumentInfo(source="docs/report.md", title="110 Overseas", chunks=7, chars=9000, ingested_at=0.0)


def bullets_answer(document: str | None, bullets: Sequence[str]) -> Answer:
    """What Engine.summary returns: one cited bullet per line."""
    citations = tuple(
        Citation(n=i, source="docs/report.md", location=f"lines {i}-{i}", quote=text)
        for i, text in enumerate(bullets, 1)
    )
    return Answer(
        question=f"Summarize {document}." if document else "Summarize the documents.",
        text="\n".join(f"- {text} [{i}]" for i, text in enumerate(bullets, 1)),
        citations=citations,
        abstained=False,
        retrieved=(),
        kind="overview",
    )


class FakeEngine:
    """Canned answers; records every call. `ask` runs in a worker thread (checked)."""

    def __init__(
        self,
        reply: Callable[[str, Sequence[Turn]], Answer] | None = None,
        delay: float = 0.0,
        *,
        summarize: Callable[[str | None], Answer] | None = None,
        docs: Sequence[DocumentInfo] = (REPORT,),
    ) -> None:
        self.reply = reply or (lambda q, h: cited_answer(q))
        self.summarize = summarize or (lambda d: bullets_answer(d, ["The report counts 54 stations."]))
        self.docs = list(docs)
        self.delay = delay
        self.asked: list[tuple[str, tuple[Turn, ...]]] = []
        self.summarized: list[str | None] = []
        self.listed = 0
        self.ingested: list[list[Path]] = []
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def ask(self, question: str, history: Sequence[Turn] = (), *, k: int | None = None) -> Answer:
        with self._lock:
            self.asked.append((question, tuple(history)))
            self.threads.add(threading.current_thread().name)
        if self.delay:
            time.sleep(self.delay)  # blocking on purpose: must not stall the event loop
        return self.reply(question, history)

    def summary(self, document: str | None = None) -> Answer:
        with self._lock:
            self.summarized.append(document)
            self.threads.add(threading.current_thread().name)
        return self.summarize(document)

    def status(self) -> IndexStatus:
        return IndexStatus(
            home="/tmp/x",
            store="embedded",
            collection="dossier",
            model="all-MiniLM-L6-v2",
            answerer="extractive",
            documents=1,
            chunks=7,
            last_ingest=1_700_000_000.0,
        )

    def documents(self) -> list[DocumentInfo]:
        with self._lock:
            self.listed += 1
            self.threads.add(threading.current_thread().name)
        return list(self.docs)

    def ingest(self, paths: Sequence[Path], *, full: bool = False, lock_wait: float = 0) -> dict[str, Any]:
        self.ingested.append(list(paths))
        return {
            "added": 1,
            "updated": 0,
            "deleted": 0,
            "unchanged": 0,
            "failed": [],
            "chunks": 3,
            "embedded": 3,
            "seconds": 0.1,
        }


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "home": tmp_path / "home",
        "discord_token": TOKEN,
        "discord_admin_role": None,
        "discord_channel_ids": [],
        "discord_guild_ids": [],
        "discord_rate_limit": 100,
        "discord_max_concurrent": 4,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def make_bot(settings: Settings, engine: Any) -> DossierBot:
    return DossierBot(settings, engine, guild_ready_timeout=0.05)


async def known_to_bot(bot: DossierBot, message_id: int) -> None:
    """Wait until the bot has the id of a message it posted (it learns it from the REST reply,
    which can arrive after the test has seen the post and a user could have replied)."""
    for _ in range(250):
        if bot.conversations.of_message(message_id) is not None:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the bot never tied message {message_id} to a conversation")


# -- end to end ----------------------------------------------------------------------------------------------


async def test_login_ready_and_commands_synced(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    bot = make_bot(make_settings(tmp_path), FakeEngine())
    async with running_bot(fake_discord, bot):
        assert bot.user is not None and bot.user.id == BOT_ID
        assert bot.get_guild is not None and len(bot.guilds) == 1
        assert fake_discord.identifies == 1
        assert {c["name"] for c in fake_discord.commands} == {
            "ask",
            "sources",
            "summary",
            "status",
            "reingest",
            "ingest",
            "gaps",
            "Add to documents",
        }
        [option] = fake_discord.command("summary")["options"]
        assert option["name"] == "document" and option["autocomplete"] is True
        assert not option.get("required")
        assert fake_discord.calls_to("PUT", r"/applications/\d+/commands")


async def test_commands_synced_to_configured_guild(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    engine = FakeEngine()
    bot = make_bot(make_settings(tmp_path, discord_guild_ids=[GUILD_ID]), engine)
    async with running_bot(fake_discord, bot):
        assert fake_discord.calls_to("PUT", rf"/applications/\d+/guilds/{GUILD_ID}/commands")
        await fake_discord.slash("ask", {"question": "guild command?"})
        await fake_discord.wait_posted(lambda p: p.kind == "followup")
    assert [q for q, _ in engine.asked] == ["guild command?"]


async def test_mention_answered_in_new_thread_with_citations(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    engine = FakeEngine()
    bot = make_bot(make_settings(tmp_path), engine)
    async with running_bot(fake_discord, bot):
        msg = await fake_discord.send_message("How many stations are there?")
        mid = int(msg["id"])
        # acknowledged at once: a reaction on the question
        await fake_discord.wait_for("PUT", rf"/channels/{CHANNEL_ID}/messages/{mid}/reactions/[^/]+/@me")
        [thread_call] = await fake_discord.wait_for("POST", rf"/channels/{CHANNEL_ID}/messages/{mid}/threads")
        assert "How many stations" in thread_call.json["name"]
        [post] = await fake_discord.wait_posted(lambda p: p.channel_id == mid)
    assert engine.asked == [("How many stations are there?", ())]
    assert all(name != threading.main_thread().name for name in engine.threads)
    assert "[1]" in post.content and "[2]" in post.content
    [embed] = post.embeds
    assert embed["title"] == "Sources"
    assert [f["name"] for f in embed["fields"]] == ["[1] report.md · § Part 1", "[2] report.md · § Part 2"]
    assert "Quote number 1" in embed["fields"][0]["value"]
    assert post.payload["allowed_mentions"]["parse"] == []
    up, down = post.custom_ids
    assert up.startswith("dossier:fb:up:") and down.startswith("dossier:fb:down:")


async def test_follow_up_in_thread_uses_memory(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    engine = FakeEngine()
    bot = make_bot(make_settings(tmp_path), engine)
    async with running_bot(fake_discord, bot):
        msg = await fake_discord.send_message("Who wrote the report?")
        thread_id = int(msg["id"])
        [first] = await fake_discord.wait_posted(lambda p: p.channel_id == thread_id)
        await known_to_bot(bot, first.message_id)
        # a reply to the bot's answer inside the thread, without mentioning it
        await fake_discord.send_message(
            "And when?", channel_id=thread_id, mention_bot=False, reply_to=first.message_id
        )
        await fake_discord.wait_posted(lambda p: p.channel_id == thread_id, count=2)
        # a mention in the thread continues the same conversation
        await fake_discord.send_message("Where?", channel_id=thread_id)
        await fake_discord.wait_posted(lambda p: p.channel_id == thread_id, count=3)
        # an unrelated message in the thread is left alone
        await fake_discord.send_message("thanks all", channel_id=thread_id, mention_bot=False)
        await asyncio.sleep(0.1)
    questions = [q for q, _ in engine.asked]
    assert questions == ["Who wrote the report?", "And when?", "Where?"]
    assert engine.asked[1][1] == (Turn("Who wrote the report?", cited_answer("x").text),)
    assert [t.question for t in engine.asked[2][1]] == ["Who wrote the report?", "And when?"]
    # only one thread was opened
    assert len(fake_discord.calls_to("POST", r"/channels/\d+/messages/\d+/threads")) == 1


async def test_slash_ask_defers_then_follows_up_and_replies_continue(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    engine = FakeEngine(delay=0.05)
    bot = make_bot(make_settings(tmp_path), engine)
    async with running_bot(fake_discord, bot):
        interaction = await fake_discord.slash("ask", {"question": "Which countries?"})
        [callback] = await fake_discord.wait_for("POST", rf"/interactions/{interaction['id']}/[^/]+/callback")
        assert callback.json["type"] == 5  # deferred "thinking"
        [followup] = await fake_discord.wait_posted(lambda p: p.kind == "followup")
        assert followup.call.at >= callback.at
        assert followup.call.query.get("wait") in ("1", "true")
        assert "Which countries?" in followup.content  # the channel does not show the option
        assert "[1]" in followup.content and followup.embeds[0]["title"] == "Sources"
        assert followup.payload["allowed_mentions"]["parse"] == []
        # replying to the answer continues the conversation
        await known_to_bot(bot, followup.message_id)
        await fake_discord.send_message("Which is biggest?", mention_bot=False, reply_to=followup.message_id)
        [reply] = await fake_discord.wait_posted(lambda p: p.kind == "channel")
        assert reply.payload["message_reference"]["message_id"] is not None
    assert engine.asked[1] == ("Which is biggest?", (Turn("Which countries?", cited_answer("x").text),))


async def test_long_answer_split_on_paragraphs_with_citations_whole(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    paragraphs = [
        " ".join(f"Sentence {p}.{s} about the stations and their staff [{(s % 9) + 1}]." for s in range(25))
        for p in range(6)
    ]
    paragraphs.append(
        "x" * 50 + " " + " ".join(["word"] * 700) + " [3]"
    )  # one paragraph longer than a message
    text = "\n\n".join(paragraphs)
    assert len(text) > 3 * MAX_CONTENT
    engine = FakeEngine(lambda q, h: cited_answer(q, text=text, n_citations=9))
    bot = make_bot(make_settings(tmp_path, discord_threads=False), engine)
    async with running_bot(fake_discord, bot):
        await fake_discord.send_message("Tell me everything")
        [last] = await fake_discord.wait_posted(lambda p: bool(p.custom_ids))
    posts = fake_discord.posts(CHANNEL_ID)
    assert len(posts) >= 4 and posts[-1] is last
    for post in posts:
        assert 0 < len(post.content) <= MAX_CONTENT
        assert not re.search(r"\[\d*$|^\d*\]", post.content)  # no marker cut at an edge
        assert (
            sum(len(f["name"]) + len(f["value"]) for e in post.embeds for f in e["fields"]) <= MAX_EMBED_TOTAL
        )
    # nothing lost, nothing cut: the markers and words come back in order
    joined = " ".join(p.content for p in posts)
    assert CITATION_RE.findall(joined) == CITATION_RE.findall(text)
    assert joined.split() == text.split()
    # paragraph boundaries are where the first split happens
    assert posts[0].content.endswith(paragraphs[0][-40:]) or posts[0].content.endswith(paragraphs[1][-40:])
    assert posts[0].payload["message_reference"]  # the first part replies to the question
    assert "message_reference" not in posts[1].payload


async def test_everyone_in_question_and_document_does_not_ping(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    def reply(question: str, history: Sequence[Turn]) -> Answer:
        base = cited_answer(question, text=f"You asked: {question} [1]")
        bad = Citation(
            n=1,
            source="docs/@here.md",
            location="<@&123>",
            quote="@everyone **bold** [x](https://evil.example)",
        )
        return Answer(question, base.text, (bad,), False, base.retrieved)

    bot = make_bot(make_settings(tmp_path), FakeEngine(reply))
    async with running_bot(fake_discord, bot):
        await fake_discord.slash("ask", {"question": "@everyone hi <@123> <@&456> @here"})
        [followup] = await fake_discord.wait_posted(lambda p: p.kind == "followup")
        msg = await fake_discord.send_message("@everyone look")
        await fake_discord.wait_posted(lambda p: p.channel_id == int(msg["id"]))
    for post in fake_discord.posted:
        if post.kind == "callback" and not post.content:
            continue  # the "thinking" placeholder
        assert post.payload["allowed_mentions"]["parse"] == []
        text = post.text()
        assert not re.search(r"@(everyone|here)|<@[&!]?\d", text), text
    assert "You asked: hi [1]" in followup.content  # the mentions were no part of the question
    field = followup.embeds[0]["fields"][0]
    assert f"@{ZWSP}everyone" in field["value"]
    assert "\\*\\*bold\\*\\*" in field["value"] and "\\[x\\]" in field["value"]
    [thread_call] = fake_discord.calls_to("POST", r"/channels/\d+/messages/\d+/threads")
    assert "@everyone" not in thread_call.json["name"]


async def test_non_admin_refused_reingest_admin_allowed(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    engine = FakeEngine()
    settings = make_settings(tmp_path)
    bot = make_bot(settings, engine)
    async with running_bot(fake_discord, bot):
        await fake_discord.slash("reingest", user_id=USER_ID)
        [refusal] = await fake_discord.wait_posted(lambda p: p.kind == "callback")
        assert refusal.ephemeral and "only admins" in refusal.content
        assert engine.ingested == []
        await fake_discord.slash("reingest", user_id=ADMIN_ID)
        [done] = await fake_discord.wait_posted(lambda p: p.kind == "followup")
        assert "Re-ingest finished" in done.content and "1 added" in done.content
    assert engine.ingested == [[settings.documents_dir]]


async def test_admin_role_by_name_may_ingest(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    engine = FakeEngine()
    bot = make_bot(make_settings(tmp_path, discord_admin_role="dossier admin"), engine)
    async with running_bot(fake_discord, bot):
        # the admin user holds the role but here has no Manage Server permission
        await fake_discord.slash("reingest", user_id=ADMIN_ID, permissions=1 << 10)
        [done] = await fake_discord.wait_posted(lambda p: p.kind == "followup")
    assert "Re-ingest finished" in done.content


async def test_ingest_refuses_other_types_and_large_files(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    engine = FakeEngine()
    settings = make_settings(tmp_path, discord_max_upload_mb=0.001)
    bot = make_bot(settings, engine)
    async with running_bot(fake_discord, bot):
        exe = fake_discord.add_file("tool.exe", b"MZ")
        await fake_discord.slash("ingest", user_id=ADMIN_ID, attachments={"file": exe})
        [refusal] = await fake_discord.wait_posted(lambda p: p.kind == "callback")
        assert refusal.ephemeral and "pdf" in refusal.content
        big = fake_discord.add_file("big.txt", b"x" * 5000)
        await fake_discord.slash("ingest", user_id=ADMIN_ID, attachments={"file": big})
        await fake_discord.wait_posted(lambda p: p.kind == "callback" and "too large" in p.content)
        small = fake_discord.add_file("note.md", b"# hi")
        await fake_discord.slash("ingest", user_id=USER_ID, attachments={"file": small})
        await fake_discord.wait_posted(lambda p: p.kind == "callback" and "only admins" in p.content)
    assert engine.ingested == []
    assert not settings.documents_dir.exists() or not any(settings.documents_dir.iterdir())


async def test_rate_limit(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    engine = FakeEngine()
    bot = make_bot(make_settings(tmp_path, discord_rate_limit=2, discord_threads=False), engine)
    async with running_bot(fake_discord, bot):
        for i in range(4):
            await fake_discord.send_message(f"question {i}")
        [limited] = await fake_discord.wait_posted(lambda p: "a minute" in p.content)
        # told once; the next one over the limit only gets a reaction
        await fake_discord.wait_for("PUT", r"/channels/\d+/messages/\d+/reactions/⏳/@me")
        await fake_discord.slash("ask", {"question": "one more"})
        [slash_limited] = await fake_discord.wait_posted(lambda p: p.kind == "callback")
        await fake_discord.wait_posted(lambda p: bool(p.custom_ids), count=2)
        # another user is not affected
        await fake_discord.send_message("mine", author_id=ADMIN_ID)
        await fake_discord.wait_posted(lambda p: bool(p.custom_ids), count=3)
    assert "2 questions a minute" in limited.content and "Try again in" in limited.content
    assert len([p for p in fake_discord.posted if "a minute" in p.content]) == 2  # mention once, /ask once
    assert slash_limited.ephemeral and "a minute" in slash_limited.content
    assert [q for q, _ in engine.asked] == ["question 0", "question 1", "mine"]


async def test_internal_error_gives_friendly_line_with_reference(
    fake_discord: FakeDiscord, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(question: str, history: Sequence[Turn]) -> Answer:
        raise RuntimeError("secret internal detail /etc/passwd")

    bot = make_bot(make_settings(tmp_path), FakeEngine(boom))
    with caplog.at_level("ERROR"):
        async with running_bot(fake_discord, bot):
            await fake_discord.send_message("break please")
            [mention_error] = await fake_discord.wait_posted(lambda p: "reference" in p.content)
            await fake_discord.slash("ask", {"question": "break again"})
            [slash_error] = await fake_discord.wait_posted(lambda p: p.kind == "followup")
    for post in (mention_error, slash_error):
        match = re.search(r"reference `([0-9a-f]{8})`", post.content)
        assert match, post.content
        assert (
            "secret" not in post.content
            and "Traceback" not in post.content
            and "RuntimeError" not in post.content
        )
        assert f"[ref {match.group(1)}]" in caplog.text  # the log has the traceback under that id
    assert "secret internal detail" in caplog.text


async def test_dossier_error_shown_as_is(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    def no_index(question: str, history: Sequence[Turn]) -> Answer:
        raise NoIndexError()

    bot = make_bot(make_settings(tmp_path), FakeEngine(no_index))
    async with running_bot(fake_discord, bot):
        await fake_discord.slash("ask", {"question": "anything?"})
        [post] = await fake_discord.wait_posted(lambda p: p.kind == "followup")
    assert post.content == str(NoIndexError())


async def test_twenty_concurrent_questions_keep_heartbeats_flowing(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    fake_discord.heartbeat_interval_ms = 200
    engine = FakeEngine(delay=0.5)
    bot = make_bot(make_settings(tmp_path, discord_max_concurrent=8, discord_threads=False), engine)
    bot.queue_notice_after = 0.2  # the last of them wait about 1 s
    async with running_bot(fake_discord, bot):
        start = time.monotonic()
        beats_before = len(fake_discord.heartbeats)
        for i in range(10):
            await fake_discord.send_message(f"mention {i}")
            await fake_discord.slash("ask", {"question": f"slash {i}"})
        await fake_discord.wait_posted(lambda p: bool(p.custom_ids), count=20, timeout=20)
        end = time.monotonic()
        assert bot.latency < 1.0
    beats = [t for t in fake_discord.heartbeats if start <= t <= end]
    assert end - start >= 1.0  # 20 x 0.5 s over 8 slots: the loop was busy for a while
    assert len(fake_discord.heartbeats) - beats_before >= (end - start) / 0.2 * 0.6
    gaps = [b - a for a, b in zip([start, *beats], [*beats, end], strict=True)]
    assert max(gaps) < 0.6, gaps  # never stalled for long
    assert fake_discord.heartbeat_acks == len(fake_discord.heartbeats)
    assert len(engine.asked) == 20
    queued = [p for p in fake_discord.posted if "queued" in p.content]
    assert queued  # those who had to wait were told


async def test_answer_sent_after_gateway_reconnect(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    started = threading.Event()
    release = threading.Event()

    def slow(question: str, history: Sequence[Turn]) -> Answer:
        started.set()
        release.wait(5)
        return cited_answer(question)

    bot = make_bot(make_settings(tmp_path), FakeEngine(slow))
    async with running_bot(fake_discord, bot):
        msg = await fake_discord.send_message("slow question")
        await asyncio.to_thread(started.wait, 5)
        await fake_discord.request_reconnect()
        await fake_discord.wait_until(lambda: fake_discord.resumes == 1)
        release.set()
        [post] = await fake_discord.wait_posted(lambda p: p.channel_id == int(msg["id"]))
        assert "[1]" in post.content


async def test_ignores_own_and_other_bots_messages(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    engine = FakeEngine()
    bot = make_bot(make_settings(tmp_path), engine)
    async with running_bot(fake_discord, bot):
        await fake_discord.send_message("from another bot", author_id=OTHER_BOT_ID)
        await fake_discord.send_message("from myself", author_id=BOT_ID)
        await fake_discord.send_message("not addressed to the bot", mention_bot=False)
        await fake_discord.send_message("real one")
        await fake_discord.wait_posted(lambda p: bool(p.custom_ids))
        await asyncio.sleep(0.2)  # the echoes of its own answer arrive too
    assert [q for q, _ in engine.asked] == ["real one"]


async def test_channel_allow_list(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    engine = FakeEngine()
    bot = make_bot(make_settings(tmp_path, discord_channel_ids=[CHANNEL_ID]), engine)
    async with running_bot(fake_discord, bot):
        await fake_discord.send_message("elsewhere", channel_id=OTHER_CHANNEL_ID)
        await fake_discord.slash("ask", {"question": "elsewhere too"}, channel_id=OTHER_CHANNEL_ID)
        [refusal] = await fake_discord.wait_posted(lambda p: p.kind == "callback")
        msg = await fake_discord.send_message("here")
        thread_id = int(msg["id"])
        await fake_discord.wait_posted(lambda p: p.channel_id == thread_id)
        await fake_discord.send_message("in the thread", channel_id=thread_id)  # parent is allowed
        await fake_discord.wait_posted(lambda p: p.channel_id == thread_id, count=2)
    assert refusal.ephemeral
    assert [q for q, _ in engine.asked] == ["here", "in the thread"]


async def test_sources_status_and_feedback_buttons(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    bot = make_bot(settings, FakeEngine())
    async with running_bot(fake_discord, bot):
        await fake_discord.slash("sources")
        [sources] = await fake_discord.wait_posted(lambda p: p.kind == "followup")
        await fake_discord.slash("status")
        [_, status] = await fake_discord.wait_posted(lambda p: p.kind == "followup", count=2)
        msg = await fake_discord.send_message("vote on me")
        [answer] = await fake_discord.wait_posted(lambda p: p.channel_id == int(msg["id"]))
        up, down = answer.custom_ids
        await fake_discord.click(answer.message_id, up)
        await fake_discord.click(answer.message_id, down, user_id=ADMIN_ID)
        [thanks, _] = await fake_discord.wait_posted(lambda p: "Thanks" in p.content, count=2)
    assert "report.md" in sources.content and "110 Overseas" in sources.content
    fields = {f["name"]: f["value"] for f in status.embeds[0]["fields"]}
    assert (
        fields["Passages"] == "7"
        and fields["Answerer"] == "extractive"
        and "<t:1700000000" in fields["Last ingest"]
    )
    assert thanks.ephemeral
    out = io.StringIO()
    assert export_feedback(settings, out) == 2
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert {(r["user_id"], r["vote"]) for r in rows} == {(USER_ID, 1), (ADMIN_ID, -1)}
    assert rows[0]["question"] == "vote on me" and rows[0]["sources"][0]["n"] == 1


async def test_abstention_shows_closest_passages(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    def abstain(question: str, history: Sequence[Turn]) -> Answer:
        return Answer(question, "The documents don't say.", (), True, (passage(1), passage(2)))

    bot = make_bot(make_settings(tmp_path), FakeEngine(abstain))
    async with running_bot(fake_discord, bot):
        msg = await fake_discord.send_message("What is the capital of Mars?")
        [post] = await fake_discord.wait_posted(lambda p: p.channel_id == int(msg["id"]))
    assert "don't say" in post.content
    assert post.embeds[0]["title"] == "Closest passages" and len(post.embeds[0]["fields"]) == 2


def doc(source: str, title: str = "") -> DocumentInfo:
    return DocumentInfo(source=source, title=title, chunks=3, chars=1000, ingested_at=0.0)


async def test_slash_summary_autocompletes_document_names(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    long_source = "archive/" + "deeply/nested/" * 8 + "minutes-2024.md"
    docs = [doc(f"essays/essay-{i:02d}.md", f"Essay number {i}") for i in range(30)]
    docs += [doc("docs/harbor.md", "The Harbor Lighthouse"), doc(long_source, "Board minutes")]
    engine = FakeEngine(docs=docs)
    bot = make_bot(make_settings(tmp_path), engine)
    async with running_bot(fake_discord, bot):
        everything = await fake_discord.autocomplete("summary", {"document": ""}, "document")
        lighthouse = await fake_discord.autocomplete("summary", {"document": "LIGHTHOUSE"}, "document")
        minutes = await fake_discord.autocomplete("summary", {"document": "board min"}, "document")
        by_name = await fake_discord.autocomplete("summary", {"document": "essay-1"}, "document")
        nothing = await fake_discord.autocomplete("summary", {"document": "zebra"}, "document")
    assert len(everything) == 25  # Discord's cap, out of 32 documents
    assert lighthouse == [{"name": "harbor.md — The Harbor Lighthouse", "value": "docs/harbor.md"}]
    # a source longer than Discord allows is offered by its file name (the engine resolves it)
    assert minutes == [{"name": "minutes-2024.md — Board minutes", "value": "minutes-2024.md"}]
    assert [c["value"] for c in by_name] == [f"essays/essay-{i}.md" for i in range(10, 20)]
    assert nothing == []
    # the index is read off the event loop, and once for the keystrokes of a few seconds
    assert engine.listed == 1 and threading.main_thread().name not in engine.threads


async def test_slash_summary_posts_cited_bullets(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    bullets = ["The report counts 54 stations in 30 countries.", "It names @everyone and <@123> as targets."]
    engine = FakeEngine(summarize=lambda d: bullets_answer(d, bullets))
    bot = make_bot(make_settings(tmp_path), engine)
    async with running_bot(fake_discord, bot):
        interaction = await fake_discord.slash("summary", {"document": "docs/report.md"})
        [callback] = await fake_discord.wait_for("POST", rf"/interactions/{interaction['id']}/[^/]+/callback")
        [post] = await fake_discord.wait_posted(lambda p: p.kind == "followup")
        await fake_discord.slash("summary")  # no document: the whole collection
        await fake_discord.wait_posted(lambda p: p.kind == "followup", count=2)
    assert callback.json["type"] == 5  # deferred: the engine may need a moment
    assert engine.summarized == ["docs/report.md", None]
    assert threading.main_thread().name not in engine.threads
    header, first, second = post.content.split("\n\n")[0], *post.content.split("\n\n")[1].split("\n")
    assert header == "**Q:** Summarize docs/report.md."
    assert first == "- The report counts 54 stations in 30 countries. [1]"
    assert second == f"- It names @{ZWSP}everyone and <@{ZWSP}123\\> as targets. [2]"
    assert [f["name"].split(" ")[0] for f in post.embeds[0]["fields"]] == ["[1]", "[2]"]
    assert post.payload["allowed_mentions"]["parse"] == [] and len(post.custom_ids) == 2


async def test_slash_summary_of_unknown_document_says_so(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    def summarize(document: str | None) -> Answer:
        raise QuestionError(f"No indexed document matches {document!r}.")

    bot = make_bot(make_settings(tmp_path), FakeEngine(summarize=summarize))
    async with running_bot(fake_discord, bot):
        await fake_discord.slash("summary", {"document": "zebra"})
        [post] = await fake_discord.wait_posted(lambda p: p.kind == "followup")
    assert post.content == "No indexed document matches 'zebra'."
    assert not post.custom_ids  # an error is not an answer to vote on


async def test_slash_summary_keeps_to_allowed_channels_and_rate_limit(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    engine = FakeEngine()
    settings = make_settings(tmp_path, discord_channel_ids=[CHANNEL_ID], discord_rate_limit=1)
    bot = make_bot(settings, engine)
    async with running_bot(fake_discord, bot):
        await fake_discord.slash("summary", channel_id=OTHER_CHANNEL_ID)
        [elsewhere] = await fake_discord.wait_posted(lambda p: p.kind == "callback")
        await fake_discord.slash("summary")
        await fake_discord.wait_posted(lambda p: p.kind == "followup")
        await fake_discord.slash("summary")
        limited = await fake_discord.wait_posted(lambda p: p.kind == "callback" and p.ephemeral, count=2)
    assert "channels I was set up for" in elsewhere.content and elsewhere.ephemeral
    assert "1 question a minute" in limited[1].content
    assert engine.summarized == [None]


async def test_long_summary_splits_between_bullets(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    bullets = [
        f"Point {i} of the report says the stations recruited staff. It also lists them by city."
        for i in range(60)
    ]
    engine = FakeEngine(summarize=lambda d: bullets_answer(d, bullets))
    bot = make_bot(make_settings(tmp_path), engine)
    async with running_bot(fake_discord, bot):
        await fake_discord.slash("summary", {"document": "report"})
        [last] = await fake_discord.wait_posted(lambda p: bool(p.custom_ids))
    posts = [p for p in fake_discord.posted if p.kind == "followup"]
    assert len(posts) >= 3 and posts[-1] is last
    lines = []
    for post in posts:
        assert 0 < len(post.content) <= MAX_CONTENT or (not post.content and post.embeds)
        lines += [line for line in post.content.split("\n") if line and not line.startswith("**Q:**")]
    # every bullet arrives whole, on its own line, with its marker, in order
    assert lines == [f"- {text} [{i}]" for i, text in enumerate(bullets, 1)]
    fields = [f["name"] for p in posts for e in p.embeds for f in e["fields"]]
    assert [name.split(" ")[0] for name in fields] == [f"[{i}]" for i in range(1, 61)]


def test_document_choices_rank_file_names_first() -> None:
    docs = [
        doc("notes/cities.md", "Where the harbor is"),
        doc("docs/harbor.md", "The Harbor Lighthouse"),
        doc("web/harbor-history.html", "harbor"),
    ]
    choices = document_choices(docs, "harbor")
    # file names that start with the words first (alphabetically), then titles, then the rest
    assert [value for _, value in choices] == ["web/harbor-history.html", "docs/harbor.md", "notes/cities.md"]
    assert choices[0][0] == "harbor-history.html — harbor"
    assert [value for _, value in document_choices(docs, "the harbor")] == [
        "docs/harbor.md",
        "notes/cities.md",
    ]
    assert document_choices(docs, "  lighthouse  the ") == [
        ("harbor.md — The Harbor Lighthouse", "docs/harbor.md")
    ]
    assert len(document_choices([doc(f"d/{i}.md", "x" * 300) for i in range(40)], "")) == 25
    assert all(len(name) <= 100 for name, _ in document_choices([doc("a.md", "x" * 300)], ""))


def test_missing_token_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(tmp_path, discord_token=None)
    assert run_discord(settings, engine_factory=lambda s: FakeEngine()) == 2
    assert "DISCORD_TOKEN" in capsys.readouterr().err


@contextlib.contextmanager
def _fake_in_its_own_loop() -> Iterator[tuple[FakeDiscord, asyncio.AbstractEventLoop]]:
    """A fake Discord served from an event loop in a thread of its own, as `dossier discord`
    needs it (run_discord runs its own loop); stopped afterwards."""
    server = FakeDiscord()
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(5)
    try:
        yield server, loop
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def test_bad_token_clean_exit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """run_discord in its own event loop (as `dossier discord` runs) against the fake."""
    import discord

    saved = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    with _fake_in_its_own_loop() as (server, _loop):
        settings = make_settings(
            tmp_path,
            discord_token="wrong-token",
            discord_api_base_url=server.api_base,
            discord_gateway_url=server.gateway_url,
        )
        code = run_discord(settings, engine_factory=lambda s: FakeEngine())
    assert saved == (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    err = capsys.readouterr().err
    assert code == 2
    assert "rejected DISCORD_TOKEN" in err and "Traceback" not in err and "wrong-token" not in err
    assert [c.path for c in server.calls] == ["/users/@me"]


LIGHTHOUSE = """# The Harbor Lighthouse

The Harbor Lighthouse was built in 1872 by the engineer Margaret Olsen. It stands 42 metres tall on the northern cliff above the town of Brekkvik.

## Keepers

The last keeper, Tomas Berg, left the lighthouse in 1989 when the light was automated. Visitors can climb the tower on Sundays in summer.
"""


@pytest.fixture
def real_engine(tmp_path: Path, embedder: Any) -> Any:
    """A real Engine on an empty DOSSIER_HOME, with the session's real embedder (conftest.py)."""
    from bot.engine import Engine

    engine = Engine(make_settings(tmp_path, docs_dir=tmp_path / "docs"), embedder=embedder)
    yield engine
    engine.close()


async def test_mention_answered_from_real_index_with_citations(
    fake_discord: FakeDiscord, tmp_path: Path, real_engine: Any
) -> None:
    doc = tmp_path / "corpus" / "lighthouse.md"
    doc.parent.mkdir()
    doc.write_text(LIGHTHOUSE)
    await asyncio.to_thread(real_engine.ingest, [doc])
    bot = make_bot(real_engine.settings, real_engine)
    async with running_bot(fake_discord, bot):
        msg = await fake_discord.send_message("Who built the Harbor Lighthouse?")
        [post] = await fake_discord.wait_posted(lambda p: p.channel_id == int(msg["id"]), timeout=30)
    assert "Margaret Olsen" in post.content and "[1]" in post.content
    field = post.embeds[0]["fields"][0]
    assert field["name"].startswith("[1] lighthouse.md") and "Margaret Olsen" in field["value"]


async def test_summary_from_real_index_with_autocomplete(
    fake_discord: FakeDiscord, tmp_path: Path, real_engine: Any
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "lighthouse.md").write_text(LIGHTHOUSE)
    (corpus / "bridge.md").write_text(
        "# The Old Bridge\n\nThe Old Bridge was painted red in 1950 by the town.\n"
    )
    await asyncio.to_thread(real_engine.ingest, [corpus])
    bot = make_bot(real_engine.settings, real_engine)
    async with running_bot(fake_discord, bot):
        [choice] = await fake_discord.autocomplete("summary", {"document": "lightho"}, "document")
        await fake_discord.slash("summary", {"document": choice["value"]})
        [post] = await fake_discord.wait_posted(lambda p: p.kind == "followup", timeout=30)
    assert choice["name"] == "lighthouse.md — The Harbor Lighthouse"
    bullets = post.content.split("\n\n")[1].split("\n")
    assert 2 <= len(bullets) <= 6 and all(re.fullmatch(r"- .+ \[\d\]", b) for b in bullets), bullets
    assert "Margaret Olsen" in post.content and "red" not in post.content  # that document only
    assert all(
        f["name"].startswith(f"[{i}] lighthouse.md") for i, f in enumerate(post.embeds[0]["fields"], 1)
    )


async def test_admin_ingest_of_attachment_then_answerable(
    fake_discord: FakeDiscord, tmp_path: Path, real_engine: Any
) -> None:
    settings = real_engine.settings
    bot = make_bot(settings, real_engine)
    async with running_bot(fake_discord, bot):
        await fake_discord.slash("ask", {"question": "Who built the Harbor Lighthouse?"})
        [empty] = await fake_discord.wait_posted(lambda p: p.kind == "followup", timeout=30)
        assert empty.content == str(NoIndexError())
        attachment = fake_discord.add_file("../Harbor lighthouse.md", LIGHTHOUSE.encode(), "text/markdown")
        await fake_discord.slash("ingest", user_id=ADMIN_ID, attachments={"file": attachment})
        [report] = await fake_discord.wait_posted(lambda p: "ingested" in p.content, timeout=30)
        assert "Harbor lighthouse.md" in report.content and "1 added" in report.content
        await fake_discord.slash("ask", {"question": "Who built the Harbor Lighthouse?"})
        [post] = await fake_discord.wait_posted(lambda p: "Margaret" in p.content, timeout=30)
    assert (settings.documents_dir / "Harbor lighthouse.md").read_text() == LIGHTHOUSE
    assert sorted(p.name for p in settings.documents_dir.iterdir()) == ["Harbor lighthouse.md"]
    assert post.embeds[0]["fields"][0]["name"].startswith("[1] Harbor lighthouse.md")


async def test_watched_folder_becomes_answerable(
    fake_discord: FakeDiscord, tmp_path: Path, real_engine: Any
) -> None:
    folder = tmp_path / "watched"
    folder.mkdir()
    (folder / "lighthouse.md").write_text(LIGHTHOUSE)
    settings = real_engine.settings.model_copy(update={"watch_paths": [folder], "watch_debounce_ms": 50})
    bot = make_bot(settings, real_engine)
    async with running_bot(fake_discord, bot):
        assert await asyncio.to_thread(bot._watcher.ready.wait, 20)
        (folder / "bridge.md").write_text(
            "# The Old Bridge\n\nThe Old Bridge was painted red in 1950 by the town.\n"
        )
        for _ in range(200):
            if len(await asyncio.to_thread(real_engine.documents)) == 2:
                break
            await asyncio.sleep(0.05)
        msg = await fake_discord.send_message("What colour was the Old Bridge painted?")
        [post] = await fake_discord.wait_posted(lambda p: p.channel_id == int(msg["id"]), timeout=30)
    assert "red" in post.content and post.embeds[0]["fields"][0]["name"].startswith("[1] bridge.md")
    assert bot._watcher is None  # stopped with the bot


# -- pure parts -----------------------------------------------------------------------------------------------


def test_split_text_keeps_paragraphs_and_markers() -> None:
    text = "First paragraph [1].\n\nSecond one [2, 3].\n\n" + "Long sentence [4]. " * 200
    chunks = split_text(text, 300)
    assert chunks[0] == "First paragraph [1].\n\nSecond one [2, 3]."
    for chunk in chunks:
        assert len(chunk) <= 300
        assert chunk.count("[") == chunk.count("]")
    assert sum(c.count("[4]") for c in chunks) == 200
    assert split_text("short") == ["short"] and split_text("  ") == []


def test_split_text_cuts_a_long_list_between_bullets() -> None:
    bullets = [f"- Point {i}. It has a second sentence of some length here [{i}]" for i in range(40)]
    bullets[7] = "- " + "A very long bullet sentence goes on. " * 12 + "[7]"  # longer than a message
    text = "Intro line.\n\n" + "\n".join(bullets)
    chunks = split_text(text, 400)
    assert all(len(chunk) <= 400 for chunk in chunks)
    assert chunks[0].startswith("Intro line.\n\n- Point 0.")
    lines = [line for chunk in chunks for line in chunk.split("\n")][2:]
    # every bullet is one line of one message, but the overlong one, which is cut between sentences
    start, end = lines.index(bullets[6]) + 1, lines.index(bullets[8])
    assert lines[:start] + lines[end:] == bullets[:7] + bullets[8:]
    assert end - start > 1 and " ".join(lines[start:end]) == bullets[7]
    assert all(piece.endswith("on.") or piece.endswith("[7]") for piece in lines[start:end])


def test_render_limits_with_many_long_citations() -> None:
    citations = tuple(
        Citation(
            n=i, source=f"docs/{'very_long_name_' * 10}{i}.pdf", location="p. " + "9" * 300, quote="q" * 3000
        )
        for i in range(1, 40)
    )
    answer = Answer("q?", " ".join(f"Claim {i} [{i}]." for i in range(1, 40)) * 30, citations, False, ())
    parts = render_answer(answer, question_header=True)
    fields = 0
    for part in parts:
        assert len(part.content) <= MAX_CONTENT
        assert sum(len(e) for e in part.embeds) <= MAX_EMBED_TOTAL
        for embed in part.embeds:
            assert len(embed.fields) <= 25
            fields += len(embed.fields)
            for f in embed.fields:
                assert len(f.value or "") <= MAX_FIELD_VALUE and len(f.name or "") <= 256
    assert fields == 39


def test_render_compact_lists_sources_as_text() -> None:
    [part] = render_answer(cited_answer("q"), compact=True)
    assert not part.embeds
    assert "**Sources**" in part.content and "[2] report.md, § Part 2" in part.content


def test_escape_neutralises_mentions_and_markdown() -> None:
    out = escape("@everyone <@123> <@&9> **x** `y` ||z|| > q # h [a](https://e.x/a_b)")
    assert "@everyone" not in out and "<@1" not in out and "<@&" not in out
    assert "\\*\\*x\\*\\*" in out and "\\`y\\`" in out and "\\|\\|z\\|\\|" in out
    assert "<https://e.x/a_b>" in out  # links stay usable, without a preview


def test_ingest_report_summary() -> None:
    text = render_ingest_report(
        {
            "added": 2,
            "updated": 1,
            "deleted": 0,
            "unchanged": 5,
            "chunks": 40,
            "embedded": 12,
            "seconds": 3.21,
            "failed": [{"path": "/d/bad_@here.pdf", "reason": "encrypted"}],
            "skipped": [],
        }
    )
    assert "2 added, 1 updated, 0 deleted, 5 unchanged" in text and "3.2 s" in text
    assert "1 failed" in text and "bad\\_@\u200bhere.pdf: encrypted" in text


def test_safe_filename_and_save_upload(tmp_path: Path) -> None:
    assert safe_filename("../../etc/passwd.md") == "passwd.md"
    assert safe_filename("..\\..\\win.TXT") == "win.txt"
    assert safe_filename(".hidden.pdf") == "hidden.pdf"
    assert safe_filename("rapport été 2024 (v2).PDF") == "rapport été 2024_v2.pdf"
    assert safe_filename("....") == "upload"
    folder = tmp_path / "docs"
    path = save_upload(folder, "../escape.md", b"# hi")
    assert path == folder / "escape.md" and path.read_bytes() == b"# hi"
    assert sorted(p.name for p in folder.iterdir()) == ["escape.md"]


def test_rate_limiter_window() -> None:
    now = [0.0]
    limiter = RateLimiter(2, window=60, clock=lambda: now[0])
    assert limiter.hit(1) == 0 and limiter.hit(1) == 0
    assert limiter.hit(1) == pytest.approx(60)
    assert limiter.hit(2) == 0
    now[0] = 30
    assert limiter.hit(1) == pytest.approx(30)
    now[0] = 60.5
    assert limiter.hit(1) == 0


def test_feedback_store_votes_replace_and_export_csv(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite")
    store.save_answer(
        "a1", question="q", answer="t [1]", sources=cited_answer("q").citations, guild_id=1, channel_id=2
    )
    assert store.record("a1", 1, 7) is True
    assert store.record("a1", -1, 7) is True  # a second click replaces the first
    assert store.record("zz", 1, 8) is False  # unknown answer still recorded
    out = io.StringIO()
    assert store.export(out, "csv") == 2
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("answer_id,question,answer,sources,vote")
    assert ",-1,7," in lines[1]
    with pytest.raises(Exception, match="format"):
        store.export(io.StringIO(), "xml")
    assert FeedbackStore(tmp_path / "none.sqlite").export(io.StringIO()) == 0


# -- fixes from the black-box check (issue 13) ----------------------------------------------------------------


async def test_sources_counts_in_singular_and_quotes_never_doubled(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    quoted = "“110 Overseas: China’s Cross-Border Policing Runs Wild,” identified 54 stations."

    def reply(question: str, history: Sequence[Turn]) -> Answer:
        citation = Citation(n=1, source="docs/report.md", location="lines 1-7", quote=quoted)
        return Answer(question, "It identified 54 stations [1].", (citation,), False, (passage(1),))

    one = DocumentInfo(source="docs/one.md", title="", chunks=1, chars=10, ingested_at=0.0)
    bot = make_bot(make_settings(tmp_path), FakeEngine(reply, docs=[one]))
    async with running_bot(fake_discord, bot):
        await fake_discord.slash("sources")
        [sources] = await fake_discord.wait_posted(lambda p: p.kind == "followup")
        msg = await fake_discord.send_message("How many stations?")
        [answer] = await fake_discord.wait_posted(lambda p: p.channel_id == int(msg["id"]))
    assert "**1 document indexed** (1 passage)" in sources.content
    assert "one.md (1 passage)" in sources.content and "passages" not in sources.content
    value = answer.embeds[0]["fields"][0]["value"]
    assert value.startswith("“110 Overseas") and "““" not in value, value


def test_quotes_and_counts_rendered_without_doubles() -> None:
    assert in_quotes("plain text.") == "“plain text.”"
    assert in_quotes("“Title,” said he.") == "“Title,” said he.”"
    assert in_quotes('"Straight" start') == '"Straight" start”'
    assert in_quotes("ends with “a quote.”") == "“ends with “a quote.”"
    [part] = render_documents([doc("a.md"), doc("b.md")])
    assert "**2 documents indexed** (6 passages)" in part.content and "(3 passages)" in part.content
    citation = Citation(n=1, source="r.md", location="", quote="“Quoted” first")
    [compact] = render_answer(Answer("q", "t [1]", (citation,), False, ()), compact=True)
    assert "[1] r.md: “Quoted” first”" in compact.content and "““" not in compact.content
    report = render_ingest_report({"added": 1, "chunks": 1, "embedded": 1, "seconds": 0.1})
    assert "1 passage in the index" in report


async def test_admin_commands_registered_for_manage_server_and_not_in_dms(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    bot = make_bot(make_settings(tmp_path), FakeEngine())
    async with running_bot(fake_discord, bot):
        [sync] = fake_discord.calls_to("PUT", r"/applications/\d+/commands")
    synced = {c["name"]: c for c in sync.json}
    for name in ("ingest", "reingest"):
        assert int(synced[name]["default_member_permissions"]) == 1 << 5  # Manage Server
        assert synced[name]["dm_permission"] is False and synced[name]["contexts"] == [0]  # servers only
    for name in ("ask", "sources", "summary", "status"):
        assert synced[name]["default_member_permissions"] is None  # everyone


STATIONS = "How many overseas police stations did the report identify?"


async def test_mentions_stripped_from_the_question(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    engine = FakeEngine()
    bot = make_bot(make_settings(tmp_path, discord_threads=False), engine)
    noisy = f"{STATIONS} @everyone <@&456>"
    async with running_bot(fake_discord, bot):
        await fake_discord.send_message(noisy)
        await fake_discord.send_message(f"@here <@!123> {STATIONS} <@123> <#789>")
        await fake_discord.slash("ask", {"question": noisy})
        await fake_discord.wait_posted(lambda p: bool(p.custom_ids), count=3)
        # a message that is nothing but mentions is not a question
        await fake_discord.send_message("@everyone <@&456>")
        [hint] = await fake_discord.wait_posted(lambda p: "Ask me something" in p.content)
    assert [q for q, _ in engine.asked] == [STATIONS] * 3
    assert hint.payload["allowed_mentions"]["parse"] == []


async def test_mentions_do_not_change_a_real_answer(
    fake_discord: FakeDiscord, tmp_path: Path, report_engine: Any
) -> None:
    bot = make_bot(make_settings(tmp_path, discord_threads=False), report_engine)
    async with running_bot(fake_discord, bot):
        await fake_discord.send_message(STATIONS)
        await fake_discord.send_message(f"{STATIONS} @everyone <@&456>")
        plain, noisy = await fake_discord.wait_posted(lambda p: bool(p.custom_ids), count=2, timeout=30)
    assert "54" in plain.content and "30" in plain.content
    assert noisy.content == plain.content
    assert noisy.embeds[0]["fields"] == plain.embeds[0]["fields"]  # the same passages cited


def test_strip_mentions_every_form() -> None:
    text = "<@1> hi <@!123> <@&456> <#789> @here </ask:42> @everyone, me@here.com"
    assert strip_mentions(text) == "hi , me@here.com"


def test_dossier_discord_logs_loaded_connected_and_reconnected(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`dossier discord` as run from the command line (root logger at WARNING, as `dossier`
    sets it) against the fake: the bot's own lines still appear at INFO."""

    async def reconnect_then_stop(server: FakeDiscord) -> None:
        await server.wait_connected(10)
        await server.request_reconnect()
        await server.wait_until(lambda: server.resumes == 1)
        await asyncio.sleep(0.2)
        os.kill(os.getpid(), signal.SIGTERM)  # a container stop: the bot's handler closes it

    root = logging.getLogger()
    saved_level = root.level
    root.setLevel(logging.WARNING)
    try:
        with _fake_in_its_own_loop() as (server, loop):
            settings = make_settings(
                tmp_path, discord_api_base_url=server.api_base, discord_gateway_url=server.gateway_url
            )
            stopper = asyncio.run_coroutine_threadsafe(reconnect_then_stop(server), loop)
            code = run_discord(settings, engine_factory=lambda s: FakeEngine(), guild_ready_timeout=0.05)
            stopper.result(5)
    finally:
        root.setLevel(saved_level)
    assert code == 0
    lines = [
        r.getMessage() for r in caplog.records if r.levelno == logging.INFO and r.name.startswith("bot.")
    ]
    loaded = next(line for line in lines if line.startswith("Loaded"))
    assert "all-MiniLM-L6-v2" in loaded and "1 document(s), 7 chunk(s)" in loaded
    connected = next(line for line in lines if line.startswith("Connected to Discord"))
    assert f"(id {BOT_ID})" in connected and "1 guild(s): " in connected and str(GUILD_ID) in connected
    assert "Reconnected to Discord (session resumed)" in lines
    assert logging.getLogger("bot.discord_bot").level == logging.NOTSET  # as it was


async def test_queue_notice_says_where_and_only_when_the_wait_is_real(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    gate = threading.Event()  # the "first" and "fourth" questions take until it opens

    def reply(question: str, history: Sequence[Turn]) -> Answer:
        if question in ("first question", "fourth question"):
            gate.wait(10)
        return cited_answer(question)

    def notices(count: int) -> Any:
        return fake_discord.wait_posted(lambda p: "queued" in p.content, count=count)

    async def asked(count: int) -> None:  # the engine runs in a thread: poll, no event tells
        for _ in range(500):
            if len(engine.asked) >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"the engine was asked {len(engine.asked)} questions, not {count}")

    engine = FakeEngine(reply)
    bot = make_bot(make_settings(tmp_path, discord_max_concurrent=1), engine)
    bot.queue_notice_after = 0.15
    async with running_bot(fake_discord, bot):
        first = await fake_discord.send_message("first question")
        await asked(1)
        second = await fake_discord.send_message("second question")  # will open a thread
        await notices(1)
        await fake_discord.slash("ask", {"question": "third question"})
        await notices(2)
        gate.set()
        await fake_discord.wait_posted(lambda p: bool(p.custom_ids), count=3)
        # in the first question's thread, behind a new question: the answer comes right there
        gate.clear()
        await fake_discord.send_message("fourth question")
        await asked(4)
        await fake_discord.send_message("and the fifth?", channel_id=int(first["id"]))
        await notices(3)
        gate.set()
        await fake_discord.wait_posted(lambda p: bool(p.custom_ids), count=5)
    told = [p for p in fake_discord.posted if "queued" in p.content]
    assert len(told) == 3, [p.content for p in told]
    to_second, to_slash, in_thread = told
    assert int(to_second.payload["message_reference"]["message_id"]) == int(second["id"])
    assert "I'll answer in a thread on your message." in to_second.content
    assert to_slash.kind == "followup" and "I'll post the answer here." in to_slash.content
    assert in_thread.channel_id == int(first["id"]) and "I'll answer here." in in_thread.content
    assert "thread" not in in_thread.content
    assert all(p.payload["allowed_mentions"]["parse"] == [] for p in told)


async def test_no_queue_notice_for_a_short_wait(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    engine = FakeEngine(delay=0.1)
    bot = make_bot(make_settings(tmp_path, discord_max_concurrent=1, discord_threads=False), engine)
    bot.queue_notice_after = 2.0
    async with running_bot(fake_discord, bot):
        for i in range(3):
            await fake_discord.send_message(f"question {i}")
        await fake_discord.slash("ask", {"question": "slash question"})
        await fake_discord.wait_posted(lambda p: bool(p.custom_ids), count=4, timeout=10)
    assert len(engine.asked) == 4
    assert not [p for p in fake_discord.posted if "queued" in p.content]  # each waited about 0.1-0.3 s


async def test_thread_follow_ups_resolve_against_the_whole_thread(
    fake_discord: FakeDiscord, tmp_path: Path, report_engine: Any
) -> None:
    asked: list[tuple[str, tuple[Turn, ...]]] = []

    class Recording:
        def __getattr__(self, name: str) -> Any:
            return getattr(report_engine, name)

        def ask(self, question: str, history: Sequence[Turn] = (), **kw: Any) -> Answer:
            asked.append((question, tuple(history)))
            return report_engine.ask(question, history, **kw)  # type: ignore[no-any-return]

    bot = make_bot(make_settings(tmp_path), Recording())
    async with running_bot(fake_discord, bot):
        msg = await fake_discord.send_message("Who founded Safeguard Defenders?")
        thread = int(msg["id"])
        [first] = await fake_discord.wait_posted(lambda p: p.channel_id == thread, timeout=30)
        await fake_discord.send_message("Where is his organization based?", channel_id=thread)
        await fake_discord.wait_posted(lambda p: p.channel_id == thread, count=2, timeout=30)
        await fake_discord.send_message("And what is his job title there?", channel_id=thread)
        posts = await fake_discord.wait_posted(lambda p: p.channel_id == thread, count=3, timeout=30)
    assert "Dahlin" in first.content
    assert "Spain" in posts[1].content
    assert "founder and director" in posts[2].content and "don't say" not in posts[2].content
    assert [t.question for t in asked[2][1]] == [q for q, _ in asked[:2]]  # the whole thread


def test_terminal_sources_never_double_a_quote_mark() -> None:
    from bot.render import format_answer

    quote = "“110 Overseas,” identified 54 stations."
    answer = Answer(
        question="q",
        text=f"{quote} [1]",
        citations=(Citation(1, "report.txt", "line 8", quote),),
        abstained=False,
        retrieved=(),
        timings_ms={},
    )
    out = format_answer(answer)
    assert "““" not in out and "“110 Overseas,” identified 54 stations.”" in out
