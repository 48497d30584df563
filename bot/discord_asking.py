"""Asking: `/ask`, `/summary`, `/sources`, @mentions and follow-ups in threads.

Every answer, whatever asked for it, goes through `AskingCog.answer_and_deliver`: computed
in a bounded worker thread, stored for feedback before it is shown, remembered by its
conversation, then posted where the question came from (`bot.discord_replies`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_feedback import feedback_view
from bot.discord_parts import NO_MENTIONS, Conversation, error_text, message_kwargs, respond
from bot.discord_render import document_choices, render_answer, render_documents
from bot.discord_replies import MentionReply, Reply, SlashReply, safe_reply
from bot.discord_scopes import documents_in_scope, scope_line, scoped_ask
from bot.discord_streaming import AnswerStream, StreamingReply, asker_id
from bot.discord_text import strip_mentions
from bot.gaps import record_declined
from bot.types import Answer, DocumentInfo, StopAnswer, Turn

if TYPE_CHECKING:
    from bot.discord_bot import DossierBot

log = logging.getLogger(__name__)

ACK_EMOJI = "👀"
SLOW_DOWN_EMOJI = "⏳"
DOCUMENTS_FRESH_FOR = 5.0  # seconds autocomplete reuses the document list (not one read per keystroke)


class AskingCog(commands.Cog, name="Asking"):
    """Questions, in slash commands and in messages that mention (or reply to) the bot."""

    def __init__(self, bot: DossierBot) -> None:
        self.bot = bot
        self._rate_warned: dict[int, float] = {}  # user id -> until when they have been told
        self._documents: tuple[float, list[DocumentInfo]] = (-math.inf, [])

    # -- the one answering path ---------------------------------------------------------------------

    async def answer_and_deliver(
        self,
        reply: Reply,
        work: Callable[..., Answer],
        conversation: Conversation | None,
        *,
        question: str | None = None,
        tell_queued: bool = True,
        stream: bool = False,
    ) -> None:
        """Compute (bounded), store, remember and post one answer; `question` defaults to the answer's.

        `stream`: `work` takes `on_token`, and a language model's answer is shown as it is
        written (bot.discord_streaming)."""
        new = conversation is None
        conversation = conversation or Conversation()
        streamed = self._answer_stream(reply, question or "", conversation, new) if stream else None
        async with reply.working():
            try:
                on_queued = partial(reply.queued, new=new) if tell_queued else None
                if streamed is not None:
                    work = partial(work, on_token=streamed.on_token)
                answer = await self.bot.run_bounded(work, on_queued=on_queued)
            except StopAnswer:
                answer = None
            except Exception as exc:
                if streamed is not None:
                    await streamed.abandon()
                await reply.say(error_text(exc, reply.where))
                return
        if streamed is not None and (streamed.stopped or answer is None):
            await streamed.stop()  # a no-op after the button; keeps what came
            if streamed.message is not None:  # a follow-up may refer to what was said
                conversation.turns.append(Turn(question or "", streamed.text))
            return
        assert answer is not None
        answer_id = secrets.token_hex(6)
        # Stored before it is shown, so that a vote can never arrive first.
        await self._remember(answer, answer_id, reply.guild_id, reply.channel_id)
        if answer.abstained:  # a knowledge gap (/gaps)
            await asyncio.to_thread(record_declined, self.bot.gaps, answer.question, "discord")
        question = answer.question if question is None else question
        conversation.turns.append(Turn(question, answer.text))
        parts = render_answer(answer, question_header=reply.question_header)
        try:
            message = await streamed.finish() if streamed is not None else None
            if message is not None:
                assert isinstance(reply, StreamingReply)
                await reply.finish_stream(message, parts, feedback_view(answer_id), conversation)
            else:
                await reply.deliver(question, parts, feedback_view(answer_id), conversation, new=new)
        except Exception as exc:
            await reply.could_not_deliver(exc)
            return
        # Escalation listens (a declined question may go to the moderators).
        self.bot.dispatch("dossier_answered", answer, answer_id, getattr(reply, "last_sent", None))

    def _answer_stream(
        self, reply: Reply, question: str, conversation: Conversation, new: bool
    ) -> AnswerStream | None:
        """An AnswerStream posting where `reply` answers, when a language model writes the
        answers (the extractive answerer has nothing to stream); else None."""
        if self.bot.settings.llm == "extractive" or not isinstance(reply, StreamingReply):
            return None
        return AnswerStream(
            asyncio.get_running_loop(),
            partial(reply.open_stream, question, conversation=conversation, new=new),
            asker_id=asker_id(reply),
            every=self.bot.settings.discord_stream_edit_seconds,
        )

    async def _remember(
        self, answer: Answer, answer_id: str, guild_id: int | None, channel_id: int | None
    ) -> None:
        try:
            await asyncio.to_thread(
                self.bot.feedback.save_answer,
                answer_id,
                question=answer.question,
                answer=answer.text,
                sources=answer.citations,
                guild_id=guild_id,
                channel_id=channel_id,
            )
        except Exception:
            log.exception("Could not store answer %s for feedback", answer_id)

    # -- checks -------------------------------------------------------------------------------------

    def channel_allowed(self, channel: Any) -> bool:
        allowed = self.bot.settings.discord_channel_ids
        if not allowed:
            return True
        channel_id = getattr(channel, "id", None)
        parent_id = getattr(channel, "parent_id", None)  # a thread counts when its channel does
        return channel_id in allowed or (parent_id is not None and parent_id in allowed)

    def rate_limit_text(self, wait: float) -> str:
        limit = self.bot.settings.discord_rate_limit
        per = "question" if limit == 1 else "questions"
        return f"Easy there: {limit} {per} a minute per person. Try again in {math.ceil(wait)} s."

    async def _refuse_to_answer(self, interaction: discord.Interaction) -> bool:
        """Tell the user why not (channel not allowed, rate limit) and return True, or return False."""
        if not self.channel_allowed(interaction.channel):
            await respond(interaction, "I only answer questions in the channels I was set up for.")
            return True
        wait = self.bot.rate_limiter.hit(interaction.user.id)
        if wait:
            await respond(interaction, self.rate_limit_text(wait))
            return True
        return False

    # -- slash commands -----------------------------------------------------------------------------

    @app_commands.command(name="ask", description="Ask a question about the documents.")
    @app_commands.describe(question="Your question")
    async def ask(self, interaction: discord.Interaction, question: str) -> None:
        if await self._refuse_to_answer(interaction):
            return
        question = strip_mentions(question)
        await interaction.response.defer(thinking=True)
        conversation = self.bot.conversations.of_thread(interaction.channel_id)
        history = conversation.history() if conversation else ()
        await self.answer_and_deliver(
            SlashReply(interaction, self.bot.conversations, "answering /ask"),
            scoped_ask(self.bot.engine, self.bot.scopes.of(interaction.channel), question, history),
            conversation,
            question=question,
            stream=True,
        )

    @app_commands.command(name="sources", description="List the indexed documents.")
    async def sources(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        documents = await asyncio.to_thread(self.bot.engine.documents)
        scope = self.bot.scopes.of(interaction.channel)
        if scope is not None:
            documents = await asyncio.to_thread(documents_in_scope, self.bot.engine, documents, scope)
            await interaction.followup.send(
                scope_line(scope, len(documents)), ephemeral=True, allowed_mentions=NO_MENTIONS
            )
        for part in render_documents(documents):
            await interaction.followup.send(
                ephemeral=True, allowed_mentions=NO_MENTIONS, **message_kwargs(part, None)
            )

    @app_commands.command(name="summary", description="The brief of one document, or one line per document.")
    @app_commands.describe(document="A document's file name or title (empty: every document)")
    async def summary(self, interaction: discord.Interaction, document: str | None = None) -> None:
        if await self._refuse_to_answer(interaction):
            return
        await interaction.response.defer(thinking=True)
        await self.answer_and_deliver(
            SlashReply(interaction, self.bot.conversations, "answering /summary"),
            partial(self.bot.engine.summary, (document or "").strip() or None),
            self.bot.conversations.of_thread(interaction.channel_id),
            tell_queued=False,
        )

    @summary.autocomplete("document")
    async def summary_document(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        try:
            documents = await self._documents_cached()
        except Exception:  # an autocomplete has no way to show an error: offer nothing
            log.warning("Could not list documents for /summary autocomplete", exc_info=True)
            return []
        return [
            app_commands.Choice(name=name, value=value)
            for name, value in document_choices(documents, current)
        ]

    async def _documents_cached(self) -> list[DocumentInfo]:
        """The indexed documents, read off the event loop at most every few seconds."""
        read_at, documents = self._documents
        if time.monotonic() - read_at > DOCUMENTS_FRESH_FOR:
            documents = await asyncio.to_thread(self.bot.engine.documents)
            self._documents = (time.monotonic(), documents)
        return documents

    # -- mentions and replies -----------------------------------------------------------------------

    def _addressed(self, message: discord.Message) -> tuple[str, Conversation | None] | None:
        """(question, conversation) when the message is meant for the bot, else None."""
        me = self.bot.user
        assert me is not None
        own_role = message.guild.self_role if message.guild is not None else None
        mentioned = any(user.id == me.id for user in message.mentions) or (
            own_role is not None and own_role in message.role_mentions
        )
        conversation = None
        replied_to_bot = False
        ref = message.reference
        if ref is not None and ref.message_id is not None:
            conversation = self.bot.conversations.of_message(ref.message_id)
            resolved = ref.resolved
            replied_to_bot = conversation is not None or (
                isinstance(resolved, discord.Message) and resolved.author.id == me.id
            )
        if not (mentioned or replied_to_bot):
            return None
        conversation = self.bot.conversations.of_thread(message.channel.id) or conversation
        # The bot's own mention and every other one (@everyone, users, roles, channels) go.
        return strip_mentions(message.content), conversation

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or (self.bot.user is not None and message.author.id == self.bot.user.id):
            return
        if message.guild is None or not self.channel_allowed(message.channel):
            return
        addressed = self._addressed(message)
        if addressed is None:
            return
        question, conversation = addressed
        if not question:
            await safe_reply(
                message, "Ask me something about the documents, e.g. `@Dossier who wrote the report?`"
            )
            return
        wait = self.bot.rate_limiter.hit(message.author.id)
        if wait:
            # Say it once per wait; after that a reaction, so a flood does not become a reply flood.
            now = time.monotonic()
            if self._rate_warned.get(message.author.id, 0.0) > now:
                with contextlib.suppress(discord.HTTPException, OSError):
                    await message.add_reaction(SLOW_DOWN_EMOJI)
                return
            self._rate_warned[message.author.id] = now + wait
            if len(self._rate_warned) > 10_000:
                self._rate_warned = {uid: t for uid, t in self._rate_warned.items() if t > now}
            await safe_reply(message, self.rate_limit_text(wait))
            return
        with contextlib.suppress(discord.HTTPException, OSError):
            await message.add_reaction(ACK_EMOJI)
        history = conversation.history() if conversation else ()
        await self.answer_and_deliver(
            MentionReply(message, self.bot.conversations, self.bot.settings.discord_threads),
            scoped_ask(self.bot.engine, self.bot.scopes.of(message.channel), question, history),
            conversation,
            question=question,
            stream=True,
        )
