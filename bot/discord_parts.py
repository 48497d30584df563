"""Small pieces the Discord bot and its cogs share: what the bot needs of the engine, the
per-user rate limit, the conversations threads remember, and the one way each of them
tells a user something (an interaction's reply, an error's text, the "queued" notice)."""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import discord

from bot.discord_render import Part
from bot.discord_text import neutralize_mentions
from bot.types import Answer, DocumentInfo, IndexStatus, Turn
from dossier_common.errors import DossierError

log = logging.getLogger(__name__)

MAX_TURNS = 6  # earlier exchanges a conversation remembers
MAX_TRACKED = 5000  # thread and message ids mapped to conversations (oldest forgotten first)
REPLY_MENTIONS = discord.AllowedMentions(everyone=False, users=False, roles=False, replied_user=True)
NO_MENTIONS = discord.AllowedMentions.none()


class EngineAPI(Protocol):
    """What the bot needs of `bot.engine.Engine` (tests pass fakes with the same methods)."""

    def ask(self, question: str, history: Sequence[Turn] = (), *, k: int | None = None) -> Answer:
        """Scoped channels also pass `sources=[folders or globs]` (bot.discord_scopes.scoped_ask)."""
        ...

    def summary(self, document: str | None = None) -> Answer: ...

    def status(self) -> IndexStatus: ...

    def documents(self) -> list[DocumentInfo]: ...

    def ingest(self, paths: Sequence[Path], *, full: bool = False, lock_wait: float = 0) -> Any: ...


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


def new_reference() -> str:
    return secrets.token_hex(4)


def error_text(exc: BaseException, where: str) -> str:
    """What a user is told: a DossierError's own message, otherwise one line with a reference."""
    if isinstance(exc, DossierError):
        return neutralize_mentions(str(exc))[:1900]
    ref = new_reference()
    log.error("Error while %s [ref %s]", where, ref, exc_info=exc)
    return f"Sorry, something went wrong on my side (reference `{ref}`)."


def queued_text(position: int) -> str:
    """The notice for a question that waits for a free answer slot."""
    ahead = "1 question" if position == 1 else f"{position} questions"
    return f"⏳ I'm busy with other questions; yours is queued ({ahead} waiting)."


async def respond(interaction: discord.Interaction, text: str, *, ephemeral: bool = True) -> None:
    """One message in answer to an interaction, whether or not it was acknowledged yet."""
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS)
    else:
        await interaction.response.send_message(text, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS)


def message_kwargs(part: Part, view: discord.ui.View | None) -> dict[str, Any]:
    """The keyword arguments that post one rendered part (and `view` under it, if any)."""
    kwargs: dict[str, Any] = {"embeds": part.embeds}
    if part.content:
        kwargs["content"] = part.content
    if view is not None:
        kwargs["view"] = view
    return kwargs
