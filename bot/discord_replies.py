"""Where an answer goes: the follow-ups of a slash command, or a reply to a mention.

`bot.discord_asking.AskingCog.answer_and_deliver` computes and stores every answer the
same way and hands it to one of these to be posted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

import discord

from bot.discord_parts import (
    NO_MENTIONS,
    REPLY_MENTIONS,
    Conversation,
    Conversations,
    error_text,
    message_kwargs,
    queued_text,
    respond,
)
from bot.discord_render import Part
from bot.discord_text import thread_name

log = logging.getLogger(__name__)

TYPING_EVERY = 8.0  # seconds; Discord shows "typing" for about 10


class Reply(Protocol):
    """Where one answer goes: the follow-ups of a slash command, or the channel of a mention."""

    where: str  # for the log: "answering /ask"
    question_header: bool  # the answer repeats the question (a slash command's input is not shown)
    guild_id: int | None
    channel_id: int | None

    def working(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Entered while the answer is computed (a typing indicator, or nothing)."""
        ...

    async def queued(self, position: int, *, new: bool) -> None:
        """Tell the user their question waits (`position` questions waiting) and where the
        answer will appear (`new`: the question starts a conversation)."""
        ...

    async def say(self, text: str) -> None:
        """One plain message instead of an answer (an error)."""
        ...

    async def deliver(
        self,
        question: str,
        parts: Sequence[Part],
        view: discord.ui.View,
        conversation: Conversation,
        *,
        new: bool,
    ) -> None:
        """Post the parts (`view` under the last); tie each message to `conversation`."""
        ...

    async def could_not_deliver(self, exc: Exception) -> None:
        """Posting failed after the answer was computed."""
        ...


class SlashReply:
    """The follow-ups of a deferred slash command; replies to them continue the conversation."""

    question_header = True

    def __init__(self, interaction: discord.Interaction, conversations: Conversations, where: str) -> None:
        self.interaction = interaction
        self.conversations = conversations
        self.where = where
        self.guild_id: int | None = interaction.guild_id
        self.channel_id: int | None = interaction.channel_id
        self.last_sent: discord.Message | None = None  # the answer's last message, once posted

    def working(self) -> contextlib.AbstractAsyncContextManager[None]:
        return contextlib.nullcontext()  # the deferred response already says "thinking"

    async def queued(self, position: int, *, new: bool) -> None:
        text = queued_text(position) + " I'll post the answer here."
        await self.interaction.followup.send(text, allowed_mentions=NO_MENTIONS)

    async def say(self, text: str) -> None:
        await respond(self.interaction, text, ephemeral=False)

    async def deliver(
        self,
        question: str,
        parts: Sequence[Part],
        view: discord.ui.View,
        conversation: Conversation,
        *,
        new: bool,
    ) -> None:
        self.last_sent = await self._follow_up(parts, view, conversation)

    async def open_stream(
        self, question: str, content: str, view: discord.ui.View, conversation: Conversation, *, new: bool
    ) -> discord.Message:
        """An answer being written replaces the "thinking" message (bot.discord_streaming)."""
        sent = await self.interaction.edit_original_response(
            content=content, view=view, allowed_mentions=NO_MENTIONS
        )
        self.conversations.bind(conversation, messages=[sent.id])
        return sent

    async def finish_stream(
        self,
        message: discord.Message,
        parts: Sequence[Part],
        view: discord.ui.View,
        conversation: Conversation,
    ) -> None:
        await message.edit(**final_edit(parts[0], view if len(parts) == 1 else None))
        if len(parts) > 1:
            await self._follow_up(parts[1:], view, conversation)

    async def _follow_up(
        self, parts: Sequence[Part], view: discord.ui.View, conversation: Conversation
    ) -> discord.Message | None:
        """Post `parts` as follow-ups, the view under the last; returns the last one sent."""
        sent = None
        for index, part in enumerate(parts):
            kwargs = message_kwargs(part, view if index == len(parts) - 1 else None)
            sent = await self.interaction.followup.send(wait=True, allowed_mentions=NO_MENTIONS, **kwargs)
            self.conversations.bind(conversation, messages=[sent.id])
        return sent

    async def could_not_deliver(self, exc: Exception) -> None:
        raise exc  # the command tree's error handler tells the user


class MentionReply:
    """A reply to a message (in a new thread when threads are on); typing shows while it waits."""

    where = "answering a mention"
    question_header = False

    def __init__(self, message: discord.Message, conversations: Conversations, threads: bool) -> None:
        self.message = message
        self.conversations = conversations
        self.threads = threads
        self.guild_id: int | None = message.guild.id if message.guild else None
        self.channel_id: int | None = message.channel.id
        self.last_sent: discord.Message | None = None  # the answer's last message, once posted

    @contextlib.asynccontextmanager
    async def working(self) -> AsyncIterator[None]:
        typing = asyncio.create_task(self._keep_typing())
        try:
            yield
        finally:
            typing.cancel()
            await asyncio.wait([typing])  # so no typing request races the answer

    async def _keep_typing(self) -> None:
        while True:
            try:
                await self.message.channel.typing()
            except (discord.HTTPException, OSError) as exc:
                log.debug("typing indicator failed: %s", exc)
            await asyncio.sleep(TYPING_EVERY)

    async def queued(self, position: int, *, new: bool) -> None:
        where = (
            " I'll answer in a thread on your message." if self._opens_thread(new) else " I'll answer here."
        )
        await self.message.reply(
            queued_text(position) + where, mention_author=False, allowed_mentions=NO_MENTIONS
        )

    async def say(self, text: str) -> None:
        await safe_reply(self.message, text)

    def _opens_thread(self, new: bool) -> bool:
        """Whether the answer to this message goes to a new thread on it."""
        return new and self.threads and isinstance(self.message.channel, discord.TextChannel)

    async def deliver(
        self,
        question: str,
        parts: Sequence[Part],
        view: discord.ui.View,
        conversation: Conversation,
        *,
        new: bool,
    ) -> None:
        channel, reply_to = await self._destination(question, conversation, new)
        await self._send_parts(channel, parts, view, conversation, reply_to=reply_to)

    async def _destination(
        self, question: str, conversation: Conversation, new: bool
    ) -> tuple[discord.abc.Messageable, discord.Message | None]:
        """Where the answer goes (a new thread on the question, or its channel) and the message
        it replies to (None in a new thread)."""
        channel = self.message.channel
        if isinstance(channel, discord.Thread):
            self.conversations.bind(conversation, thread=channel.id)
        elif self._opens_thread(new):
            try:
                thread = await self.message.create_thread(
                    name=thread_name(question), auto_archive_duration=1440
                )
            except (discord.HTTPException, ValueError) as exc:
                log.warning("Could not open a thread (%s); answering in the channel", exc)
            else:
                self.conversations.bind(conversation, thread=thread.id)
                return thread, None
        return channel, self.message

    async def open_stream(
        self, question: str, content: str, view: discord.ui.View, conversation: Conversation, *, new: bool
    ) -> discord.Message:
        """The first message of an answer being written, where `deliver` would post it."""
        channel, reply_to = await self._destination(question, conversation, new)
        kwargs: dict[str, Any] = {"content": content, "view": view, "allowed_mentions": NO_MENTIONS}
        if reply_to is not None:
            kwargs.update(reference=reply_to, mention_author=True, allowed_mentions=REPLY_MENTIONS)
        sent = await channel.send(**kwargs)
        self.conversations.bind(conversation, messages=[sent.id])
        return sent

    async def finish_stream(
        self,
        message: discord.Message,
        parts: Sequence[Part],
        view: discord.ui.View,
        conversation: Conversation,
    ) -> None:
        await message.edit(**final_edit(parts[0], view if len(parts) == 1 else None))
        if len(parts) > 1:
            await self._send_parts(message.channel, parts[1:], view, conversation)

    async def _send_parts(
        self,
        channel: discord.abc.Messageable,
        parts: Sequence[Part],
        view: discord.ui.View,
        conversation: Conversation,
        reply_to: discord.Message | None = None,
    ) -> None:
        """Post an answer's parts (buttons under the last) and tie each message to `conversation`."""
        for index, part in enumerate(parts):
            kwargs = message_kwargs(part, view if index == len(parts) - 1 else None)
            if index == 0 and reply_to is not None:
                kwargs.update(reference=reply_to, mention_author=True, allowed_mentions=REPLY_MENTIONS)
            else:
                kwargs["allowed_mentions"] = NO_MENTIONS
            sent = await channel.send(**kwargs)
            self.conversations.bind(conversation, messages=[sent.id])
            self.last_sent = sent

    async def could_not_deliver(self, exc: Exception) -> None:
        # e.g. Discord unreachable after a reconnect: say so if we still can.
        await self.say("I found an answer but could not post it. " + error_text(exc, "posting an answer"))


def final_edit(part: Part, view: discord.ui.View | None) -> dict[str, Any]:
    """The edit that turns a message being written into a rendered part (the Stop button
    goes: `view` is the vote buttons, or None)."""
    return {
        "content": part.content or None,
        "embeds": part.embeds,
        "view": view,
        "allowed_mentions": NO_MENTIONS,
    }


async def safe_reply(message: discord.Message, text: str) -> discord.Message | None:
    try:
        return await message.reply(text, mention_author=False, allowed_mentions=NO_MENTIONS)
    except (discord.HTTPException, OSError) as exc:
        log.warning("Could not reply in channel %s: %s", message.channel.id, exc)
        return None
