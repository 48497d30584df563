"""Solved threads become documents: the moderators' "Add to documents" message command, and
`save_solved_thread` for a forum post marked solved (when DISCORD_SOLVED_TO_DOCUMENTS is on).

The thread is read here, written by bot.thread_documents, and ingested through the admin
cog (one ingest at a time, in a child process for the real bot), like an uploaded file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_admin import AdminCog
from bot.discord_parts import error_text, respond
from bot.discord_render import render_ingest_report
from bot.discord_text import escape
from bot.thread_documents import ThreadMessage, thread_document_path, thread_markdown, write_thread_document

if TYPE_CHECKING:
    from bot.discord_bot import DossierBot

log = logging.getLogger(__name__)

MAX_THREAD_MESSAGES = 500  # a help thread longer than this is a discussion, not a document
COMMAND_NAME = "Add to documents"
# Messages people write (not joins, pins, boosts...).
_WRITTEN = (discord.MessageType.default, discord.MessageType.reply)


@dataclass(frozen=True)
class SavedThread:
    path: Path  # the document written
    url: str  # the thread's link, the document's source in the index
    report: Any  # the ingest's report


async def read_thread(thread: discord.Thread) -> list[ThreadMessage]:
    """The thread's messages written by people, oldest first, with the message it was opened on
    (a thread in a text channel starts from a message in that channel)."""
    messages: list[discord.Message] = []
    parent = thread.parent
    if isinstance(parent, discord.TextChannel):
        with contextlib.suppress(discord.NotFound, discord.Forbidden):
            messages.append(await parent.fetch_message(thread.id))
    async for message in thread.history(limit=MAX_THREAD_MESSAGES, oldest_first=True):
        messages.append(message)
    return [
        ThreadMessage(message.content, message.created_at)
        for message in messages
        if not message.author.bot and message.type in _WRITTEN and message.content.strip()
    ]


async def save_thread_as_document(bot: DossierBot, thread: discord.Thread) -> SavedThread:
    """Write `thread` as `discord/<channel>/<thread>.md` under the documents folder and ingest it.

    Raises ValueError when the thread holds no message written by a person."""
    messages = await read_thread(thread)
    channel = thread.parent.name if thread.parent is not None else "threads"
    markdown = thread_markdown(thread.name, channel, messages)
    url = thread.jump_url
    settings = bot.settings

    def write() -> Path:
        path = thread_document_path(settings.documents_dir, channel, thread.name, url)
        return write_thread_document(settings, path, markdown, url)

    path = await asyncio.to_thread(write)
    admin = bot.get_cog("Admin")
    assert isinstance(admin, AdminCog)
    report = await admin.ingest_files([path])
    log.info("Saved thread %s as %s (%d messages)", thread.id, path, len(messages))
    return SavedThread(path, url, report)


async def save_solved_thread(bot: DossierBot, thread: discord.Thread) -> SavedThread | None:
    """For a forum post just marked solved: save it when DISCORD_SOLVED_TO_DOCUMENTS is on
    (None when off, or when it failed: logged, the post is solved either way)."""
    if not bot.settings.discord_solved_to_documents:
        return None
    try:
        return await save_thread_as_document(bot, thread)
    except Exception:
        log.exception("Could not save the solved thread %s as a document", thread.id)
        return None


def is_moderator(bot: DossierBot, user: discord.abc.User, permissions: discord.Permissions) -> bool:
    if permissions.manage_messages or permissions.manage_threads:
        return True
    admin = bot.get_cog("Admin")
    return isinstance(admin, AdminCog) and admin.is_admin(user, permissions)


class ThreadDocumentsCog(commands.Cog, name="ThreadDocuments"):
    """The "Add to documents" message command (moderators: Manage Messages, servers only)."""

    def __init__(self, bot: DossierBot) -> None:
        self.bot = bot
        # Context menus cannot be declared inside a cog: built here, added to the tree on load.
        self.menu = app_commands.ContextMenu(name=COMMAND_NAME, callback=self.add_to_documents)
        self.menu.default_permissions = discord.Permissions(manage_messages=True)
        self.menu.guild_only = True

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    @commands.Cog.listener()
    async def on_dossier_solved(self, channel: Any, answer_id: str, user: discord.abc.User) -> None:
        """A forum post marked solved by its asker (bot.discord_auto) is saved when the setting is on."""
        if isinstance(channel, discord.Thread) and isinstance(channel.parent, discord.ForumChannel):
            await save_solved_thread(self.bot, channel)

    async def add_to_documents(self, interaction: discord.Interaction, message: discord.Message) -> None:
        if not is_moderator(self.bot, interaction.user, interaction.permissions):
            await respond(
                interaction, "Sorry, only moderators can add a thread to the documents (Manage Messages)."
            )
            return
        thread = interaction.channel
        if not isinstance(thread, discord.Thread):
            await respond(
                interaction,
                "Use this on a message inside a thread or a forum post: the whole thread is saved.",
            )
            return
        await interaction.response.defer(thinking=True, ephemeral=True)
        try:
            saved = await save_thread_as_document(self.bot, thread)
        except ValueError:
            await respond(interaction, "That thread has no message written by a person to save.")
            return
        except Exception as exc:
            await respond(interaction, error_text(exc, "saving a thread as a document"))
            return
        where = saved.path.relative_to(self.bot.settings.documents_dir).as_posix()
        await respond(
            interaction, render_ingest_report(saved.report, title=f"Saved {escape(where)} and ingested it")
        )
