"""Discord uploads are ingested in a bounded child process: a runaway file cannot take the bot down."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.discord_bot import DossierBot
from devtools.fake_discord import ADMIN_ID, FakeDiscord, running_bot
from dossier_common.errors import DossierError
from dossier_common.settings import Settings
from ingest.isolated import ingest_in_child
from tests.onnx_models import seed_models
from tests.test_robustness_ingest import docx_bomb

LIGHTHOUSE = "# The Harbor Lighthouse\n\nThe Harbor Lighthouse was built in 1871 by Margaret Olsen.\n"


def bot_settings(tmp_path: Path, **overrides) -> Settings:
    values = {
        "home": tmp_path / "home",
        "docs_dir": tmp_path / "docs",
        "discord_token": "test-token",
        **overrides,
    }
    seed_models(tmp_path / "home")  # the child embeds on the default backend: no export per test
    return Settings(_env_file=None, **values)


def test_child_ingest_reports_like_the_pipeline(tmp_path):
    docs = tmp_path / "in"
    docs.mkdir()
    (docs / "lighthouse.md").write_text(LIGHTHOUSE)
    report = ingest_in_child([docs], bot_settings(tmp_path))
    assert (report.added, report.failed, report.chunks) == (1, (), 1)


def test_child_past_its_deadline_is_stopped_with_one_line(tmp_path):
    docs = tmp_path / "in"
    docs.mkdir()
    (docs / "lighthouse.md").write_text(LIGHTHOUSE)
    with pytest.raises(DossierError, match=r"^Ingest stopped after 0.2 s \(DOSSIER_INGEST_TIMEOUT\)"):
        ingest_in_child([docs], bot_settings(tmp_path, ingest_timeout=0.2))


async def test_upload_that_exhausts_memory_fails_alone_and_the_bot_lives(fake_discord: FakeDiscord, tmp_path):
    # Budgets off, so only the child's memory limit stands between the bomb and the bot.
    settings = bot_settings(tmp_path, max_unzipped_mb=100_000, max_text_chars=10**10, ingest_memory_mb=1024)
    bomb = tmp_path / "bomb.docx"
    docx_bomb(bomb, 1100)
    bot = DossierBot(settings, engine=None, isolated_ingest=True, guild_ready_timeout=0.05)  # type: ignore[arg-type]
    async with running_bot(fake_discord, bot, timeout=60):
        upload = fake_discord.add_file("bomb.docx", bomb.read_bytes(), "application/octet-stream")
        await fake_discord.slash("ingest", user_id=ADMIN_ID, attachments={"file": upload})
        [first] = await fake_discord.wait_posted(lambda p: "ingested" in p.content, timeout=120)
        assert "1 failed" in first.content and "needs more memory than this ingest may use" in first.content
        upload = fake_discord.add_file("lighthouse.md", LIGHTHOUSE.encode(), "text/markdown")
        await fake_discord.slash("ingest", user_id=ADMIN_ID, attachments={"file": upload})
        [second] = await fake_discord.wait_posted(lambda p: "lighthouse.md" in p.content, timeout=120)
        assert "1 added" in second.content
