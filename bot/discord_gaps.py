"""`/gaps`: the questions the documents could not answer, grouped (bot.gaps), for admins."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_admin import AdminCog
from bot.discord_parts import NO_MENTIONS, error_text, respond
from bot.discord_text import clip_text, escape, plural, source_name, split_text
from bot.excerpts import in_quotes
from bot.gaps import GapGroup, gap_report, parse_since

if TYPE_CHECKING:
    from bot.discord_bot import DossierBot

log = logging.getLogger(__name__)

GROUPS_SHOWN = 15  # the rest is in `dossier gaps`
EXAMPLE_CHARS = 200


def render_gaps(groups: Sequence[GapGroup], since: str | None) -> list[str]:
    """The groups as messages of at most 2,000 characters (text from users escaped)."""
    when = f" since {escape(since)}" if since else ""
    if not groups:
        return [f"No declined or voted-down questions{when}."]
    asked = sum(g.count for g in groups)
    lines = [f"**Knowledge gaps{when}**: {plural(asked, 'question')} in {plural(len(groups), 'group')}."]
    for group in groups[:GROUPS_SHOWN]:
        why = group.why()
        lines += [
            "",
            f"**{group.count}×** {in_quotes(escape(clip_text(group.example, EXAMPLE_CHARS)))} ({why})",
        ]
        nearest = ", ".join(
            f"{escape(source_name(p['source']))} · {escape(p['location'])}" for p in group.passages
        )
        if nearest:
            lines.append(f"nearest: {nearest}")
    if len(groups) > GROUPS_SHOWN:
        lines += ["", f"…and {plural(len(groups) - GROUPS_SHOWN, 'more group')}: run `dossier gaps` for all."]
    return split_text("\n".join(lines))


class GapsCog(commands.Cog, name="Gaps"):
    """Admins see what users asked that the documents did not answer."""

    def __init__(self, bot: DossierBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="gaps", description="Admin: questions the documents could not answer, grouped."
    )
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @app_commands.describe(since="Only questions from this date (2026-11-30) or days ago (7d)")
    async def gaps(self, interaction: discord.Interaction, since: str | None = None) -> None:
        admin = self.bot.get_cog("Admin")
        if not isinstance(admin, AdminCog) or await admin.refuse_non_admin(interaction):
            return
        engine = self.bot.engine
        if getattr(engine, "embedder", None) is None:
            await respond(interaction, "Knowledge gaps need the index's embedding model; this bot has none.")
            return
        try:
            start = parse_since(since)
        except Exception as exc:
            await respond(interaction, error_text(exc, "reading /gaps since"))
            return
        # Private: the questions are other members' words.
        await interaction.response.defer(thinking=True, ephemeral=True)
        groups = await asyncio.to_thread(gap_report, self.bot.settings, engine, start)
        log.info("/gaps by %s: %d group(s)", interaction.user.id, len(groups))
        for text in render_gaps(groups, since):
            await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
