"""The 👍 / 👎 buttons under every answer, and the cog that records the votes."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from bot.discord_parts import error_text, respond

if TYPE_CHECKING:
    from bot.discord_bot import DossierBot

COG_NAME = "Feedback"


class FeedbackButton(
    discord.ui.DynamicItem[discord.ui.Button],
    template=r"dossier:fb:(?P<vote>up|down):(?P<answer_id>[0-9a-f]{8,32})",
):
    """👍 / 👎 under an answer. Persistent: the custom_id carries the answer id and the vote."""

    def __init__(self, answer_id: str, vote: int) -> None:
        up = vote > 0
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.secondary,
                emoji="👍" if up else "👎",
                custom_id=f"dossier:fb:{'up' if up else 'down'}:{answer_id}",
            )
        )
        self.answer_id = answer_id
        self.vote = 1 if up else -1

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> FeedbackButton:
        return cls(match["answer_id"], 1 if match["vote"] == "up" else -1)

    async def callback(self, interaction: discord.Interaction) -> None:
        client = interaction.client
        cog = client.get_cog(COG_NAME) if isinstance(client, commands.Bot) else None
        if isinstance(cog, FeedbackCog):
            await cog.record_vote(interaction, self.answer_id, self.vote)


def feedback_view(answer_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(FeedbackButton(answer_id, 1))
    view.add_item(FeedbackButton(answer_id, -1))
    return view


class FeedbackCog(commands.Cog, name=COG_NAME):
    """Stores each vote against the answer it was cast on (`bot.feedback.FeedbackStore`)."""

    def __init__(self, bot: DossierBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        # Buttons of answers posted before a restart keep working: they match by custom_id.
        self.bot.add_dynamic_items(FeedbackButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(FeedbackButton)

    async def record_vote(self, interaction: discord.Interaction, answer_id: str, vote: int) -> None:
        try:
            await asyncio.to_thread(
                self.bot.feedback.record,
                answer_id,
                vote,
                interaction.user.id,
                guild_id=interaction.guild_id,
                channel_id=interaction.channel_id,
            )
        except Exception as exc:
            await respond(interaction, error_text(exc, "recording feedback"))
            return
        self.bot.dispatch("dossier_vote", interaction, answer_id, vote)  # escalation listens
        await respond(
            interaction,
            "Thanks for the feedback!" if vote > 0 else "Thanks: noted that this answer was not helpful.",
        )
