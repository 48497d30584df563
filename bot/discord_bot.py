"""Dossier on Discord: `/ask` and @mentions answered with citations, in threads that remember.

A thin front end over the engine. This module holds the bot's lifecycle (`DossierBot`:
cogs loaded in `setup_hook`, the watcher, the bounded answer slots, the error handler) and
`run_discord`; the features are cogs: `bot.discord_asking` (questions, mentions, threads),
`bot.discord_admin` (ingest, status) and `bot.discord_feedback` (vote buttons). Nothing
blocking runs on the event loop: engine calls go through `asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar

import discord
import discord.gateway
import discord.http
import yarl
from discord import app_commands
from discord.ext import commands

from bot.discord_admin import AdminCog, safe_filename, save_upload
from bot.discord_asking import AskingCog
from bot.discord_auto import AutoCog
from bot.discord_escalation import EscalationCog
from bot.discord_feedback import FeedbackCog
from bot.discord_gaps import GapsCog
from bot.discord_parts import (
    NO_MENTIONS,
    Conversations,
    EngineAPI,
    RateLimiter,
    error_text,
    respond,
)
from bot.discord_scopes import ChannelScopes
from bot.discord_thread_documents import ThreadDocumentsCog
from bot.feedback import FeedbackStore
from bot.gaps import GapStore
from bot.types import Answer, Turn
from dossier_common.errors import DossierError
from dossier_common.settings import Settings

__all__ = ["DossierBot", "RateLimiter", "discord_endpoints", "run_discord", "safe_filename", "save_upload"]

log = logging.getLogger(__name__)

T = TypeVar("T")

QUEUE_NOTICE_AFTER = 1.5  # seconds a question waits for a slot before the asker is told


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
        self.gaps = GapStore.for_settings(settings)  # declined questions, for /gaps
        self.conversations = Conversations()
        self.scopes = ChannelScopes.from_setting(settings.discord_scopes)  # a ConfigError stops the bot
        self.rate_limiter = RateLimiter(settings.discord_rate_limit)
        self._answer_slots = asyncio.Semaphore(settings.discord_max_concurrent)
        self._queued = 0  # questions waiting for a slot
        self.queue_notice_after = QUEUE_NOTICE_AFTER
        # Uploads are ingested in a child process with a memory limit and a deadline, so a
        # runaway file cannot take the bot down (ingest.isolated).
        self.isolated_ingest = isolated_ingest
        self._watcher: Any = None  # ingest.watch.WatcherHandle when DOSSIER_WATCH_PATHS is set

    async def setup_hook(self) -> None:
        for cog in (AskingCog(self), AdminCog(self), FeedbackCog(self), AutoCog(self), EscalationCog(self)):
            await self.add_cog(cog)
        await self.add_cog(GapsCog(self))
        await self.add_cog(ThreadDocumentsCog(self))
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

    async def on_ready(self) -> None:  # after each new session, the first and any later one
        names = ", ".join(f"{g.name} ({g.id})" for g in self.guilds[:10])
        more = f" and {len(self.guilds) - 10} more" if len(self.guilds) > 10 else ""
        log.info(
            "Connected to Discord as %s (id %s) in %d guild(s): %s%s",
            self.user,
            getattr(self.user, "id", "?"),
            len(self.guilds),
            names or "none yet (invite the bot to a server)",
            more,
        )

    async def on_disconnect(self) -> None:
        if not self.is_closed():
            log.info("Lost the connection to Discord; reconnecting")

    async def on_resumed(self) -> None:
        log.info("Reconnected to Discord (session resumed)")

    async def on_message(self, message: discord.Message, /) -> None:
        """No prefix commands: the asking cog's listener answers mentions and replies."""

    async def run_bounded(
        self, work: Callable[..., T], *args: Any, on_queued: Callable[[int], Awaitable[Any]] | None = None
    ) -> T:
        """`work(*args)` in a worker thread, once one of the answer slots is free.

        When no slot has come free after `queue_notice_after` seconds, `on_queued(waiting)`
        tells the user (a failure to tell is logged); a short wait goes unmentioned."""
        if self._answer_slots.locked():
            await self._wait_for_slot(on_queued)
        else:
            await self._answer_slots.acquire()  # free: no wait at all
        try:
            return await asyncio.to_thread(work, *args)
        finally:
            self._answer_slots.release()

    async def _wait_for_slot(self, on_queued: Callable[[int], Awaitable[Any]] | None) -> None:
        self._queued += 1
        slot = asyncio.ensure_future(self._answer_slots.acquire())
        try:
            done, _ = await asyncio.wait({slot}, timeout=self.queue_notice_after)
            if not done and on_queued is not None:
                try:
                    await on_queued(self._queued)
                except discord.HTTPException as exc:
                    log.warning("Could not tell a user they are queued: %s", exc)
            await slot
        except BaseException:
            if slot.done() and not slot.cancelled() and slot.exception() is None:
                self._answer_slots.release()  # got the slot, but the question was given up
            slot.cancel()
            raise
        finally:
            self._queued -= 1

    async def compute_answer(
        self,
        question: str,
        history: Sequence[Turn],
        on_queued: Callable[[int], Awaitable[Any]] | None = None,
    ) -> Answer:
        """Ask the engine in a worker thread, once one of the answer slots is free."""
        return await self.run_bounded(self.engine.ask, question, tuple(history), on_queued=on_queued)

    async def _on_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        original = getattr(error, "original", error)
        text = error_text(original, f"running /{getattr(interaction.command, 'name', '?')}")
        try:
            await respond(interaction, text, ephemeral=not interaction.response.is_done())
        except (discord.HTTPException, OSError) as exc:
            log.warning("Could not report an error to the user: %s", exc)


# -- entry point --------------------------------------------------------------------------------------


@contextlib.contextmanager
def discord_endpoints(settings: Settings) -> Iterator[None]:
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
    with _bot_logs_at_info():
        return _run(settings, token, engine_factory, bot_options)


BOT_LOGGERS = tuple(
    f"bot.{name}"
    for name in (
        "discord_bot",
        "discord_asking",
        "discord_admin",
        "discord_feedback",
        "discord_replies",
        "discord_auto",
        "discord_escalation",
        "discord_gaps",
        "discord_streaming",
        "discord_thread_documents",
    )
)


@contextlib.contextmanager
def _bot_logs_at_info() -> Iterator[None]:
    """The bot's own lines (loaded, connected, reconnected) at INFO, even when the rest of the
    program logs only warnings (`dossier`'s default); as they were afterwards."""
    loggers = [logging.getLogger(name) for name in BOT_LOGGERS]
    saved = [logger.level for logger in loggers]
    for logger in loggers:
        if not logger.isEnabledFor(logging.INFO):
            logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        for logger, level in zip(loggers, saved, strict=True):
            logger.setLevel(level)


def _log_loaded(engine: EngineAPI) -> None:
    try:
        status = engine.status()
    except Exception as exc:  # the bot can still start; questions will say what is wrong
        log.warning("Could not read the index: %s", exc)
        return
    log.info(
        "Loaded the model %s and the index: %d document(s), %d chunk(s); answers by %s",
        status.model,
        status.documents,
        status.chunks,
        status.answerer,
    )
    if status.problem:
        log.warning("The index has a problem: %s", status.problem)


def _run(
    settings: Settings,
    token: str,
    engine_factory: Callable[[Settings], EngineAPI] | None,
    bot_options: dict[str, Any],
) -> int:
    try:
        engine = (engine_factory or _default_engine)(settings)
        warm = getattr(engine, "warm", None)
        if warm is not None:  # before the gateway connects: see Engine.warm
            log.info("Loading the model and the index")
            warm()
        _log_loaded(engine)
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
