"""Solved threads become documents: "Add to documents" against the fake Discord, the Markdown
written (no mentions, ids or authors), its signed link, and answers that cite the thread."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.discord_thread_documents import save_solved_thread
from bot.thread_documents import ThreadMessage, clean_message, thread_document_path, thread_markdown
from devtools.fake_discord import (
    ADMIN_ID,
    BOT_ID,
    CHANNEL_ID,
    GUILD_ID,
    OTHER_BOT_ID,
    USER_ID,
    FakeDiscord,
    running_bot,
)
from ingest.sidecar import source_url
from tests.test_discord import FakeEngine, make_bot, make_settings

QUESTION = "How do I rotate the Zorblax API key? <@&456> @everyone"
FIX = (
    "Thanks <@{user}>, to rotate the Zorblax API key run `zorblax keys rotate --all` from the admin console. "
    "The old Zorblax key stops working 24 hours after the rotation. See <#{channel}> <:party:123456789012345678>"
)
PERM_MANAGE_MESSAGES = (1 << 13) | (1 << 10) | (1 << 11)


def test_clean_message_drops_every_mention_and_id() -> None:
    text = "Hi <@123>, <@!456> and <@&789>: see <#1011>. @here </ask:1213> ok <:wave:1415> <t:0:R>"
    cleaned = clean_message(text)
    assert cleaned == "Hi, and: see. ok :wave: 1970-01-01 00:00 UTC"
    assert not any(ch.isdigit() for ch in cleaned.split(":wave:")[0])


def test_markdown_title_question_replies_and_safe_path(tmp_path: Path) -> None:
    at = datetime(2026, 11, 30, tzinfo=UTC)
    text = thread_markdown(
        "Key rotation <@1>",
        "help",
        [ThreadMessage("Why? <@1>", at), ThreadMessage("", at), ThreadMessage("Because.", at)],
    )
    assert text.splitlines()[:7] == [
        "# Key rotation",
        "",
        "A Discord thread in #help, 2026-11-30 to 2026-11-30.",
        "",
        "## Question",
        "",
        "Why?",
    ]
    assert text.endswith("## Replies\n\nBecause.\n")
    with pytest.raises(ValueError):
        thread_markdown("empty", "help", [ThreadMessage("<@1>", at)])
    path = thread_document_path(tmp_path, "../help desk", "How? ../../etc/passwd.md", "https://x/1")
    assert path.parent == tmp_path / "discord" / "help desk" and path.suffix == ".md"
    assert path.resolve().is_relative_to(tmp_path / "discord")


async def thread_with_answer(fake_discord: FakeDiscord) -> tuple[int, int]:
    """A member asks in #general, opens a thread on the question, an admin answers in it, a
    bot chimes in. Returns (thread id, id of the admin's message)."""
    question = await fake_discord.send_message(QUESTION, mention_bot=False)
    thread_id = await fake_discord.open_thread("Rotating the Zorblax key?", on_message=int(question["id"]))
    await fake_discord.send_message(
        "I looked in settings, nothing there.", channel_id=thread_id, mention_bot=False
    )
    fix = await fake_discord.send_message(
        FIX.format(user=USER_ID, channel=CHANNEL_ID),
        author_id=ADMIN_ID,
        channel_id=thread_id,
        mention_bot=False,
    )
    await fake_discord.send_message(
        "beep boop I am a bot", author_id=OTHER_BOT_ID, channel_id=thread_id, mention_bot=False
    )
    return thread_id, int(fix["id"])


async def test_add_to_documents_saves_the_thread_and_it_answers_with_its_link(
    fake_discord: FakeDiscord, tmp_path: Path, embedder: Any
) -> None:
    from bot.engine import Engine

    settings = make_settings(tmp_path)
    engine = Engine(settings, embedder=embedder)
    bot = make_bot(settings, engine)
    async with running_bot(fake_discord, bot):
        [sync] = fake_discord.calls_to("PUT", r"/applications/\d+/commands")
        thread_id, fix_id = await thread_with_answer(fake_discord)
        url = f"https://discord.com/channels/{GUILD_ID}/{thread_id}"

        await fake_discord.message_command("Add to documents", fix_id, user_id=USER_ID)
        [refusal] = await fake_discord.wait_posted(lambda p: p.kind == "callback")
        assert refusal.ephemeral and "only moderators" in refusal.content

        await fake_discord.message_command(
            "Add to documents", fix_id, user_id=ADMIN_ID, permissions=PERM_MANAGE_MESSAGES
        )
        [done] = await fake_discord.wait_posted(lambda p: p.kind == "followup", timeout=60)
        assert done.ephemeral and "Saved discord/general/Rotating the Zorblax key.md" in done.content
        assert "1 added" in done.content

        # Then anyone can ask, and the answer cites the thread with its link.
        await fake_discord.slash("ask", {"question": "Which command rotates the Zorblax keys?"})
        _, answer = await fake_discord.wait_posted(lambda p: p.kind == "followup", count=2, timeout=60)
    menu = next(c for c in sync.json if c["name"] == "Add to documents")
    assert menu["type"] == 3 and int(menu["default_member_permissions"]) == 1 << 13  # Manage Messages
    assert menu["dm_permission"] is False

    path = settings.documents_dir / "discord" / "general" / "Rotating the Zorblax key.md"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Rotating the Zorblax key?\n")
    assert "Thanks, to rotate the Zorblax API key run" in text and "See :party:" in text
    assert "## Question\n\nHow do I rotate the Zorblax API key?\n" in text
    assert "I looked in settings" in text and "zorblax keys rotate --all" in text
    assert "beep boop" not in text  # bots' messages are left out
    for leak in (
        "<@",
        "<#",
        "@everyone",
        str(USER_ID),
        str(ADMIN_ID),
        str(CHANNEL_ID),
        "alice",
        "boss",
        "123456789",
    ):
        assert leak not in text, leak
    assert source_url(path) == url

    result = engine.ask("How long does the old Zorblax key keep working after a rotation?")
    assert not result.abstained and "24 hours" in result.text
    assert result.citations[0].source == url and result.citations[0].link.startswith(url + "#:~:text=")
    assert "zorblax keys rotate" in answer.text().lower()
    assert f"(<{url}#:~:text=" in answer.text()  # "open at the quote" goes to the thread
    assert answer.embeds[0]["fields"][0]["name"].startswith("[1] Discord thread")
    assert str(BOT_ID) not in text


async def test_add_to_documents_outside_a_thread_is_refused(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    engine = FakeEngine()
    bot = make_bot(make_settings(tmp_path), engine)
    async with running_bot(fake_discord, bot):
        msg = await fake_discord.send_message("a message in the channel itself", mention_bot=False)
        await fake_discord.message_command("Add to documents", int(msg["id"]), user_id=ADMIN_ID)
        [refusal] = await fake_discord.wait_posted(lambda p: p.kind == "callback")
    assert "inside a thread" in refusal.content and engine.ingested == []


async def test_solved_thread_saved_only_when_the_setting_is_on(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    engine = FakeEngine()
    off = make_bot(make_settings(tmp_path / "off"), engine)
    async with running_bot(fake_discord, off):
        thread_id, _ = await thread_with_answer(fake_discord)
        thread = off.get_channel(thread_id)
        assert await save_solved_thread(off, thread) is None  # type: ignore[arg-type]
    assert engine.ingested == []

    on_settings = make_settings(tmp_path / "on", discord_solved_to_documents=True)
    on = make_bot(on_settings, engine)
    async with running_bot(fake_discord, on):
        thread = on.get_channel(thread_id) or await on.fetch_channel(thread_id)
        saved = await save_solved_thread(on, thread)  # type: ignore[arg-type]
    assert saved is not None and engine.ingested == [[saved.path]]
    assert saved.path.is_relative_to(on_settings.documents_dir / "discord")
