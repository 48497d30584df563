"""Admin commands: `/ingest` an uploaded file, `/reingest` the documents folder, `/status`."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_parts import NO_MENTIONS, message_kwargs, respond
from bot.discord_render import render_ingest_report, render_status
from bot.discord_scopes import scope_line
from bot.discord_text import escape, neutralize_mentions
from dossier_common.errors import DossierError
from ingest.loaders import SUPPORTED_SUFFIXES

if TYPE_CHECKING:
    from bot.discord_bot import DossierBot

log = logging.getLogger(__name__)

# What the loaders read is what can be uploaded (sorted: the refusal lists them).
UPLOAD_SUFFIXES = tuple(sorted(SUPPORTED_SUFFIXES))
INGEST_LOCK_WAIT = 120.0  # seconds /ingest and /reingest wait for another writer


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


class AdminCog(commands.Cog, name="Admin"):
    """Changing the index is for admins: the Manage Server permission or DISCORD_ADMIN_ROLE.

    `/ingest` and `/reingest` are registered for servers only, shown by default to members
    with Manage Server (a server can grant them to a role in its Integrations settings); the
    check at run time stays, since a server may widen who sees them."""

    def __init__(self, bot: DossierBot) -> None:
        self.bot = bot
        self._ingest_lock = asyncio.Lock()

    def is_admin(self, user: discord.abc.User, permissions: discord.Permissions) -> bool:
        if permissions.administrator or permissions.manage_guild:
            return True
        wanted = (self.bot.settings.discord_admin_role or "").strip().lower()
        if not wanted or not isinstance(user, discord.Member):
            return False
        return any(role.name.lower() == wanted or str(role.id) == wanted for role in user.roles)

    async def _refuse_non_admin(self, interaction: discord.Interaction) -> bool:
        if self.is_admin(interaction.user, interaction.permissions):
            return False
        role = self.bot.settings.discord_admin_role
        who = "the Manage Server permission" + (f" or the {neutralize_mentions(role)} role" if role else "")
        await respond(interaction, f"Sorry, only admins can do that ({who}).")
        return True

    async def refuse_non_admin(self, interaction: discord.Interaction) -> bool:
        """For other cogs' admin commands (/gaps): tell a non-admin no, and return True."""
        return await self._refuse_non_admin(interaction)

    async def ingest_files(self, paths: list[Path]) -> Any:
        """For other cogs (a thread saved as a document): one ingest at a time, like /ingest."""
        return await self._ingest(paths)

    async def _ingest(self, paths: list[Path]) -> Any:
        async with self._ingest_lock:  # one ingest at a time from this bot
            # The watcher thread may be mid-batch: wait for it rather than refuse.
            if self.bot.isolated_ingest:
                # A child process with a memory limit and a deadline: a runaway file cannot
                # take the bot down.
                from ingest.isolated import ingest_in_child

                return await asyncio.to_thread(
                    ingest_in_child, paths, self.bot.settings, lock_wait=INGEST_LOCK_WAIT
                )
            return await asyncio.to_thread(self.bot.engine.ingest, paths, lock_wait=INGEST_LOCK_WAIT)

    @app_commands.command(name="status", description="Index size, models and last ingest.")
    async def status(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        status = await asyncio.to_thread(self.bot.engine.status)
        part = render_status(status)
        # What this channel answers from (DISCORD_SCOPES).
        part.embeds[0].add_field(
            name="This channel", value=scope_line(self.bot.scopes.of(interaction.channel)), inline=False
        )
        await interaction.followup.send(
            ephemeral=True, allowed_mentions=NO_MENTIONS, **message_kwargs(part, None)
        )

    @app_commands.command(name="reingest", description="Admin: re-read the documents folder (incremental).")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    async def reingest(self, interaction: discord.Interaction) -> None:
        if await self._refuse_non_admin(interaction):
            return
        await interaction.response.defer(thinking=True)
        folder = self.bot.settings.documents_dir
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        log.info("/reingest of %s by %s", folder, interaction.user.id)
        report = await self._ingest([folder])
        await respond(interaction, render_ingest_report(report, title="Re-ingest finished"), ephemeral=False)

    @app_commands.command(name="ingest", description="Admin: add a document (pdf, txt, md, html, docx).")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @app_commands.describe(file="The document to add")
    async def ingest(self, interaction: discord.Interaction, file: discord.Attachment) -> None:
        if await self._refuse_non_admin(interaction):
            return
        suffix = Path(file.filename).suffix.lower()
        if suffix not in UPLOAD_SUFFIXES:
            kinds = ", ".join(s.lstrip(".") for s in UPLOAD_SUFFIXES)
            await respond(interaction, f"I can't ingest that kind of file. Send one of: {kinds}.")
            return
        max_mb = self.bot.settings.discord_max_upload_mb
        limit = int(max_mb * 1024 * 1024)
        if file.size > limit:
            await respond(
                interaction,
                f"That file is too large ({file.size / 1048576:.1f} MB; the limit is {max_mb:g} MB).",
            )
            return
        await interaction.response.defer(thinking=True)
        try:
            data = await file.read()
        except (discord.HTTPException, OSError) as exc:
            log.warning("Could not download attachment %s: %s", file.filename, exc)
            await respond(
                interaction, "I could not download that file from Discord; please try again.", ephemeral=False
            )
            return
        if len(data) > limit:
            await respond(interaction, "That file is larger than it claimed; not ingested.", ephemeral=False)
            return
        path = await asyncio.to_thread(save_upload, self.bot.settings.documents_dir, file.filename, data)
        log.info("/ingest saved %s (%d bytes) from %s", path, len(data), interaction.user.id)
        report = await self._ingest([path])
        title = f"Saved {escape(path.name)} and ingested it"
        await respond(interaction, render_ingest_report(report, title=title), ephemeral=False)
