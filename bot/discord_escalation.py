"""Escalation (opt-in): hand a question to people when the bot cannot help.

Three things ask for a person: the bot declined a question (mention or `/ask`), someone
voted an answer 👎, or someone pressed "Ask a person" under an auto-answer. Each question is
handed over once (whatever asks next is told it already was). With DISCORD_ESCALATION_CHANNEL
the question, the bot's answer, the closest passages and a link go to the moderators' channel
(with DISCORD_ESCALATION_ROLE mentioned there, if set); with only the role, the role is
mentioned in the question's thread. The one role is the only mention allowed: never
@everyone, never a user.

The cogs tell this one what happened through bot events (`dossier_answered`, `dossier_vote`),
so asking and feedback do not depend on it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.discord_parts import NO_MENTIONS, message_kwargs
from bot.discord_render import COLOUR_ABSTAIN, NOT_COVERED, Part, closest_embeds
from bot.discord_text import clip_text, escape_answer_text, escape_clipped
from bot.types import Answer, Passage

if TYPE_CHECKING:
    from bot.discord_bot import DossierBot

log = logging.getLogger(__name__)

COG_NAME = "Escalation"
REMEMBERED = 2000  # answers kept for a later 👎 or "Ask a person" (oldest forgotten first)

DECLINED = "the bot could not answer from the documents"
VOTED_DOWN = "an answer was voted 👎"
ASKED = "someone asked for a person"

HANDED_OVER, ALREADY, FAILED = "handed over", "already", "failed"


@dataclass
class Asked:
    """What a person needs to see: the question, the bot's answer, where it was posted."""

    question: str
    answer: str
    passages: tuple[Passage, ...]
    where: discord.abc.Messageable | None  # the thread or channel of the answer
    link: str


def role_mentions(role_id: int) -> discord.AllowedMentions:
    """The one role may be pinged; nobody else, never @everyone."""
    return discord.AllowedMentions(
        everyone=False, users=False, roles=[discord.Object(role_id)], replied_user=False
    )


def escalation_part(asked: Asked, reason: str, role_id: int | None = None) -> Part:
    """The moderators' message: who is needed and why, then the question, answer and passages."""
    head = f"<@&{role_id}> " if role_id is not None else ""
    link = f" {asked.link}" if asked.link else ""
    content = f"{head}**A person is needed**: {reason}.{link}"
    embed = discord.Embed(
        title="Question", description=escape_clipped(asked.question, 1500), colour=COLOUR_ABSTAIN
    )
    answer = asked.answer.strip()
    embed.add_field(
        name="The bot's answer",
        value=escape_answer_text(clip_text(answer, 1000)) if answer else NOT_COVERED,
        inline=False,
    )
    embeds = [embed]
    passages = closest_embeds(asked.passages)
    if passages:
        embeds.append(passages[0])
    return Part(content=content, embeds=embeds)


class EscalationCog(commands.Cog, name=COG_NAME):
    """Posts to the moderators' channel or mentions the role, once per answer."""

    def __init__(self, bot: DossierBot) -> None:
        self.bot = bot
        self.channel_id = bot.settings.discord_escalation_channel
        self.role_id = bot.settings.discord_escalation_role
        self._asked: OrderedDict[str, Asked] = OrderedDict()
        self._handed_over: OrderedDict[str, None] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.channel_id is not None or self.role_id is not None

    def remember(self, answer_id: str, answer: Answer, message: discord.Message | None) -> None:
        """Keep an answer that was posted, so a later vote or button can hand it over."""
        self._asked[answer_id] = Asked(
            question=answer.question,
            answer="" if answer.abstained else answer.text,
            passages=answer.retrieved[:3],
            where=message.channel if message is not None else None,
            link=message.jump_url if message is not None else "",
        )
        while len(self._asked) > REMEMBERED:
            self._asked.popitem(last=False)

    @commands.Cog.listener()
    async def on_dossier_answered(
        self, answer: Answer, answer_id: str, message: discord.Message | None
    ) -> None:
        """An answer was posted (`message` is its last message); a declined one is handed over."""
        if not self.enabled:
            return
        self.remember(answer_id, answer, message)
        if answer.abstained:
            await self.escalate(answer_id, DECLINED)

    @commands.Cog.listener()
    async def on_dossier_vote(self, interaction: discord.Interaction, answer_id: str, vote: int) -> None:
        if vote < 0 and self.enabled:
            await self.escalate(answer_id, VOTED_DOWN, interaction.message)

    async def escalate(self, answer_id: str, reason: str, message: discord.Message | None = None) -> str:
        """Hand the question over once: HANDED_OVER, ALREADY, or FAILED (also when it is off)."""
        if not self.enabled:
            return FAILED
        if answer_id in self._handed_over:
            return ALREADY
        asked = self._asked.get(answer_id) or _from_message(message)
        if asked is None:
            log.warning("Cannot escalate answer %s: it is no longer known", answer_id)
            return FAILED
        self._handed_over[answer_id] = None  # before any await: a second click finds it taken
        while len(self._handed_over) > REMEMBERED:
            self._handed_over.popitem(last=False)
        try:
            if self.channel_id is not None:
                await self._post_to_moderators(asked, reason)
            elif self.role_id is not None and asked.where is not None:
                await asked.where.send(
                    f"<@&{self.role_id}> a person is needed here: {reason}.",
                    allowed_mentions=role_mentions(self.role_id),
                )
        except (discord.DiscordException, OSError) as exc:
            self._handed_over.pop(answer_id, None)  # not handed over: a later trigger may try again
            log.warning("Could not escalate answer %s: %s", answer_id, exc)
            return FAILED
        log.info("Escalated answer %s (%s)", answer_id, reason)
        return HANDED_OVER

    async def _post_to_moderators(self, asked: Asked, reason: str) -> None:
        assert self.channel_id is not None
        channel = self.bot.get_channel(self.channel_id) or await self.bot.fetch_channel(self.channel_id)
        if not isinstance(channel, discord.abc.Messageable):
            raise discord.InvalidData(f"channel {self.channel_id} cannot receive messages")
        part = escalation_part(asked, reason, self.role_id)
        mentions = role_mentions(self.role_id) if self.role_id is not None else NO_MENTIONS
        await channel.send(allowed_mentions=mentions, **message_kwargs(part, None))


def _from_message(message: discord.Message | None) -> Asked | None:
    """An answer posted before a restart: what its message shows."""
    if message is None:
        return None
    return Asked(
        question="(see the thread)",
        answer=message.content,
        passages=(),
        where=message.channel,
        link=message.jump_url,
    )


def escalation_cog(bot: commands.Bot) -> EscalationCog | None:
    cog = bot.get_cog(COG_NAME)
    return cog if isinstance(cog, EscalationCog) else None
