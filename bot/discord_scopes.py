"""Scoped channels: DISCORD_SCOPES maps a channel, a category or a forum to part of the documents.

The setting is JSON (`{"123": ["policy/", "faq/*.md"]}`) or the path of a .json or .toml
file holding that mapping (TOML: `123 = ["policy/"]`, quoted keys as TOML requires). A
thread takes its parent channel's (or forum's) scope, a channel its category's; the most
specific entry wins. Unlisted channels see every document. The patterns are bot.scope's.
"""

from __future__ import annotations

import functools
import json
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bot.scope import describe, matches
from bot.types import Answer, DocumentInfo, Turn
from dossier_common.errors import ConfigError

Scope = tuple[str, ...]


class ChannelScopes:
    """Channel, category or forum id -> the folders and globs its questions are answered from."""

    def __init__(self, scopes: Mapping[int, Sequence[str]] | None = None) -> None:
        self.scopes: dict[int, Scope] = {cid: tuple(patterns) for cid, patterns in (scopes or {}).items()}

    @classmethod
    def from_setting(cls, value: str | None) -> ChannelScopes:
        """Parse DISCORD_SCOPES (JSON text, or a .json / .toml file); a ConfigError says what is wrong."""
        if value is None or not value.strip():
            return cls()
        text = value.strip()
        if text.startswith("{"):
            data: Any = _load_json(text, "DISCORD_SCOPES")
        else:
            path = Path(text).expanduser()
            try:
                raw = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"DISCORD_SCOPES: cannot read {path}: {exc.strerror or exc}") from exc
            if path.suffix.lower() == ".toml":
                try:
                    data = tomllib.loads(raw)
                except tomllib.TOMLDecodeError as exc:
                    raise ConfigError(f"DISCORD_SCOPES: {path} is not valid TOML: {exc}") from exc
            else:
                data = _load_json(raw, str(path))
        return cls(_validated(data))

    def __bool__(self) -> bool:
        return bool(self.scopes)

    def of(self, channel: Any) -> Scope | None:
        """The scope of a channel, thread or forum post (None: every document)."""
        for cid in _ids_outward(channel):
            if cid in self.scopes:
                return self.scopes[cid]
        return None


def _load_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"DISCORD_SCOPES: {where} is not valid JSON: {exc}") from exc


def _validated(data: Any) -> dict[int, list[str]]:
    example = 'e.g. {"123456789012345678": ["policy/", "faq/*.md"]}'
    if not isinstance(data, dict):
        raise ConfigError(f"DISCORD_SCOPES must map channel ids to lists of folders or globs, {example}")
    out: dict[int, list[str]] = {}
    for key, patterns in data.items():
        try:
            cid = int(str(key).strip())
        except ValueError:
            raise ConfigError(f"DISCORD_SCOPES: {key!r} is not a channel id, {example}") from None
        if isinstance(patterns, str):
            patterns = [patterns]
        valid = isinstance(patterns, list) and all(isinstance(p, str) and p.strip() for p in patterns)
        if not valid or not patterns:
            raise ConfigError(f"DISCORD_SCOPES: channel {cid} needs a list of folders or globs, {example}")
        out[cid] = [p.strip() for p in patterns]
    return out


def _ids_outward(channel: Any) -> list[int]:
    """The channel's id, then its parent's (a thread's channel or forum), then the category's."""
    ids: list[int] = []
    current = channel
    for _ in range(3):  # thread -> channel -> category
        if current is None:
            break
        cid = getattr(current, "id", None)
        if cid is not None:
            ids.append(cid)
        parent_id = getattr(current, "parent_id", None) or getattr(current, "category_id", None)
        parent = getattr(current, "parent", None) or getattr(current, "category", None)
        if parent is None and parent_id is not None:
            ids.append(parent_id)  # not cached: its own parent stays unknown
            break
        current = parent
    return list(dict.fromkeys(ids))


def scoped_ask(
    engine: Any, scope: Scope | None, question: str, history: Sequence[Turn]
) -> Callable[[], Answer]:
    """The engine call for a question asked under `scope` (the engine's `sources` filter)."""
    if scope is None:
        return functools.partial(engine.ask, question, tuple(history))
    return functools.partial(engine.ask, question, tuple(history), sources=list(scope))


def documents_in_scope(engine: Any, documents: Sequence[DocumentInfo], scope: Scope) -> list[DocumentInfo]:
    """The documents a scope takes: the engine decides when it can (paths under the documents
    folder count), otherwise their sources are matched. Blocking: call it in a worker thread."""
    in_scope = getattr(engine, "in_scope", None)
    if in_scope is not None:
        try:
            allowed = set(in_scope(list(scope)))
        except Exception:  # no index yet: nothing is in scope
            allowed = set()
        return [d for d in documents if d.source in allowed]
    return [d for d in documents if any(matches(p, d.source) for p in scope)]


def scope_line(scope: Scope | None, count: int | None = None) -> str:
    """One line saying what this channel answers from."""
    if scope is None:
        return "This channel is answered from every document."
    shown = ", ".join(f"`{p.replace('`', '')}`" for p in describe(scope).split(", "))
    if count is not None:
        return f"This channel is answered from {shown} only ({count} document{'s' if count != 1 else ''})."
    return f"This channel is answered from {shown} only."
