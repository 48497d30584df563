"""What `/ingest` accepts is what the loaders read (issue 15: `.markdown` loaded but was refused)."""

from __future__ import annotations

from pathlib import Path

from devtools.fake_discord import ADMIN_ID, FakeDiscord, running_bot
from ingest.loaders import SUPPORTED_SUFFIXES
from tests.test_discord import FakeEngine, make_bot, make_settings


async def test_every_loadable_suffix_can_be_uploaded(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    engine = FakeEngine()
    settings = make_settings(tmp_path)
    bot = make_bot(settings, engine)
    async with running_bot(fake_discord, bot):
        exe = fake_discord.add_file("tool.exe", b"MZ")
        await fake_discord.slash("ingest", user_id=ADMIN_ID, attachments={"file": exe})
        [refusal] = await fake_discord.wait_posted(lambda p: p.kind == "callback")
        note = fake_discord.add_file("notes.markdown", b"# Notes\n\nThe bell rings at noon.\n")
        await fake_discord.slash("ingest", user_id=ADMIN_ID, attachments={"file": note})
        [done] = await fake_discord.wait_posted(lambda p: p.kind == "followup")
    assert "ingested" in done.content
    assert engine.ingested == [[settings.documents_dir / "notes.markdown"]]
    listed = refusal.content.split("Send one of: ", 1)[1].rstrip(".").split(", ")
    assert {f".{kind}" for kind in listed} == SUPPORTED_SUFFIXES
