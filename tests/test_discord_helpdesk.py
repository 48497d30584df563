"""Discord as a help desk (issue 13): auto-answers in help channels and forums, scoped
channels, escalation. Real discord.py against the fake Discord (devtools/fake_discord.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.discord_escalation import Asked, escalation_part
from bot.discord_scopes import ChannelScopes
from bot.question_shape import reads_as_question
from bot.scope import in_scope, matches
from bot.types import Answer, Turn
from devtools.fake_discord import (
    ADMIN_ID,
    CATEGORY_ID,
    CHANNEL_ID,
    FORUM_ID,
    HELP_CHANNEL_ID,
    MOD_CHANNEL_ID,
    MOD_ROLE_ID,
    OTHER_CHANNEL_ID,
    QUESTION_TAG_ID,
    SOLVED_TAG_ID,
    USER_ID,
    FakeDiscord,
    running_bot,
)
from dossier_common.errors import ConfigError
from tests.test_discord import LIGHTHOUSE, FakeEngine, cited_answer, make_bot, make_settings, passage

STRONG = 0.9  # evidence well above the auto-answer bar (0.55)
WEAK = 0.45  # answered when asked (above the 0.37 abstain bar), too weak to answer unasked


def engine_with(evidence: float, *, abstained: bool = False) -> FakeEngine:
    def reply(question: str, history: Sequence[Turn]) -> Answer:
        if abstained:
            return Answer(
                question, "The documents don't say.", (), True, (passage(1), passage(2)), evidence=evidence
            )
        return replace(cited_answer(question), evidence=evidence)

    return FakeEngine(reply)


async def settle(fake: FakeDiscord, engine: FakeEngine, asked: int) -> None:
    """Wait until the engine was asked `asked` questions, then a little for any message to follow."""
    for _ in range(500):  # the engine's calls raise no server event: poll them
        if len(engine.asked) >= asked:
            break
        await asyncio.sleep(0.02)
    assert len(engine.asked) >= asked, "the engine was never asked"
    await asyncio.sleep(0.3)


def writes(fake: FakeDiscord) -> list[str]:
    """Every REST call that would show something in Discord (messages, reactions, typing, threads)."""
    return [
        f"{c.method} {c.path}" for c in fake.calls if c.method != "GET" and c.path.startswith("/channels/")
    ]


# -- auto-answers ------------------------------------------------------------------------------------------


async def test_forum_post_auto_answered_when_the_evidence_is_strong(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    engine = engine_with(STRONG)
    bot = make_bot(make_settings(tmp_path, discord_auto_channels=[FORUM_ID]), engine)
    async with running_bot(fake_discord, bot):
        post = await fake_discord.forum_post("How many stations are there?", "I read about it in the news.")
        post_id = int(post["id"])
        [answer] = await fake_discord.wait_posted(lambda p: p.channel_id == post_id)
    assert engine.asked == [("How many stations are there? I read about it in the news.", ())]
    assert "[1]" in answer.content and answer.embeds[0]["title"] == "Sources"
    assert int(answer.payload["message_reference"]["message_id"]) == post_id  # under the post itself
    up, down, solved = answer.custom_ids  # no "Ask a person" without escalation set up
    assert up.startswith("dossier:fb:up:") and down.startswith("dossier:fb:down:")
    assert solved.startswith("dossier:solved:") and solved.endswith(f":{USER_ID}")
    assert answer.payload["allowed_mentions"]["parse"] == []
    assert not fake_discord.calls_to("POST", r"/channels/\d+/messages/\d+/threads")  # the post is the thread


@pytest.mark.parametrize(("evidence", "abstained"), [(WEAK, False), (0.2, True), (None, False)])
async def test_forum_post_left_alone_when_the_evidence_is_weak(
    fake_discord: FakeDiscord, tmp_path: Path, evidence: float | None, abstained: bool
) -> None:
    engine = engine_with(evidence, abstained=abstained)  # type: ignore[arg-type]
    bot = make_bot(make_settings(tmp_path, discord_auto_channels=[FORUM_ID]), engine)
    async with running_bot(fake_discord, bot):
        await fake_discord.forum_post("Where is the nearest station?", "Asking for a friend.")
        await settle(fake_discord, engine, 1)
    assert writes(fake_discord) == []  # no message, no reaction, no typing, no thread
    assert not fake_discord.posted


async def test_help_channel_question_answered_in_a_thread_and_chit_chat_ignored(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    engine = engine_with(STRONG)
    bot = make_bot(make_settings(tmp_path, discord_auto_channels=[HELP_CHANNEL_ID]), engine)
    async with running_bot(fake_discord, bot):
        for chatter in (
            "good morning everyone!",
            "thanks, that helped a lot",
            "how are you all?",
            "The report is long.",
        ):
            await fake_discord.send_message(chatter, channel_id=HELP_CHANNEL_ID, mention_bot=False)
        question = await fake_discord.send_message(
            "how do I find the stations in Toronto", channel_id=HELP_CHANNEL_ID, mention_bot=False
        )
        [answer] = await fake_discord.wait_posted(lambda p: p.channel_id == int(question["id"]))
        # the same message again (a gateway replay) and chatter in the bot's thread: nothing more
        await fake_discord.dispatch("MESSAGE_CREATE", question)
        await fake_discord.send_message("is there more?", channel_id=int(question["id"]), mention_bot=False)
        await asyncio.sleep(0.3)
    assert [q for q, _ in engine.asked] == ["how do I find the stations in Toronto"]
    [thread] = fake_discord.calls_to("POST", rf"/channels/{HELP_CHANNEL_ID}/messages/\d+/threads")
    assert thread.path.endswith(f"/{question['id']}/threads")
    assert len(fake_discord.posted) == 1 and "[1]" in answer.content


async def test_at_most_one_auto_answer_per_post(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    engine = engine_with(STRONG)
    engine.delay = 0.1
    bot = make_bot(make_settings(tmp_path, discord_auto_channels=[FORUM_ID]), engine)
    async with running_bot(fake_discord, bot):
        post = await fake_discord.forum_post("Who runs the stations?", "")
        post_id = int(post["id"])
        await fake_discord.dispatch("MESSAGE_CREATE", post)  # delivered twice while the first is computed
        await fake_discord.wait_posted(lambda p: p.channel_id == post_id)
        await fake_discord.dispatch("MESSAGE_CREATE", post)
        await fake_discord.send_message(
            "Which police agencies exactly?", channel_id=post_id, mention_bot=False
        )
        await asyncio.sleep(0.4)
    assert len(engine.asked) == 1
    assert len(fake_discord.posts(post_id)) == 1


async def test_mention_in_an_auto_channel_is_answered_once_by_the_asking_path(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    engine = engine_with(WEAK)  # a mention answers above the abstain bar, however weak for auto
    bot = make_bot(make_settings(tmp_path, discord_auto_channels=[HELP_CHANNEL_ID]), engine)
    async with running_bot(fake_discord, bot):
        msg = await fake_discord.send_message("what is the title of the report?", channel_id=HELP_CHANNEL_ID)
        await fake_discord.wait_posted(lambda p: p.channel_id == int(msg["id"]))
        await asyncio.sleep(0.2)
    assert len(engine.asked) == 1 and len(fake_discord.posted) == 1


async def test_solved_by_the_asker_only_applies_the_forum_tag(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    engine = engine_with(STRONG)
    settings = make_settings(tmp_path, discord_auto_channels=[FORUM_ID])
    bot = make_bot(settings, engine)
    solved_events: list[str] = []

    async def on_dossier_solved(channel: Any, answer_id: str, user: Any) -> None:
        solved_events.append(answer_id)

    bot.add_listener(on_dossier_solved)
    async with running_bot(fake_discord, bot):
        post = await fake_discord.forum_post("How many kidnappings?", "", tags=[QUESTION_TAG_ID])
        post_id = int(post["id"])
        [answer] = await fake_discord.wait_posted(lambda p: p.channel_id == post_id)
        solved = next(c for c in answer.custom_ids if c.startswith("dossier:solved:"))
        await fake_discord.click(answer.message_id, solved, user_id=ADMIN_ID)  # not the asker
        [refusal] = await fake_discord.wait_posted(lambda p: "Only the person who asked" in p.content)
        assert not fake_discord.calls_to("PATCH", rf"/channels/{post_id}")
        await fake_discord.click(answer.message_id, solved)
        [edit] = await fake_discord.wait_for("PATCH", rf"/channels/{post_id}")
        await fake_discord.wait_posted(lambda p: "Marked as solved" in p.content)
    assert refusal.ephemeral
    assert sorted(edit.json["applied_tags"]) == sorted([str(QUESTION_TAG_ID), str(SOLVED_TAG_ID)])
    assert fake_discord.threads[post_id]["applied_tags"] == edit.json["applied_tags"]
    assert solved_events == [solved.split(":")[2]]
    [vote] = bot.feedback.rows()
    assert vote["user_id"] == USER_ID and vote["vote"] == 1


async def test_auto_answer_settings_respected(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    """Only listed channels; the allow-list still applies; the bar is DOSSIER_AUTO_ANSWER_MIN_SCORE."""
    engine = engine_with(WEAK)
    settings = make_settings(
        tmp_path,
        discord_auto_channels=[HELP_CHANNEL_ID, OTHER_CHANNEL_ID],
        discord_channel_ids=[HELP_CHANNEL_ID, CHANNEL_ID],
        auto_answer_min_score=0.4,
    )
    bot = make_bot(settings, engine)
    async with running_bot(fake_discord, bot):
        await fake_discord.send_message("Who founded Safeguard Defenders?", mention_bot=False)  # not listed
        await fake_discord.send_message(
            "Who founded Safeguard Defenders?", channel_id=OTHER_CHANNEL_ID, mention_bot=False
        )  # listed, but not an allowed channel
        msg = await fake_discord.send_message(
            "Who founded Safeguard Defenders?", channel_id=HELP_CHANNEL_ID, mention_bot=False
        )
        await fake_discord.wait_posted(lambda p: p.channel_id == int(msg["id"]))  # 0.45 clears a 0.4 bar
        await asyncio.sleep(0.2)
    assert len(engine.asked) == 1 and len(fake_discord.posted) == 1


def test_reads_as_question() -> None:
    questions = [
        "How many overseas police stations did the report identify?",
        "how do I report a station to the RCMP",
        "Where are the Toronto stations",
        "does anyone know who founded Safeguard Defenders",
        "I'm looking for the title of the report",
        "Is there a station in Vancouver",
        "<@123> what is Operation Fox Hunt?",
        "加拿大有多少个海外警察站？",
    ]
    chatter = [
        "hi all",
        "thanks!",
        "Thank you so much, that helped.",
        "how are you?",
        "anyone here?",
        "What a day.",
        "lol",
        "The report came out in September.",
        "Why?",
        "ok",
        "see you tomorrow",
        "```how do I exit vim?```",
    ]
    assert [q for q in questions if not reads_as_question(q)] == []
    assert [c for c in chatter if reads_as_question(c)] == []


def test_auto_answer_bar_default_and_override(tmp_path: Path) -> None:
    assert make_settings(tmp_path).auto_answer_bar == pytest.approx(0.55)
    assert make_settings(tmp_path, auto_answer_min_score=0.7).auto_answer_bar == pytest.approx(0.7)
    # a model without a measured bar: its abstain threshold, scaled like MiniLM's (stricter)
    assert make_settings(tmp_path, embedding_model="multilingual").auto_answer_bar > 0.56


# -- scoped channels ----------------------------------------------------------------------------------------


def test_scope_patterns_match_folders_globs_and_files(tmp_path: Path) -> None:
    assert matches("policy/", "policy/leave.md") and matches("policy", "policy/old/a.md")
    assert not matches("policy/", "policy-old/a.md") and not matches("policy/", "faq/policy/a.md")
    assert matches("faq/*.md", "faq/a.md") and not matches("faq/*.md", "faq/a.txt")
    assert matches("report.md", "report.md") and not matches("report.md", "old/report.md")
    docs = tmp_path / "docs"
    paths = {"leave.md": docs / "policy" / "leave.md", "x.md": tmp_path / "elsewhere" / "x.md"}
    # a file ingested on its own is known by its name; under the documents folder, by its path there too
    assert in_scope(["policy/"], paths, docs) == ["leave.md"]


def test_channel_scopes_from_json_toml_and_errors(tmp_path: Path) -> None:
    scopes = ChannelScopes.from_setting('{"1": ["policy/"], "2": "faq/*.md"}')
    assert scopes.scopes == {1: ("policy/",), 2: ("faq/*.md",)}
    toml = tmp_path / "scopes.toml"
    toml.write_text('"10" = ["policy/", "faq/"]\n', encoding="utf-8")
    assert ChannelScopes.from_setting(str(toml)).scopes == {10: ("policy/", "faq/")}
    jsonfile = tmp_path / "scopes.json"
    jsonfile.write_text(json.dumps({"11": ["a/"]}), encoding="utf-8")
    assert ChannelScopes.from_setting(str(jsonfile)).scopes == {11: ("a/",)}
    assert not ChannelScopes.from_setting(None)
    for bad in (
        '{"general": ["a/"]}',
        '{"1": []}',
        '{"1": [3]}',
        "[1, 2]",
        "{not json",
        str(tmp_path / "missing.toml"),
    ):
        with pytest.raises(ConfigError, match="DISCORD_SCOPES"):
            ChannelScopes.from_setting(bad)


POLICY = """# Leave policy

Staff receive 25 days of paid annual leave. Requests for leave go to the team lead two weeks ahead.
"""


@pytest.fixture
def scoped_engine(tmp_path: Path, embedder: Any) -> Any:
    """A real engine over two documents in the documents folder: policy/leave.md and faq/lighthouse.md."""
    from bot.engine import Engine

    docs = tmp_path / "docs"
    (docs / "policy").mkdir(parents=True)
    (docs / "faq").mkdir()
    (docs / "policy" / "leave.md").write_text(POLICY, encoding="utf-8")
    (docs / "faq" / "lighthouse.md").write_text(LIGHTHOUSE, encoding="utf-8")
    engine = Engine(make_settings(tmp_path, docs_dir=docs), embedder=embedder)
    engine.ingest([docs])
    yield engine
    engine.close()


def test_engine_sources_filter_keeps_answers_in_scope(scoped_engine: Any) -> None:
    free = scoped_engine.ask("Who built the Harbor Lighthouse?")
    assert not free.abstained and {c.source for c in free.citations} == {"faq/lighthouse.md"}
    scoped = scoped_engine.ask("Who built the Harbor Lighthouse?", sources=["policy/"])
    assert {p.source for p in scoped.retrieved} <= {"policy/leave.md"}
    assert {c.source for c in scoped.citations} <= {"policy/leave.md"}
    assert "Margaret Olsen" not in scoped.text
    # an overview in scope covers only the scope; an empty scope has nothing to say
    overview = scoped_engine.ask("What is this about?", sources=["policy/"])
    assert {p.source for p in overview.retrieved} <= {"policy/leave.md"}
    assert scoped_engine.ask("Who built the Harbor Lighthouse?", sources=["nothing/"]).abstained


async def test_scoped_channel_never_cites_outside_its_scope(
    fake_discord: FakeDiscord, tmp_path: Path, scoped_engine: Any
) -> None:
    # The category holds the help channel and the forum; the general channel is unscoped.
    settings = scoped_engine.settings.model_copy(
        update={
            "discord_scopes": json.dumps({str(CATEGORY_ID): ["policy/"]}),
            "discord_auto_channels": [FORUM_ID],
        }
    )
    bot = make_bot(settings, scoped_engine)
    question = "Who built the Harbor Lighthouse?"
    async with running_bot(fake_discord, bot):
        in_help = await fake_discord.send_message(question, channel_id=HELP_CHANNEL_ID)
        [scoped] = await fake_discord.wait_posted(lambda p: p.channel_id == int(in_help["id"]), timeout=30)
        # a follow-up in the thread the bot opened keeps the channel's scope
        await fake_discord.send_message("When was the lighthouse built?", channel_id=int(in_help["id"]))
        [_, follow] = await fake_discord.wait_posted(
            lambda p: p.channel_id == int(in_help["id"]), count=2, timeout=30
        )
        in_general = await fake_discord.send_message(question)
        [free] = await fake_discord.wait_posted(lambda p: p.channel_id == int(in_general["id"]), timeout=30)
        await fake_discord.slash("sources", channel_id=HELP_CHANNEL_ID)
        [line, listing] = await fake_discord.wait_posted(lambda p: p.kind == "followup", count=2)
        await fake_discord.slash("status", channel_id=HELP_CHANNEL_ID)
        [status] = await fake_discord.wait_posted(lambda p: p.kind == "followup" and bool(p.embeds))
    for post in (scoped, follow):
        assert "lighthouse.md" not in post.text() and "Margaret Olsen" not in post.text()
    assert "lighthouse.md" in free.text() and "Margaret Olsen" in free.content
    assert "`policy/`" in line.content and "1 document" in line.content
    assert "leave.md" in listing.content and "lighthouse.md" not in listing.content
    fields = {f["name"]: f["value"] for f in status.embeds[0]["fields"]}
    assert "`policy/`" in fields["This channel"]


# -- escalation ----------------------------------------------------------------------------------------------


def role_only(payload: dict[str, Any]) -> bool:
    mentions = payload["allowed_mentions"]
    return (
        mentions.get("parse") == []
        and [str(r) for r in mentions.get("roles", [])] == [str(MOD_ROLE_ID)]
        and not mentions.get("users")
        and not mentions.get("replied_user")
    )


async def test_escalation_posts_once_with_only_the_role_allowed(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    def reply(question: str, history: Sequence[Turn]) -> Answer:
        if "capital of Mars" in question:
            return Answer(question, "The documents don't say.", (), True, (passage(1), passage(2)))
        return replace(cited_answer(question), evidence=STRONG)

    engine = FakeEngine(reply)
    settings = make_settings(
        tmp_path,
        discord_escalation_channel=MOD_CHANNEL_ID,
        discord_escalation_role=MOD_ROLE_ID,
        discord_auto_channels=[FORUM_ID],
    )
    bot = make_bot(settings, engine)
    async with running_bot(fake_discord, bot):
        # a declined question: handed over at once; a 👎 on it later adds nothing
        msg = await fake_discord.send_message("What is the capital of Mars? @everyone")
        [declined] = await fake_discord.wait_posted(lambda p: p.channel_id == int(msg["id"]))
        [first] = await fake_discord.wait_posted(lambda p: p.channel_id == MOD_CHANNEL_ID)
        down = next(c for c in declined.custom_ids if ":down:" in c)
        await fake_discord.click(declined.message_id, down)
        # an answer voted down twice: handed over once
        msg2 = await fake_discord.send_message("Who founded it?")
        [answered] = await fake_discord.wait_posted(lambda p: p.channel_id == int(msg2["id"]))
        down2 = next(c for c in answered.custom_ids if ":down:" in c)
        await fake_discord.click(answered.message_id, down2)
        await fake_discord.click(answered.message_id, down2, user_id=ADMIN_ID)
        await fake_discord.wait_posted(lambda p: "Thanks" in p.content, count=3)
        # "Ask a person" under an auto-answer, pressed twice
        post = await fake_discord.forum_post("How many stations are there?", "")
        [auto] = await fake_discord.wait_posted(lambda p: p.channel_id == int(post["id"]))
        person = next(c for c in auto.custom_ids if c.startswith("dossier:person:"))
        await fake_discord.click(auto.message_id, person)
        await fake_discord.wait_posted(lambda p: "asked a person" in p.content)
        await fake_discord.click(auto.message_id, person, user_id=ADMIN_ID)
        await fake_discord.wait_posted(lambda p: "already been asked" in p.content)
        await asyncio.sleep(0.2)
    handed = fake_discord.posts(MOD_CHANNEL_ID)
    assert len(handed) == 3  # the declined question, the voted-down answer, the auto-answer
    assert all(role_only(p.payload) for p in handed)
    assert all(p.content.startswith(f"<@&{MOD_ROLE_ID}>") for p in handed)
    assert "could not answer" in first.content and "What is the capital of Mars?" in first.text()
    assert "Closest passages" in first.text() and "@everyone" not in first.content
    assert "voted" in handed[1].content and "Who founded it?" in handed[1].text()
    assert "asked for a person" in handed[2].content and "How many stations" in handed[2].text()
    assert "/channels/" in first.content  # a link to the question's thread
    # nothing else the bot sent may ping anyone
    others = [
        p for p in fake_discord.posted if p.channel_id != MOD_CHANNEL_ID and "allowed_mentions" in p.payload
    ]
    assert all(not p.payload["allowed_mentions"].get("roles") for p in others)


async def test_escalation_with_only_a_role_mentions_it_in_the_thread(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    bot = make_bot(make_settings(tmp_path, discord_escalation_role=MOD_ROLE_ID), engine_with(STRONG))
    async with running_bot(fake_discord, bot):
        msg = await fake_discord.send_message("Who founded it?")
        thread_id = int(msg["id"])
        [answer] = await fake_discord.wait_posted(lambda p: p.channel_id == thread_id)
        down = next(c for c in answer.custom_ids if ":down:" in c)
        await fake_discord.click(answer.message_id, down)
        [ping] = await fake_discord.wait_posted(lambda p: f"<@&{MOD_ROLE_ID}>" in p.content)
    assert ping.channel_id == thread_id and role_only(ping.payload)


async def test_no_escalation_unless_set_up(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    def abstain(question: str, history: Sequence[Turn]) -> Answer:
        return Answer(question, "The documents don't say.", (), True, (passage(1),))

    bot = make_bot(make_settings(tmp_path), FakeEngine(abstain))
    async with running_bot(fake_discord, bot):
        msg = await fake_discord.send_message("What is the capital of Mars?")
        [answer] = await fake_discord.wait_posted(lambda p: p.channel_id == int(msg["id"]))
        await fake_discord.click(answer.message_id, next(c for c in answer.custom_ids if ":down:" in c))
        await fake_discord.wait_posted(lambda p: "Thanks" in p.content)
        await asyncio.sleep(0.2)
    assert not fake_discord.posts(MOD_CHANNEL_ID)
    assert all("<@&" not in p.content for p in fake_discord.posted)


def test_escalation_message_fits_and_neutralises() -> None:
    asked = Asked(
        question="@everyone what about <@123>? " + "x" * 3000,
        answer="The report counts 54 stations [1]. " * 100,
        passages=(passage(1), passage(2), passage(3), passage(4)),
        where=None,
        link="https://discord.com/channels/1/2/3",
    )
    part = escalation_part(asked, "an answer was voted 👎", MOD_ROLE_ID)
    assert part.content.startswith(f"<@&{MOD_ROLE_ID}>") and len(part.content) <= 2000
    question, passages = part.embeds
    assert "@everyone" not in (question.description or "") and len(question) <= 6000
    assert len(passages.fields) == 3


async def test_forum_post_marked_solved_becomes_a_document_when_enabled(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    engine = engine_with(STRONG)
    settings = make_settings(tmp_path, discord_auto_channels=[FORUM_ID], discord_solved_to_documents=True)
    bot = make_bot(settings, engine)
    async with running_bot(fake_discord, bot):
        post = await fake_discord.forum_post("How many kidnappings?", "Asking for the report.")
        post_id = int(post["id"])
        [answer] = await fake_discord.wait_posted(lambda p: p.channel_id == post_id)
        solved = next(c for c in answer.custom_ids if c.startswith("dossier:solved:"))
        await fake_discord.click(answer.message_id, solved)
        await fake_discord.wait_posted(lambda p: "Marked as solved" in p.content)
        for _ in range(250):  # saving runs after the reply: poll for the ingest
            if engine.ingested:
                break
            await asyncio.sleep(0.02)
    [[path]] = engine.ingested
    assert path.is_relative_to(settings.documents_dir / "discord") and path.suffix == ".md"
    assert "How many kidnappings?" in path.read_text(encoding="utf-8")
