"""Auto-answers in help channels and forums (DISCORD_AUTO_CHANNELS), without a mention.

A new forum post (its starter message, with the post's title), or a top-level message in a
help channel that reads as a question (bot.question_shape), is answered in its thread when
the evidence is strong: not declined, and `Answer.evidence` at or above
DOSSIER_AUTO_ANSWER_MIN_SCORE, a stricter bar than a question put to the bot. Otherwise the
bot stays silent: no message, no reaction, no typing. Each post is answered at most once.

Under an auto-answer, besides 👍 / 👎: "Solved" (the asker only; in a forum, the post gets
the forum's "solved" tag when it has one) and, when escalation is set up, "Ask a person"
(bot.discord_escalation).
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from bot.discord_escalation import ALREADY, ASKED, HANDED_OVER, escalation_cog
from bot.discord_feedback import feedback_view
from bot.discord_parts import Conversation, respond
from bot.discord_render import render_answer
from bot.discord_replies import MentionReply
from bot.discord_scopes import scoped_ask
from bot.discord_text import strip_mentions
from bot.question_shape import reads_as_question
from bot.types import Answer, Turn

if TYPE_CHECKING:
    from bot.discord_bot import DossierBot

log = logging.getLogger(__name__)

COG_NAME = "AutoAnswer"
SOLVED_TAGS = ("solved", "resolved", "answered")  # a forum tag with one of these names, in this order
MAX_TAGS = 5  # Discord's limit of tags on a post
REMEMBERED_POSTS = 10_000


class SolvedButton(
    discord.ui.DynamicItem[discord.ui.Button],
    template=r"dossier:solved:(?P<answer_id>[0-9a-f]{8,32}):(?P<asker>\d{1,20})",
):
    """ "Solved", for the asker. Persistent: the custom_id carries the answer and the asker."""

    def __init__(self, answer_id: str, asker_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.success,
                label="Solved",
                emoji="✅",
                custom_id=f"dossier:solved:{answer_id}:{asker_id}",
            )
        )
        self.answer_id = answer_id
        self.asker_id = asker_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> SolvedButton:
        return cls(match["answer_id"], int(match["asker"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        cog = interaction.client.get_cog(COG_NAME) if isinstance(interaction.client, commands.Bot) else None
        if isinstance(cog, AutoCog):
            await cog.mark_solved(interaction, self.answer_id, self.asker_id)


class PersonButton(
    discord.ui.DynamicItem[discord.ui.Button], template=r"dossier:person:(?P<answer_id>[0-9a-f]{8,32})"
):
    """ "Ask a person": hands the question to the moderators (bot.discord_escalation)."""

    def __init__(self, answer_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.secondary,
                label="Ask a person",
                emoji="🙋",
                custom_id=f"dossier:person:{answer_id}",
            )
        )
        self.answer_id = answer_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> PersonButton:
        return cls(match["answer_id"])

    async def callback(self, interaction: discord.Interaction) -> None:
        cog = interaction.client.get_cog(COG_NAME) if isinstance(interaction.client, commands.Bot) else None
        if isinstance(cog, AutoCog):
            await cog.ask_a_person(interaction, self.answer_id)


def auto_view(answer_id: str, asker_id: int, *, person: bool) -> discord.ui.View:
    """👍 👎 Solved [Ask a person], in one row."""
    view = feedback_view(answer_id)
    view.add_item(SolvedButton(answer_id, asker_id))
    if person:
        view.add_item(PersonButton(answer_id))
    return view


def forum_post_of(message: discord.Message) -> discord.Thread | None:
    """The forum post whose starter message this is (its id is the post's), or None."""
    channel = message.channel
    if not isinstance(channel, discord.Thread) or channel.id != message.id:
        return None
    return channel if isinstance(channel.parent, discord.ForumChannel) else None


def solved_tag(forum: discord.ForumChannel) -> discord.ForumTag | None:
    by_name = {tag.name.strip().lower(): tag for tag in forum.available_tags}
    return next((by_name[name] for name in SOLVED_TAGS if name in by_name), None)


class AutoCog(commands.Cog, name=COG_NAME):
    """Answers posts and questions in DISCORD_AUTO_CHANNELS on its own, when it is sure."""

    def __init__(self, bot: DossierBot) -> None:
        self.bot = bot
        self.channels = set(bot.settings.discord_auto_channels)
        self.bar = bot.settings.auto_answer_bar
        self._seen: OrderedDict[int, None] = OrderedDict()  # posts taken up (answered or not)

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(SolvedButton, PersonButton)
        allowed = self.bot.settings.discord_channel_ids
        if allowed and self.channels - set(allowed):
            log.warning(
                "DISCORD_AUTO_CHANNELS %s are not in DISCORD_CHANNEL_IDS: the bot will not answer there",
                sorted(self.channels - set(allowed)),
            )

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(SolvedButton, PersonButton)

    # -- which messages ----------------------------------------------------------------------------

    def question_of(self, message: discord.Message) -> str | None:
        """The question an auto-answer would answer, or None when the message is not for one."""
        me = self.bot.user
        if message.author.bot or message.guild is None or me is None or message.author.id == me.id:
            return None
        if message.reference is not None or any(u.id == me.id for u in message.mentions):
            return None  # a reply or a mention: the asking cog's
        own_role = message.guild.self_role
        if own_role is not None and own_role in message.role_mentions:
            return None
        post = forum_post_of(message)
        if post is not None:
            if post.parent_id not in self.channels:
                return None
            # Every new post asks something; its title often is the question. A long post is
            # cut to the question limit rather than refused (a refusal would be a message).
            limit = self.bot.settings.max_question_chars
            return strip_mentions(f"{post.name}\n{message.content}")[:limit]
        if message.channel.id in self.channels and isinstance(message.channel, discord.TextChannel):
            return strip_mentions(message.content) if reads_as_question(message.content) else None
        return None

    def confident(self, answer: Answer) -> bool:
        return (
            not answer.abstained
            and bool(answer.citations)
            and answer.evidence is not None
            and answer.evidence >= self.bar
        )

    def _first_time(self, post_id: int) -> bool:
        if post_id in self._seen:
            return False
        self._seen[post_id] = None
        while len(self._seen) > REMEMBERED_POSTS:
            self._seen.popitem(last=False)
        return True

    # -- answering ---------------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if not self.channels:
            return
        question = self.question_of(message)
        if not question:
            return
        asking = self.bot.get_cog("Asking")
        channel_allowed = getattr(asking, "channel_allowed", None)
        if channel_allowed is not None and not channel_allowed(message.channel):
            return
        if not self._first_time(message.id) or self.bot.rate_limiter.hit(message.author.id):
            return  # at most once a post; over the rate limit: silence, as for a weak answer
        scope = self.bot.scopes.of(message.channel)
        try:
            answer = await self.bot.run_bounded(scoped_ask(self.bot.engine, scope, question, ()))
        except Exception:
            log.warning("Auto-answer to message %s failed; staying silent", message.id, exc_info=True)
            return
        if not self.confident(answer):
            log.info("Not auto-answering message %s (evidence %s)", message.id, answer.evidence)
            return
        await self._deliver(message, question, answer)

    async def _deliver(self, message: discord.Message, question: str, answer: Answer) -> None:
        answer_id = secrets.token_hex(6)
        try:
            await asyncio.to_thread(
                self.bot.feedback.save_answer,
                answer_id,
                question=question,
                answer=answer.text,
                sources=answer.citations,
                guild_id=message.guild.id if message.guild else None,
                channel_id=message.channel.id,
            )
        except Exception:
            log.exception("Could not store auto-answer %s for feedback", answer_id)
        conversation = Conversation()
        conversation.turns.append(Turn(question, answer.text))
        escalation = escalation_cog(self.bot)
        view = auto_view(answer_id, message.author.id, person=escalation is not None and escalation.enabled)
        reply = MentionReply(message, self.bot.conversations, threads=True)
        try:
            await reply.deliver(question, render_answer(answer), view, conversation, new=True)
        except (discord.HTTPException, OSError) as exc:
            log.warning("Could not post the auto-answer to message %s: %s", message.id, exc)
            return
        self.bot.dispatch("dossier_answered", answer, answer_id, reply.last_sent)

    # -- buttons -----------------------------------------------------------------------------------

    async def mark_solved(self, interaction: discord.Interaction, answer_id: str, asker_id: int) -> None:
        if interaction.user.id != asker_id:
            await respond(interaction, "Only the person who asked can mark this solved.")
            return
        tagged = await self._tag_solved(interaction.channel)
        try:
            await asyncio.to_thread(
                self.bot.feedback.record,
                answer_id,
                1,
                interaction.user.id,
                guild_id=interaction.guild_id,
                channel_id=interaction.channel_id,
            )
        except Exception:
            log.exception("Could not record the solved mark on %s", answer_id)
        self.bot.dispatch("dossier_solved", interaction.channel, answer_id, interaction.user)
        await respond(interaction, "Marked as solved." + (" Tagged the post ✅." if tagged else ""))

    async def _tag_solved(self, channel: Any) -> bool:
        """Give a forum post its forum's "solved" tag (needs Manage Threads); True if it has it."""
        if not isinstance(channel, discord.Thread) or not isinstance(channel.parent, discord.ForumChannel):
            return False
        tag = solved_tag(channel.parent)
        if tag is None:
            return False
        applied = channel.applied_tags
        if any(t.id == tag.id for t in applied):
            return True
        try:
            await channel.edit(applied_tags=[*applied[: MAX_TAGS - 1], tag])
        except (discord.HTTPException, OSError) as exc:
            log.warning("Could not tag post %s solved (Manage Threads permission?): %s", channel.id, exc)
            return False
        return True

    async def ask_a_person(self, interaction: discord.Interaction, answer_id: str) -> None:
        escalation = escalation_cog(self.bot)
        if escalation is None or not escalation.enabled:
            await respond(interaction, "No one is set up to take questions from me here, sorry.")
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        outcome = await escalation.escalate(answer_id, ASKED, interaction.message)
        if outcome == HANDED_OVER:
            await respond(interaction, "I've asked a person to look at this.")
        elif outcome == ALREADY:
            await respond(interaction, "A person has already been asked about this.")
        else:
            await respond(interaction, "Sorry, I could not reach anyone just now; please ask in the channel.")
