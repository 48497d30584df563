"""An answer written by a language model, shown in Discord as it is written.

The model's tokens arrive in a worker thread (`AnswerStream.on_token`); the event loop edits
one message with the text so far, at most once every DISCORD_STREAM_EDIT_SECONDS (Discord
allows about five edits in five seconds per channel, and a reader gains nothing from more).
The first edit posts the message, where the answer would have gone (`StreamingReply`), with
a Stop button. At the end the same message becomes the answer as it is rendered without
streaming: the checked text, the sources, the vote buttons.

Stop ends the generation at the next token (`bot.types.StopAnswer`); the message keeps the
text that came, says it was stopped, and shows no sources (its citations were not checked).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import discord

from bot.discord_parts import Conversation, respond
from bot.discord_render import Part
from bot.discord_text import MAX_CONTENT, escape_answer_text
from bot.types import StopAnswer

log = logging.getLogger(__name__)

WRITING_MARK = " ▍"  # shown at the end of the text while the model writes
STOPPED_NOTE = "-# ⏹ Stopped: the answer above is incomplete and its citations were not checked."
PREVIEW_CHARS = MAX_CONTENT - 100  # room for the marks and the note
STOP_ID = "dossier:stop"


@runtime_checkable
class StreamingReply(Protocol):
    """A Reply (bot.discord_replies) that can hold an answer being written in one message."""

    async def open_stream(
        self, question: str, content: str, view: discord.ui.View, conversation: Conversation, *, new: bool
    ) -> discord.Message:
        """Post the first message of the answer where `deliver` would have posted it."""
        ...

    async def finish_stream(
        self,
        message: discord.Message,
        parts: Sequence[Part],
        view: discord.ui.View,
        conversation: Conversation,
    ) -> None:
        """Make `message` the answer's first part; post the others after it."""
        ...


def preview(text: str) -> str:
    """The text so far as message content: escaped, kept within one message."""
    text = text.strip()
    if len(text) > PREVIEW_CHARS:
        text = text[:PREVIEW_CHARS].rsplit(" ", 1)[0] + " …"
    return escape_answer_text(text) if text else "…"


class StopView(discord.ui.View):
    """The Stop button under an answer being written; for the asker and moderators."""

    def __init__(self, stream: AnswerStream, asker_id: int) -> None:
        super().__init__(timeout=None)
        self.stream = stream
        self.asker_id = asker_id

    @discord.ui.button(label="Stop", emoji="⏹", style=discord.ButtonStyle.secondary, custom_id=STOP_ID)
    async def stop_button(
        self, interaction: discord.Interaction, button: discord.ui.Button[StopView]
    ) -> None:
        if interaction.user.id != self.asker_id and not interaction.permissions.manage_messages:
            await respond(interaction, "Only the person who asked can stop this answer.")
            return
        await interaction.response.defer()  # the edit that follows is the visible reply
        await self.stream.stop()


class AnswerStream:
    """Tokens in (any thread), throttled edits of one message out (the event loop)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        open_message: Callable[[str, discord.ui.View], Awaitable[discord.Message]],
        *,
        asker_id: int,
        every: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.loop = loop
        self.open_message = open_message
        self.every = every
        self.clock = clock
        self.view = StopView(self, asker_id)
        self.message: discord.Message | None = None
        self.stopped = False
        self._pieces: list[str] = []
        self._lock = threading.Lock()
        self._stop_requested = threading.Event()
        self._wake = asyncio.Event()
        self._closed = False
        self._shown = ""
        self._last_edit = -float("inf")
        self._edit_lock = asyncio.Lock()  # one edit in flight; stop and finish wait for it
        self._task = loop.create_task(self._edits(), name="answer-stream")

    @property
    def text(self) -> str:
        with self._lock:
            return "".join(self._pieces)

    def on_token(self, piece: str) -> None:
        """The answerer's TokenCallback (worker thread)."""
        if self._stop_requested.is_set():
            raise StopAnswer("stopped from Discord")
        with self._lock:
            self._pieces.append(piece)
        self.loop.call_soon_threadsafe(self._wake.set)

    async def _edits(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            wait = self._last_edit + self.every - self.clock()
            if wait > 0:
                await asyncio.sleep(wait)
            if self._closed:
                return
            text = self.text
            if text != self._shown:
                await self._show(preview(text) + WRITING_MARK, self.view)
                self._shown = text

    async def _show(self, content: str, view: discord.ui.View | None) -> None:
        async with self._edit_lock:
            if self._closed and view is self.view:
                return
            try:
                if self.message is None:
                    assert view is not None
                    self.message = await self.open_message(content, view)
                else:
                    await self.message.edit(content=content, embeds=[], view=view)
            except (discord.HTTPException, OSError) as exc:
                log.warning("Could not show the answer being written: %s", exc)
            self._last_edit = self.clock()

    async def stop(self) -> None:
        """The Stop button: end generation, keep the text so far, say it was stopped."""
        if self.stopped or self._closed:
            return
        self.stopped = True
        self._stop_requested.set()
        await self._close_edits()
        await self._show(preview(self.text) + "\n\n" + STOPPED_NOTE, None)
        self.view.stop()

    async def finish(self) -> discord.Message | None:
        """End the edits; the message to turn into the answer (None: nothing was posted), after
        waiting, if need be, so that the last edit too keeps the pace."""
        await self._close_edits()
        self.view.stop()
        wait = self._last_edit + self.every - self.clock()
        if self.message is not None and wait > 0:
            await asyncio.sleep(wait)
        return self.message

    async def abandon(self) -> None:
        """The answer failed: the text so far stays, without the writing mark or the button."""
        await self._close_edits()
        self.view.stop()
        if self.message is not None:
            await self._show(preview(self.text), None)

    async def _close_edits(self) -> None:
        self._closed = True
        self._wake.set()
        if not self._edit_lock.locked():
            self._task.cancel()  # waiting for tokens or for its turn: no need to wait that out
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        async with self._edit_lock:  # an edit in flight lands before what follows
            pass


def asker_id(reply: Any) -> int:
    """Who asked: the user of a slash command, or the author of a mention."""
    interaction = getattr(reply, "interaction", None)
    if interaction is not None:
        return int(interaction.user.id)
    return int(reply.message.author.id)
