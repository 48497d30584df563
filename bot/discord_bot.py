"""Dossier on Discord: `/ask` and @mentions answered with citations, in threads that remember.

A thin front end over the engine: it parses what users do, calls the engine through
`asyncio.to_thread` (nothing blocking runs on the event loop; a semaphore bounds the
answers computed at once), and posts what `bot.discord_render` makes of the result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import secrets
import signal
import sys
import time
import unicodedata
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import discord
import discord.gateway
import discord.http
import yarl
from discord import app_commands
from discord.ext import commands

from bot.discord_render import (
    Part,
    document_choices,
    escape,
    neutralize_mentions,
    render_answer,
    render_documents,
    render_ingest_report,
    render_status,
    thread_name,
)
from bot.feedback import FeedbackStore
from bot.types import Answer, DocumentInfo, IndexStatus, Turn
from ingest.errors import DossierError
from ingest.settings import Settings

log = logging.getLogger(__name__)

UPLOAD_SUFFIXES = (".pdf", ".txt", ".md", ".html", ".htm", ".docx")
MAX_TURNS = 6  # earlier exchanges a conversation remembers
MAX_TRACKED = 5000  # thread and message ids mapped to conversations (oldest forgotten first)
ACK_EMOJI = "👀"
SLOW_DOWN_EMOJI = "⏳"
INGEST_LOCK_WAIT = 120.0  # seconds /ingest and /reingest wait for another writer
TYPING_EVERY = 8.0  # seconds; Discord shows "typing" for about 10
DOCUMENTS_FRESH_FOR = 5.0  # seconds autocomplete reuses the document list (not one read per keystroke)
REPLY_MENTIONS = discord.AllowedMentions(everyone=False, users=False, roles=False, replied_user=True)
NO_MENTIONS = discord.AllowedMentions.none()


class EngineAPI(Protocol):
    """What the bot needs of `bot.engine.Engine` (tests pass fakes with the same methods)."""

    def ask(self, question: str, history: Sequence[Turn] = (), *, k: int | None = None) -> Answer: ...

    def summary(self, document: str | None = None) -> Answer: ...

    def status(self) -> IndexStatus: ...

    def documents(self) -> list[DocumentInfo]: ...

    def ingest(self, paths: Sequence[Path], *, full: bool = False, lock_wait: float = 0) -> Any: ...


# -- small parts ----------------------------------------------------------------------------------


class RateLimiter:
    """At most `per_window` hits per user in any `window` seconds."""

    def __init__(
        self, per_window: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_window = per_window
        self.window = window
        self.clock = clock
        self._hits: dict[int, deque[float]] = {}

    def hit(self, user_id: int) -> float:
        """Count a hit and return 0, or return the seconds to wait (the hit is not counted)."""
        now = self.clock()
        hits = self._hits.setdefault(user_id, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.per_window:
            return hits[0] + self.window - now
        hits.append(now)
        if len(self._hits) > 10_000:  # forget users who have gone quiet
            self._hits = {uid: h for uid, h in self._hits.items() if h and h[-1] > now - self.window}
        return 0.0


@dataclass
class Conversation:
    """The earlier exchanges of one thread, or of a chain of replies to the bot's answers."""

    turns: deque[Turn] = field(default_factory=lambda: deque(maxlen=MAX_TURNS))

    def history(self) -> tuple[Turn, ...]:
        return tuple(self.turns)


class Conversations:
    """Threads and the bot's answer messages -> their conversation, in memory, bounded (LRU).

    Threads and messages are kept apart: a thread opened on a question has the question's id.
    """

    def __init__(self, max_keys: int = MAX_TRACKED) -> None:
        self.max_keys = max_keys
        self._by_key: OrderedDict[tuple[str, int], Conversation] = OrderedDict()

    def _get(self, key: tuple[str, int]) -> Conversation | None:
        conversation = self._by_key.get(key)
        if conversation is not None:
            self._by_key.move_to_end(key)
        return conversation

    def of_thread(self, thread_id: int | None) -> Conversation | None:
        return None if thread_id is None else self._get(("thread", thread_id))

    def of_message(self, message_id: int | None) -> Conversation | None:
        return None if message_id is None else self._get(("message", message_id))

    def bind(
        self, conversation: Conversation, *, messages: Sequence[int] = (), thread: int | None = None
    ) -> None:
        keys = [("message", m) for m in messages] + ([("thread", thread)] if thread is not None else [])
        for key in keys:
            self._by_key[key] = conversation
            self._by_key.move_to_end(key)
        while len(self._by_key) > self.max_keys:
            self._by_key.popitem(last=False)


def safe_filename(name: str) -> str:
    """A plain file name for an upload: no directories, no hidden files, tame characters.

    Letters and digits of every script are kept (`报告.pdf` stays `报告.pdf`); anything else,
    control characters included, becomes `_`. The suffix is split off first, so `..md` keeps
    its type (`upload.md`)."""
    name = unicodedata.normalize("NFKC", name).replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    suffix = re.sub(r"[^A-Za-z0-9]+", "", suffix)
    stem = re.sub(r"[^\w.\- ]+", "_", stem)
    stem = re.sub(r"[ _]{2,}", "_", stem).strip(" ._-")[:120] or "upload"
    return f"{stem}.{suffix.lower()}" if suffix else stem


def save_upload(folder: Path, filename: str, data: bytes) -> Path:
    """Write `data` as `folder/safe_filename(filename)` atomically; returns the path.

    Another document already saved under that name is never replaced: the upload gets
    `name (2).ext` (the same bytes uploaded again land on the same file, a no-op)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / safe_filename(filename)
    n = 2
    while target.exists() and (not target.is_file() or target.read_bytes() != data):
        target = folder / f"{Path(safe_filename(filename)).stem} ({n}){target.suffix}"
        n += 1
    if target.resolve().parent != folder.resolve():
        raise DossierError(f"Refusing to save {filename!r} outside the documents folder.")
    partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    try:
        partial.write_bytes(data)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def new_reference() -> str:
    return secrets.token_hex(4)


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
        if isinstance(client, DossierBot):
            await client.record_vote(interaction, self.answer_id, self.vote)


def feedback_view(answer_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(FeedbackButton(answer_id, 1))
    view.add_item(FeedbackButton(answer_id, -1))
    return view


# -- the bot ----------------------------------------------------------------------------------------


class DossierBot(commands.Bot):
    """The Discord front end. Give it settings and anything with the engine's methods."""

    def __init__(
        self,
        settings: Settings,
        engine: EngineAPI,
        *,
        feedback: FeedbackStore | None = None,
        isolated_ingest: bool = False,
        **options: Any,
    ) -> None:
        intents = discord.Intents.default()
        intents.message_content = True  # to read the question in "@Dossier question"
        options.setdefault("allowed_mentions", NO_MENTIONS)
        super().__init__(
            command_prefix=commands.when_mentioned, intents=intents, help_command=None, **options
        )
        self.settings = settings
        self.engine = engine
        self.feedback = feedback or FeedbackStore.for_settings(settings)
        self.conversations = Conversations()
        self.rate_limiter = RateLimiter(settings.discord_rate_limit)
        self._answer_slots = asyncio.Semaphore(settings.discord_max_concurrent)
        self._queued = 0
        self._rate_warned: dict[int, float] = {}  # user id -> until when they have been told
        self._ingest_lock = asyncio.Lock()
        # Uploads are ingested in a child process with a memory limit and a deadline, so a
        # runaway file cannot take the bot down (ingest.isolated).
        self.isolated_ingest = isolated_ingest
        self._watcher: Any = None  # ingest.watch.WatcherHandle when DOSSIER_WATCH_PATHS is set
        self._documents: tuple[float, list[DocumentInfo]] = (-math.inf, [])

    async def setup_hook(self) -> None:
        await self.add_cog(DossierCommands(self))
        self.add_dynamic_items(FeedbackButton)
        self.tree.error(self._on_app_command_error)
        if self.settings.watch_paths:
            await self._start_watcher()  # a ConfigError (no such folder) stops the bot with its message
        try:
            if self.settings.discord_guild_ids:
                for guild_id in self.settings.discord_guild_ids:
                    guild = discord.Object(guild_id)
                    self.tree.copy_global_to(guild=guild)
                    await self.tree.sync(guild=guild)
            else:
                await self.tree.sync()
        except discord.HTTPException as exc:
            # Mentions still work; slash commands need the applications.commands scope.
            log.error(
                "Could not register slash commands (%s). Was the bot invited with applications.commands?", exc
            )

    async def close(self) -> None:
        if self._watcher is not None:
            # Stops after the commit in progress (the pipeline commits whole files).
            await asyncio.to_thread(self._watcher.stop)
            self._watcher = None
        await super().close()

    async def _start_watcher(self) -> None:
        """Keep the index in step with DOSSIER_WATCH_PATHS, in a background thread."""
        from ingest.watch import start_background_watcher

        embedder = getattr(self.engine, "embedder", None)
        if embedder is None:
            log.warning("Not watching %s: this engine has no embedder", self.settings.watch_paths)
            return
        self._watcher = await asyncio.to_thread(
            start_background_watcher, list(self.settings.watch_paths), self.settings, embedder
        )
        log.info("Watching %s for new documents", ", ".join(map(str, self.settings.watch_paths)))

    async def on_ready(self) -> None:
        log.info(
            "Connected to Discord as %s (id %s) in %d guild(s)",
            self.user,
            getattr(self.user, "id", "?"),
            len(self.guilds),
        )

    # -- checks ------------------------------------------------------------------------------------

    def channel_allowed(self, channel: Any) -> bool:
        allowed = self.settings.discord_channel_ids
        if not allowed:
            return True
        channel_id = getattr(channel, "id", None)
        parent_id = getattr(channel, "parent_id", None)  # a thread counts when its channel does
        return channel_id in allowed or (parent_id is not None and parent_id in allowed)

    def is_admin(self, user: discord.abc.User, permissions: discord.Permissions) -> bool:
        if permissions.administrator or permissions.manage_guild:
            return True
        wanted = (self.settings.discord_admin_role or "").strip().lower()
        if not wanted or not isinstance(user, discord.Member):
            return False
        return any(role.name.lower() == wanted or str(role.id) == wanted for role in user.roles)

    def error_text(self, exc: BaseException, where: str) -> str:
        """What a user is told: a DossierError's own message, otherwise one line with a reference."""
        if isinstance(exc, DossierError):
            return neutralize_mentions(str(exc))[:1900]
        ref = new_reference()
        log.error("Error while %s [ref %s]", where, ref, exc_info=exc)
        return f"Sorry, something went wrong on my side (reference `{ref}`)."

    # -- answering ----------------------------------------------------------------------------------

    async def compute_answer(
        self,
        question: str,
        history: Sequence[Turn],
        on_queued: Callable[[int], Awaitable[Any]] | None = None,
    ) -> Answer:
        """Ask the engine in a worker thread, once one of the answer slots is free."""
        queued = self._answer_slots.locked()
        if queued:
            self._queued += 1
            if on_queued is not None:
                try:
                    await on_queued(self._queued)
                except discord.HTTPException as exc:
                    log.warning("Could not tell a user they are queued: %s", exc)
        try:
            await self._answer_slots.acquire()
        finally:
            if queued:
                self._queued -= 1
        try:
            return await asyncio.to_thread(self.engine.ask, question, tuple(history))
        finally:
            self._answer_slots.release()

    async def _remember(
        self, answer: Answer, answer_id: str, guild_id: int | None, channel_id: int | None
    ) -> None:
        try:
            await asyncio.to_thread(
                self.feedback.save_answer,
                answer_id,
                question=answer.question,
                answer=answer.text,
                sources=answer.citations,
                guild_id=guild_id,
                channel_id=channel_id,
            )
        except Exception:
            log.exception("Could not store answer %s for feedback", answer_id)

    @staticmethod
    def _message_kwargs(part: Part, view: discord.ui.View | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"embeds": part.embeds}
        if part.content:
            kwargs["content"] = part.content
        if view is not None:
            kwargs["view"] = view
        return kwargs

    async def send_parts(
        self,
        channel: discord.abc.Messageable,
        parts: Sequence[Part],
        view: discord.ui.View | None,
        conversation: Conversation,
        reply_to: discord.Message | None = None,
    ) -> None:
        """Post an answer's parts (buttons under the last) and tie each message to `conversation`."""
        for index, part in enumerate(parts):
            kwargs = self._message_kwargs(part, view if index == len(parts) - 1 else None)
            if index == 0 and reply_to is not None:
                kwargs.update(reference=reply_to, mention_author=True, allowed_mentions=REPLY_MENTIONS)
            else:
                kwargs["allowed_mentions"] = NO_MENTIONS
            sent = await channel.send(**kwargs)
            self.conversations.bind(conversation, messages=[sent.id])

    async def _keep_typing(self, channel: discord.abc.Messageable) -> None:
        while True:
            try:
                await channel.typing()
            except (discord.HTTPException, OSError) as exc:
                log.debug("typing indicator failed: %s", exc)
            await asyncio.sleep(TYPING_EVERY)

    def _addressed(self, message: discord.Message) -> tuple[str, Conversation | None] | None:
        """(question, conversation) when the message is meant for the bot, else None."""
        assert self.user is not None
        own_role = message.guild.self_role if message.guild is not None else None
        mentioned = any(user.id == self.user.id for user in message.mentions) or (
            own_role is not None and own_role in message.role_mentions
        )
        conversation = None
        replied_to_bot = False
        ref = message.reference
        if ref is not None and ref.message_id is not None:
            conversation = self.conversations.of_message(ref.message_id)
            resolved = ref.resolved
            replied_to_bot = conversation is not None or (
                isinstance(resolved, discord.Message) and resolved.author.id == self.user.id
            )
        if not (mentioned or replied_to_bot):
            return None
        conversation = self.conversations.of_thread(message.channel.id) or conversation
        question = re.sub(rf"<@!?{self.user.id}>", " ", message.content)
        if own_role is not None:
            question = question.replace(f"<@&{own_role.id}>", " ")
        return " ".join(question.split()), conversation

    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or (self.user is not None and message.author.id == self.user.id):
            return
        if message.guild is None or not self.channel_allowed(message.channel):
            return
        addressed = self._addressed(message)
        if addressed is None:
            return
        question, conversation = addressed
        if not question:
            await self._safe_reply(
                message, "Ask me something about the documents, e.g. `@Dossier who wrote the report?`"
            )
            return
        wait = self.rate_limiter.hit(message.author.id)
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
            await self._safe_reply(message, self.rate_limit_text(wait))
            return
        await self.answer_message(message, question, conversation)

    def rate_limit_text(self, wait: float) -> str:
        limit = self.settings.discord_rate_limit
        per = "question" if limit == 1 else "questions"
        return f"Easy there: {limit} {per} a minute per person. Try again in {math.ceil(wait)} s."

    async def _safe_reply(self, message: discord.Message, text: str) -> discord.Message | None:
        try:
            return await message.reply(text, mention_author=False, allowed_mentions=NO_MENTIONS)
        except (discord.HTTPException, OSError) as exc:
            log.warning("Could not reply in channel %s: %s", message.channel.id, exc)
            return None

    async def answer_message(
        self, message: discord.Message, question: str, conversation: Conversation | None
    ) -> None:
        with contextlib.suppress(discord.HTTPException, OSError):
            await message.add_reaction(ACK_EMOJI)
        typing = asyncio.create_task(self._keep_typing(message.channel))

        async def on_queued(position: int) -> None:
            ahead = "1 question" if position == 1 else f"{position} questions"
            await message.reply(
                f"⏳ I'm busy with other questions; yours is queued ({ahead} waiting). I'll answer here.",
                mention_author=False,
                allowed_mentions=NO_MENTIONS,
            )

        try:
            answer = await self.compute_answer(
                question, conversation.history() if conversation else (), on_queued
            )
        except Exception as exc:
            await self._safe_reply(message, self.error_text(exc, "answering a mention"))
            return
        finally:
            typing.cancel()
            await asyncio.wait([typing])  # so no typing request races the answer

        answer_id = secrets.token_hex(6)
        # Stored before it is shown, so that a vote can never arrive first.
        await self._remember(
            answer, answer_id, message.guild.id if message.guild else None, message.channel.id
        )
        new = conversation is None
        conversation = conversation or Conversation()
        conversation.turns.append(Turn(question, answer.text))
        parts = render_answer(answer)
        try:
            await self._deliver_to_channel(message, question, parts, answer_id, conversation, new=new)
        except Exception as exc:
            # e.g. Discord unreachable after a reconnect: say so if we still can.
            await self._safe_reply(
                message,
                "I found an answer but could not post it. " + self.error_text(exc, "posting an answer"),
            )

    async def _deliver_to_channel(
        self,
        message: discord.Message,
        question: str,
        parts: list[Part],
        answer_id: str,
        conversation: Conversation,
        *,
        new: bool,
    ) -> None:
        view = feedback_view(answer_id)
        channel = message.channel
        if isinstance(channel, discord.Thread):
            self.conversations.bind(conversation, thread=channel.id)
        elif new and self.settings.discord_threads and isinstance(channel, discord.TextChannel):
            try:
                thread = await message.create_thread(name=thread_name(question), auto_archive_duration=1440)
            except (discord.HTTPException, ValueError) as exc:
                log.warning("Could not open a thread (%s); answering in the channel", exc)
            else:
                self.conversations.bind(conversation, thread=thread.id)
                await self.send_parts(thread, parts, view, conversation)
                return
        await self.send_parts(channel, parts, view, conversation, reply_to=message)

    # -- slash commands -----------------------------------------------------------------------------

    async def respond(self, interaction: discord.Interaction, text: str, *, ephemeral: bool = True) -> None:
        """One message in answer to an interaction, whether or not it was acknowledged yet."""
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS)
        else:
            await interaction.response.send_message(text, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS)

    async def _refuse_to_answer(self, interaction: discord.Interaction) -> bool:
        """Tell the user why not (channel not allowed, rate limit) and return True, or return False."""
        if not self.channel_allowed(interaction.channel):
            await self.respond(interaction, "I only answer questions in the channels I was set up for.")
            return True
        wait = self.rate_limiter.hit(interaction.user.id)
        if wait:
            await self.respond(interaction, self.rate_limit_text(wait))
            return True
        return False

    async def handle_ask(self, interaction: discord.Interaction, question: str) -> None:
        if await self._refuse_to_answer(interaction):
            return
        await interaction.response.defer(thinking=True)
        conversation = self.conversations.of_thread(interaction.channel_id)

        async def on_queued(position: int) -> None:
            ahead = "1 question" if position == 1 else f"{position} questions"
            await interaction.followup.send(
                f"⏳ I'm busy with other questions; yours is queued ({ahead} waiting).",
                allowed_mentions=NO_MENTIONS,
            )

        try:
            answer = await self.compute_answer(
                question, conversation.history() if conversation else (), on_queued
            )
        except Exception as exc:
            await self.respond(interaction, self.error_text(exc, "answering /ask"), ephemeral=False)
            return
        await self._follow_up_answer(interaction, question, answer, conversation)

    async def _follow_up_answer(
        self,
        interaction: discord.Interaction,
        question: str,
        answer: Answer,
        conversation: Conversation | None,
    ) -> None:
        """Post an answer to a deferred slash command; replies to it continue the conversation."""
        answer_id = secrets.token_hex(6)
        await self._remember(answer, answer_id, interaction.guild_id, interaction.channel_id)
        conversation = conversation or Conversation()
        conversation.turns.append(Turn(question, answer.text))
        parts = render_answer(answer, question_header=True)
        view = feedback_view(answer_id)
        for index, part in enumerate(parts):
            kwargs = self._message_kwargs(part, view if index == len(parts) - 1 else None)
            sent = await interaction.followup.send(wait=True, allowed_mentions=NO_MENTIONS, **kwargs)
            self.conversations.bind(conversation, messages=[sent.id])

    async def handle_summary(self, interaction: discord.Interaction, document: str | None) -> None:
        if await self._refuse_to_answer(interaction):
            return
        await interaction.response.defer(thinking=True)
        try:
            async with self._answer_slots:
                answer = await asyncio.to_thread(self.engine.summary, (document or "").strip() or None)
        except Exception as exc:
            await self.respond(interaction, self.error_text(exc, "answering /summary"), ephemeral=False)
            return
        conversation = self.conversations.of_thread(interaction.channel_id)
        await self._follow_up_answer(interaction, answer.question, answer, conversation)

    async def documents_cached(self) -> list[DocumentInfo]:
        """The indexed documents, read off the event loop at most every few seconds."""
        read_at, documents = self._documents
        if time.monotonic() - read_at > DOCUMENTS_FRESH_FOR:
            documents = await asyncio.to_thread(self.engine.documents)
            self._documents = (time.monotonic(), documents)
        return documents

    async def summary_choices(self, current: str) -> list[app_commands.Choice[str]]:
        try:
            documents = await self.documents_cached()
        except Exception:  # an autocomplete has no way to show an error: offer nothing
            log.warning("Could not list documents for /summary autocomplete", exc_info=True)
            return []
        return [
            app_commands.Choice(name=name, value=value)
            for name, value in document_choices(documents, current)
        ]

    async def handle_sources(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        documents = await asyncio.to_thread(self.engine.documents)
        for part in render_documents(documents):
            await interaction.followup.send(
                ephemeral=True, allowed_mentions=NO_MENTIONS, **self._message_kwargs(part, None)
            )

    async def handle_status(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        status = await asyncio.to_thread(self.engine.status)
        part = render_status(status)
        await interaction.followup.send(
            ephemeral=True, allowed_mentions=NO_MENTIONS, **self._message_kwargs(part, None)
        )

    async def _refuse_non_admin(self, interaction: discord.Interaction) -> bool:
        if self.is_admin(interaction.user, interaction.permissions):
            return False
        role = self.settings.discord_admin_role
        who = "the Manage Server permission" + (f" or the {neutralize_mentions(role)} role" if role else "")
        await self.respond(interaction, f"Sorry, only admins can do that ({who}).")
        return True

    async def _ingest(self, paths: list[Path]) -> Any:
        async with self._ingest_lock:  # one ingest at a time from this bot
            # The watcher thread may be mid-batch: wait for it rather than refuse.
            if self.isolated_ingest:
                from ingest.isolated import ingest_in_child

                return await asyncio.to_thread(
                    ingest_in_child, paths, self.settings, lock_wait=INGEST_LOCK_WAIT
                )
            return await asyncio.to_thread(self.engine.ingest, paths, lock_wait=INGEST_LOCK_WAIT)

    async def handle_reingest(self, interaction: discord.Interaction) -> None:
        if await self._refuse_non_admin(interaction):
            return
        await interaction.response.defer(thinking=True)
        folder = self.settings.documents_dir
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        log.info("/reingest of %s by %s", folder, interaction.user.id)
        report = await self._ingest([folder])
        await self.respond(
            interaction, render_ingest_report(report, title="Re-ingest finished"), ephemeral=False
        )

    async def handle_ingest(self, interaction: discord.Interaction, file: discord.Attachment) -> None:
        if await self._refuse_non_admin(interaction):
            return
        suffix = Path(file.filename).suffix.lower()
        if suffix not in UPLOAD_SUFFIXES:
            kinds = ", ".join(s.lstrip(".") for s in UPLOAD_SUFFIXES)
            await self.respond(interaction, f"I can't ingest that kind of file. Send one of: {kinds}.")
            return
        limit = int(self.settings.discord_max_upload_mb * 1024 * 1024)
        if file.size > limit:
            await self.respond(
                interaction,
                f"That file is too large ({file.size / 1048576:.1f} MB; the limit is {self.settings.discord_max_upload_mb:g} MB).",
            )
            return
        await interaction.response.defer(thinking=True)
        try:
            data = await file.read()
        except (discord.HTTPException, OSError) as exc:
            log.warning("Could not download attachment %s: %s", file.filename, exc)
            await self.respond(
                interaction, "I could not download that file from Discord; please try again.", ephemeral=False
            )
            return
        if len(data) > limit:
            await self.respond(
                interaction, "That file is larger than it claimed; not ingested.", ephemeral=False
            )
            return
        path = await asyncio.to_thread(save_upload, self.settings.documents_dir, file.filename, data)
        log.info("/ingest saved %s (%d bytes) from %s", path, len(data), interaction.user.id)
        report = await self._ingest([path])
        title = f"Saved {escape(path.name)} and ingested it"
        await self.respond(interaction, render_ingest_report(report, title=title), ephemeral=False)

    async def record_vote(self, interaction: discord.Interaction, answer_id: str, vote: int) -> None:
        try:
            await asyncio.to_thread(
                self.feedback.record,
                answer_id,
                vote,
                interaction.user.id,
                guild_id=interaction.guild_id,
                channel_id=interaction.channel_id,
            )
        except Exception as exc:
            await self.respond(interaction, self.error_text(exc, "recording feedback"))
            return
        await self.respond(
            interaction,
            "Thanks for the feedback!" if vote > 0 else "Thanks: noted that this answer was not helpful.",
        )

    async def _on_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        original = getattr(error, "original", error)
        text = self.error_text(original, f"running /{getattr(interaction.command, 'name', '?')}")
        try:
            await self.respond(interaction, text, ephemeral=not interaction.response.is_done())
        except (discord.HTTPException, OSError) as exc:
            log.warning("Could not report an error to the user: %s", exc)


class DossierCommands(commands.Cog):
    """The slash commands. Each handler only hands over to the bot."""

    def __init__(self, bot: DossierBot) -> None:
        self.bot = bot

    @app_commands.command(name="ask", description="Ask a question about the documents.")
    @app_commands.describe(question="Your question")
    async def ask(self, interaction: discord.Interaction, question: str) -> None:
        await self.bot.handle_ask(interaction, question)

    @app_commands.command(name="sources", description="List the indexed documents.")
    async def sources(self, interaction: discord.Interaction) -> None:
        await self.bot.handle_sources(interaction)

    @app_commands.command(name="summary", description="The brief of one document, or one line per document.")
    @app_commands.describe(document="A document's file name or title (empty: every document)")
    async def summary(self, interaction: discord.Interaction, document: str | None = None) -> None:
        await self.bot.handle_summary(interaction, document)

    @summary.autocomplete("document")
    async def summary_document(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self.bot.summary_choices(current)

    @app_commands.command(name="status", description="Index size, models and last ingest.")
    async def status(self, interaction: discord.Interaction) -> None:
        await self.bot.handle_status(interaction)

    @app_commands.command(name="reingest", description="Admin: re-read the documents folder (incremental).")
    async def reingest(self, interaction: discord.Interaction) -> None:
        await self.bot.handle_reingest(interaction)

    @app_commands.command(name="ingest", description="Admin: add a document (pdf, txt, md, html, docx).")
    @app_commands.describe(file="The document to add")
    async def ingest(self, interaction: discord.Interaction, file: discord.Attachment) -> None:
        await self.bot.handle_ingest(interaction, file)


# -- entry point --------------------------------------------------------------------------------------


@contextlib.contextmanager
def discord_endpoints(settings: Settings):
    """Point discord.py at DISCORD_API_BASE_URL / DISCORD_GATEWAY_URL for the duration."""
    saved = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    try:
        if settings.discord_api_base_url:
            discord.http.Route.BASE = settings.discord_api_base_url.rstrip("/")
        if settings.discord_gateway_url:
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)
        yield
    finally:
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved


def _default_engine(settings: Settings) -> EngineAPI:
    from bot.engine import Engine

    return Engine(settings)


def run_discord(
    settings: Settings, engine_factory: Callable[[Settings], EngineAPI] | None = None, **bot_options: Any
) -> int:
    """`dossier discord`: run the bot until interrupted; returns the process exit code."""
    if settings.discord_token is None or not settings.discord_token.get_secret_value().strip():
        print(
            "DISCORD_TOKEN is not set. Create a bot at https://discord.com/developers/applications, "
            "copy its token into DISCORD_TOKEN (environment or .env), and try again.",
            file=sys.stderr,
        )
        return 2
    token = settings.discord_token.get_secret_value().strip()
    if not logging.getLogger().handlers:
        discord.utils.setup_logging(level=logging.INFO)
    try:
        engine = (engine_factory or _default_engine)(settings)
        warm = getattr(engine, "warm", None)
        if warm is not None:  # before the gateway connects: see Engine.warm
            log.info("Loading the model and the index")
            warm()
    except DossierError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return exc.exit_code

    # The real engine's ingests run in a bounded child process; injected engines (tests) are
    # called directly.
    bot_options.setdefault("isolated_ingest", engine_factory is None)

    async def main() -> None:
        async with DossierBot(settings, engine, **bot_options) as bot:
            # A container stop (SIGTERM) closes the connection cleanly, like Ctrl-C.
            with contextlib.suppress(NotImplementedError, RuntimeError):
                asyncio.get_running_loop().add_signal_handler(
                    signal.SIGTERM, lambda: asyncio.ensure_future(bot.close())
                )
            await bot.start(token)

    with discord_endpoints(settings):
        try:
            asyncio.run(main())
        except discord.LoginFailure:
            print(
                "Discord rejected DISCORD_TOKEN: check that it is the bot token of your application.",
                file=sys.stderr,
            )
            return 2
        except discord.PrivilegedIntentsRequired:
            print(
                "Discord refused the Message Content intent: enable it for the bot in the Developer Portal "
                "(Bot > Privileged Gateway Intents).",
                file=sys.stderr,
            )
            return 2
        except DossierError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:
            return 0
        except (OSError, discord.GatewayNotFound, discord.ConnectionClosed) as exc:
            print(f"Could not stay connected to Discord: {exc}", file=sys.stderr)
            return 1
    return 0
