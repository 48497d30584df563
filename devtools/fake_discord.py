"""A small fake Discord (gateway websocket + REST) on 127.0.0.1 for end-to-end bot tests and
benchmarks (the `fake_discord` fixture of tests/conftest.py wraps it; bench/concurrency.py uses it).

The real discord.py client logs in, identifies, receives READY and GUILD_CREATE, and then
talks to this server exactly as it would to Discord. Tests inject gateway events
(`send_message`, `slash`, `autocomplete`, `click`) and inspect or wait for the REST calls the
bot made (`posts`, `wait_for`). Unknown routes, malformed replies and missing authorisation are
recorded so the fixtures fail the test on them. See ../shared/notes/discord-offline-testing.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import discord
import discord.gateway
import discord.http
import yarl
from aiohttp import web

log = logging.getLogger(__name__)

TOKEN = "fake-bot-token"
APP_ID = 1_100_000_000_000_000_001
BOT_ID = 1_100_000_000_000_000_002
GUILD_ID = 1_100_000_000_000_000_010
CHANNEL_ID = 1_100_000_000_000_000_020
OTHER_CHANNEL_ID = 1_100_000_000_000_000_021
ADMIN_ROLE_ID = 1_100_000_000_000_000_030
USER_ID = 1_100_000_000_000_000_100
ADMIN_ID = 1_100_000_000_000_000_101
OTHER_BOT_ID = 1_100_000_000_000_000_102
ADMIN_ROLE_NAME = "Dossier Admin"
# A help desk: a category holding a help channel, a forum with tags, a moderators' channel and role.
CATEGORY_ID = 1_100_000_000_000_000_022
HELP_CHANNEL_ID = 1_100_000_000_000_000_023
FORUM_ID = 1_100_000_000_000_000_024
MOD_CHANNEL_ID = 1_100_000_000_000_000_025
MOD_ROLE_ID = 1_100_000_000_000_000_031
SOLVED_TAG_ID = 1_100_000_000_000_000_040
QUESTION_TAG_ID = 1_100_000_000_000_000_041

# Permission bits the fake hands out in interactions.
PERM_VIEW_SEND = (1 << 10) | (1 << 11) | (1 << 38)  # view channel, send messages, send in threads
PERM_MANAGE_GUILD = 1 << 5
EPHEMERAL = 1 << 6

JSON_HEADERS = {"Content-Type": "application/json"}


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _json(data: Any, status: int = 200) -> web.Response:
    # discord.py compares the content type as a string: no "; charset=utf-8".
    return web.Response(status=status, body=json.dumps(data).encode(), headers=JSON_HEADERS)


def user_payload(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {
        "id": str(user_id),
        "username": name,
        "discriminator": "0",
        "global_name": name,
        "avatar": None,
        "bot": bot,
    }


def member_payload(
    user: dict[str, Any], roles: list[int] = (), permissions: int | None = None
) -> dict[str, Any]:  # type: ignore[assignment]
    member = {
        "user": user,
        "roles": [str(r) for r in roles],
        "flags": 0,
        "joined_at": "2024-01-01T00:00:00+00:00",
        "deaf": False,
        "mute": False,
        "nick": None,
    }
    if permissions is not None:
        member["permissions"] = str(permissions)
    return member


def role_payload(role_id: int, name: str, position: int, permissions: int = 0) -> dict[str, Any]:
    return {
        "id": str(role_id),
        "name": name,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "position": position,
        "permissions": str(permissions),
        "managed": False,
        "mentionable": False,
        "flags": 0,
    }


def channel_payload(channel_id: int, name: str, position: int) -> dict[str, Any]:
    return {
        "id": str(channel_id),
        "type": 0,
        "name": name,
        "position": position,
        "guild_id": str(GUILD_ID),
        "permission_overwrites": [],
        "parent_id": None,
        "nsfw": False,
        "topic": None,
        "last_message_id": None,
        "rate_limit_per_user": 0,
    }


def category_payload(channel_id: int, name: str, position: int) -> dict[str, Any]:
    return {**channel_payload(channel_id, name, position), "type": 4}


def forum_payload(
    channel_id: int, name: str, position: int, tags: dict[int, str], parent_id: int | None = None
) -> dict[str, Any]:
    """A forum channel (type 15) offering `tags` (id -> name) for its posts."""
    return {
        **channel_payload(channel_id, name, position),
        "type": 15,
        "parent_id": str(parent_id) if parent_id else None,
        "available_tags": [
            {"id": str(tid), "name": tname, "moderated": False, "emoji_id": None, "emoji_name": None}
            for tid, tname in tags.items()
        ],
        "default_reaction_emoji": None,
        "default_sort_order": None,
        "default_forum_layout": 0,
        "flags": 0,
    }


@dataclass
class Call:
    """One REST request the bot made."""

    method: str
    path: str  # without the /api/v10 prefix and query string
    query: dict[str, str]
    json: Any
    at: float = field(default_factory=time.monotonic)
    response: Any = None

    def match(self, method: str, pattern: str) -> re.Match[str] | None:
        if self.method != method:
            return None
        return re.fullmatch(pattern, self.path)


@dataclass
class Posted:
    """A message the bot created or edited, whichever route it took."""

    kind: str  # "channel", "followup", "callback", "edit"
    channel_id: int
    message_id: int
    payload: dict[str, Any]
    call: Call

    @property
    def content(self) -> str:
        return self.payload.get("content") or ""

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return self.payload.get("embeds") or []

    @property
    def ephemeral(self) -> bool:
        return bool((self.payload.get("flags") or 0) & EPHEMERAL)

    @property
    def custom_ids(self) -> list[str]:
        ids = []
        for row in self.payload.get("components") or []:
            for comp in row.get("components", []):
                if "custom_id" in comp:
                    ids.append(comp["custom_id"])
        return ids

    def text(self) -> str:
        """Content and every embed string, for searching."""
        bits = [self.content]
        for embed in self.embeds:
            bits += [embed.get("title") or "", embed.get("description") or ""]
            bits += [f["name"] + "\n" + f["value"] for f in embed.get("fields", [])]
            bits.append((embed.get("footer") or {}).get("text", ""))
        return "\n".join(bits)


class FakeDiscord:
    def __init__(self, *, heartbeat_interval_ms: int = 41_250, token: str = TOKEN) -> None:
        self.token = token
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.port = 0
        self.calls: list[Call] = []
        self.posted: list[Posted] = []
        self.unknown_routes: list[str] = []
        self.auth_failures: list[str] = []
        self.heartbeats: list[float] = []
        self.heartbeat_acks = 0
        self.identifies = 0
        self.resumes = 0
        self.files: dict[str, bytes] = {}
        self.messages: dict[int, dict[str, Any]] = {}
        self.threads: dict[int, dict[str, Any]] = {}
        self.commands: list[dict[str, Any]] = []
        self.interactions: dict[str, dict[str, Any]] = {}  # token -> state
        self._ids = itertools.count(1_200_000_000_000_000_000)
        self._seq = 0
        self._ws: web.WebSocketResponse | None = None
        self._ready = asyncio.Event()
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.bot_user = user_payload(BOT_ID, "Dossier", bot=True)
        self.users = {
            USER_ID: user_payload(USER_ID, "alice"),
            ADMIN_ID: user_payload(ADMIN_ID, "boss"),
            OTHER_BOT_ID: user_payload(OTHER_BOT_ID, "otherbot", bot=True),
        }
        self.roles = {USER_ID: [], ADMIN_ID: [ADMIN_ROLE_ID], OTHER_BOT_ID: []}
        self.channels = {
            CHANNEL_ID: channel_payload(CHANNEL_ID, "general", 0),
            OTHER_CHANNEL_ID: channel_payload(OTHER_CHANNEL_ID, "random", 1),
            CATEGORY_ID: category_payload(CATEGORY_ID, "Support", 2),
            HELP_CHANNEL_ID: {**channel_payload(HELP_CHANNEL_ID, "help", 3), "parent_id": str(CATEGORY_ID)},
            FORUM_ID: forum_payload(
                FORUM_ID, "questions", 4, {SOLVED_TAG_ID: "Solved", QUESTION_TAG_ID: "Question"}, CATEGORY_ID
            ),
            MOD_CHANNEL_ID: channel_payload(MOD_CHANNEL_ID, "moderators", 5),
        }

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return self.base_url + "/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/", self._gateway)
        app.router.add_get("/files/{fid}/{name:.*}", self._file)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def next_id(self) -> int:
        return next(self._ids)

    async def _changed_now(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_until(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Wait until `predicate()` is truthy (checked after every REST call or gateway frame)."""

        async def _wait() -> Any:
            async with self._changed:
                return await self._changed.wait_for(predicate)

        return await asyncio.wait_for(_wait(), timeout)

    async def wait_for(
        self,
        method: str,
        pattern: str,
        *,
        where: Callable[[Call], bool] = lambda c: True,
        count: int = 1,
        timeout: float = 10.0,
    ) -> list[Call]:
        """The first `count` REST calls matching `method` and the path regex `pattern`."""

        def found() -> list[Call] | None:
            hits = [c for c in self.calls if c.match(method, pattern) and where(c)]
            return hits[:count] if len(hits) >= count else None

        try:
            return await self.wait_until(found, timeout)
        except TimeoutError:
            seen = "\n".join(f"  {c.method} {c.path}" for c in self.calls[-30:])
            raise AssertionError(
                f"no {count}x {method} {pattern} within {timeout}s; last calls:\n{seen}"
            ) from None

    async def wait_posted(
        self, where: Callable[[Posted], bool] = lambda p: True, *, count: int = 1, timeout: float = 10.0
    ) -> list[Posted]:
        def found() -> list[Posted] | None:
            hits = [p for p in self.posted if where(p)]
            return hits[:count] if len(hits) >= count else None

        try:
            return await self.wait_until(found, timeout)
        except TimeoutError:
            seen = "\n".join(f"  {p.kind} {p.channel_id}: {p.content[:80]!r}" for p in self.posted[-20:])
            raise AssertionError(
                f"fewer than {count} matching messages within {timeout}s; posted:\n{seen}"
            ) from None

    def posts(self, channel_id: int | None = None) -> list[Posted]:
        return [p for p in self.posted if channel_id is None or p.channel_id == channel_id]

    def calls_to(self, method: str, pattern: str) -> list[Call]:
        return [c for c in self.calls if c.match(method, pattern)]

    # -- gateway ------------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._ws = ws
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}}))
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            op = frame.get("op")
            if op == 1:
                self.heartbeats.append(time.monotonic())
                await ws.send_str(json.dumps({"op": 11}))
                self.heartbeat_acks += 1
            elif op == 2:
                await self._identify(ws, frame["d"])
            elif op == 6:
                self.resumes += 1
                await self._dispatch(ws, "RESUMED", {})
            await self._changed_now()
        if self._ws is ws:
            self._ws = None
        return ws

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        if data.get("token") != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        self.identifies += 1
        ready = {
            "v": 10,
            "user": self.bot_user,
            "guilds": [{"id": str(GUILD_ID), "unavailable": True}],
            "session_id": "fake-session",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(APP_ID), "flags": 0},
            "private_channels": [],
            "relationships": [],
        }
        await self._dispatch(ws, "READY", ready)
        await self._dispatch(ws, "GUILD_CREATE", self.guild_payload())
        self._ready.set()

    def guild_payload(self) -> dict[str, Any]:
        bot_member = member_payload(self.bot_user)
        return {
            "id": str(GUILD_ID),
            "name": "Test guild",
            "owner_id": str(ADMIN_ID),
            "unavailable": False,
            "member_count": 4,
            "large": False,
            "features": [],
            "emojis": [],
            "stickers": [],
            "roles": [
                role_payload(GUILD_ID, "@everyone", 0, PERM_VIEW_SEND),
                role_payload(ADMIN_ROLE_ID, ADMIN_ROLE_NAME, 1),
                role_payload(MOD_ROLE_ID, "Moderators", 2),
            ],
            "channels": list(self.channels.values()),
            "threads": [],
            "members": [bot_member],
            "voice_states": [],
            "presences": [],
        }

    async def _dispatch(self, ws: web.WebSocketResponse | None, event: str, data: dict[str, Any]) -> None:
        ws = ws or self._ws
        if ws is None or ws.closed:
            raise AssertionError(f"cannot dispatch {event}: the bot is not connected")
        self._seq += 1
        await ws.send_str(json.dumps({"op": 0, "t": event, "s": self._seq, "d": data}))

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        await self._dispatch(None, event, data)

    async def wait_connected(self, timeout: float = 5.0) -> None:
        await asyncio.wait_for(self._ready.wait(), timeout)

    async def request_reconnect(self) -> None:
        """Ask the client to reconnect (op 7); it comes back and RESUMEs."""
        self._ready.clear()
        if self._ws is not None:
            await self._ws.send_str(json.dumps({"op": 7, "d": None}))

    # -- injecting user actions -------------------------------------------------------------------

    def add_file(
        self, name: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> dict[str, Any]:
        """Serve `data` and return an attachment payload pointing at it."""
        fid = self.next_id()
        self.files[str(fid)] = data
        url = f"{self.base_url}/files/{fid}/{urllib.parse.quote(name, safe='')}"
        return {
            "id": str(fid),
            "filename": name,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
        }

    def _channel_ref(self, channel_id: int) -> dict[str, Any]:
        if channel_id in self.threads:
            return self.threads[channel_id]
        return self.channels[channel_id]

    async def send_message(
        self,
        content: str,
        *,
        author_id: int = USER_ID,
        channel_id: int = CHANNEL_ID,
        mention_bot: bool = True,
        reply_to: int | None = None,
        attachments: list[dict[str, Any]] = (),  # type: ignore[assignment]
    ) -> dict[str, Any]:
        """A user posts a message; `mention_bot` prefixes `<@bot>` and lists the bot in mentions."""
        author = self.users[author_id] if author_id != BOT_ID else self.bot_user
        if mention_bot:
            content = f"<@{BOT_ID}> {content}"
        msg: dict[str, Any] = {
            "id": str(self.next_id()),
            "channel_id": str(channel_id),
            "guild_id": str(GUILD_ID),
            "type": 19 if reply_to else 0,
            "content": content,
            "author": author,
            "member": member_payload(author, self.roles.get(author_id, [])),
            "mentions": [self.bot_user] if mention_bot else [],
            "mention_roles": [],
            "mention_everyone": False,
            "embeds": [],
            "attachments": list(attachments),
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": False,
            "pinned": False,
            "flags": 0,
            "components": [],
        }
        if reply_to is not None:
            ref = self.messages[reply_to]
            msg["message_reference"] = {
                "type": 0,
                "message_id": str(reply_to),
                "channel_id": ref["channel_id"],
                "guild_id": str(GUILD_ID),
            }
            msg["referenced_message"] = ref
        self.messages[int(msg["id"])] = msg
        await self.dispatch("MESSAGE_CREATE", msg)
        return msg

    async def forum_post(
        self,
        title: str,
        content: str,
        *,
        author_id: int = USER_ID,
        forum_id: int = FORUM_ID,
        tags: list[int] = (),  # type: ignore[assignment]
    ) -> dict[str, Any]:
        """A user opens a post in a forum: THREAD_CREATE (the post, owned by the user, with
        `tags` applied), then MESSAGE_CREATE of its starter message (same id as the post)."""
        author = self.users[author_id]
        post_id = self.next_id()
        thread = {
            "id": str(post_id),
            "guild_id": str(GUILD_ID),
            "parent_id": str(forum_id),
            "owner_id": str(author_id),
            "name": title,
            "type": 11,
            "message_count": 0,
            "member_count": 1,
            "rate_limit_per_user": 0,
            "flags": 0,
            "applied_tags": [str(t) for t in tags],
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 4320,
                "archive_timestamp": _now(),
                "locked": False,
            },
        }
        self.threads[post_id] = thread
        await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        message: dict[str, Any] = {
            "id": str(post_id),
            "channel_id": str(post_id),
            "guild_id": str(GUILD_ID),
            "type": 0,
            "content": content,
            "author": author,
            "member": member_payload(author, self.roles.get(author_id, [])),
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "embeds": [],
            "attachments": [],
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": False,
            "pinned": False,
            "flags": 0,
            "components": [],
        }
        self.messages[post_id] = message
        await self.dispatch("MESSAGE_CREATE", message)
        return message

    def _interaction_base(
        self, kind: int, user_id: int, channel_id: int, permissions: int | None
    ) -> dict[str, Any]:
        user = self.users[user_id]
        if permissions is None:
            permissions = PERM_VIEW_SEND | (PERM_MANAGE_GUILD if user_id == ADMIN_ID else 0)
        iid = self.next_id()
        token = f"itoken-{iid}"
        self.interactions[token] = {
            "id": iid,
            "type": kind,
            "channel_id": channel_id,
            "original": None,
            "deferred": False,
        }
        return {
            "id": str(iid),
            "application_id": str(APP_ID),
            "type": kind,
            "token": token,
            "version": 1,
            "guild_id": str(GUILD_ID),
            "channel_id": str(channel_id),
            "channel": self._channel_ref(channel_id),
            "member": member_payload(user, self.roles.get(user_id, []), permissions),
            "locale": "en-US",
            "guild_locale": "en-US",
            "app_permissions": str(PERM_VIEW_SEND),
            "attachment_size_limit": 25 * 1024 * 1024,
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(GUILD_ID)},
            "context": 0,
        }

    async def slash(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user_id: int = USER_ID,
        channel_id: int = CHANNEL_ID,
        permissions: int | None = None,
        attachments: dict[str, dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A user runs a slash command; `attachments` maps an option name to `add_file(...)`."""
        command = self.command(name)
        opts = [{"name": k, "type": 3, "value": v} for k, v in (options or {}).items()]
        resolved: dict[str, Any] = {}
        for opt_name, attachment in (attachments or {}).items():
            opts.append({"name": opt_name, "type": 11, "value": attachment["id"]})
            resolved.setdefault("attachments", {})[attachment["id"]] = attachment
        payload = self._interaction_base(2, user_id, channel_id, permissions)
        payload["data"] = {"id": command["id"], "name": name, "type": 1, "options": opts}
        if resolved:
            payload["data"]["resolved"] = resolved
        await self.dispatch("INTERACTION_CREATE", payload)
        return payload

    async def autocomplete(
        self,
        name: str,
        options: dict[str, Any],
        focused: str,
        *,
        user_id: int = USER_ID,
        channel_id: int = CHANNEL_ID,
    ) -> list[dict[str, Any]]:
        """A user types into option `focused` of /name (type 4, APPLICATION_COMMAND_AUTOCOMPLETE);
        returns the choices the bot answered with (callback type 8)."""
        command = self.command(name)
        opts = [
            {"name": k, "type": 3, "value": v, **({"focused": True} if k == focused else {})}
            for k, v in options.items()
        ]
        payload = self._interaction_base(4, user_id, channel_id, None)
        payload["data"] = {"id": command["id"], "name": name, "type": 1, "options": opts}
        state = self.interactions[payload["token"]]
        await self.dispatch("INTERACTION_CREATE", payload)
        await self.wait_until(lambda: "choices" in state)
        return state["choices"]  # type: ignore[no-any-return]

    async def open_thread(
        self,
        name: str,
        *,
        parent_id: int = CHANNEL_ID,
        owner_id: int = USER_ID,
        on_message: int | None = None,
    ) -> int:
        """A user opens a public thread in a text channel (on one of its messages, whose id the
        thread then takes, as on Discord); returns the thread's id."""
        thread_id = on_message or self.next_id()
        thread = self._thread_payload(thread_id, str(parent_id), name, owner_id)
        self.threads[thread_id] = thread
        await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        return thread_id

    async def message_command(
        self, name: str, message_id: int, *, user_id: int = USER_ID, permissions: int | None = None
    ) -> dict[str, Any]:
        """A user runs the message context-menu command `name` on a message (type 3 command)."""
        command = self.command(name)
        message = self.messages[message_id]
        payload = self._interaction_base(2, user_id, int(message["channel_id"]), permissions)
        payload["data"] = {
            "id": command["id"],
            "name": name,
            "type": 3,
            "target_id": str(message_id),
            "resolved": {"messages": {str(message_id): message}},
        }
        await self.dispatch("INTERACTION_CREATE", payload)
        return payload

    def command(self, name: str) -> dict[str, Any]:
        """The registered command called `name` (as the bot synced it)."""
        command = next((c for c in self.commands if c["name"] == name), None)
        if command is None:
            raise AssertionError(
                f"/{name} was never registered; synced: {[c['name'] for c in self.commands]}"
            )
        return command

    async def click(self, message_id: int, custom_id: str, *, user_id: int = USER_ID) -> dict[str, Any]:
        """A user clicks a button of a message the bot posted."""
        message = self.messages[message_id]
        payload = self._interaction_base(3, user_id, int(message["channel_id"]), None)
        payload["message"] = message
        payload["data"] = {"custom_id": custom_id, "component_type": 2}
        await self.dispatch("INTERACTION_CREATE", payload)
        return payload

    # -- REST -----------------------------------------------------------------------------------------

    async def _file(self, request: web.Request) -> web.Response:
        key = request.match_info["fid"]
        if key not in self.files:
            return web.Response(status=404)
        return web.Response(body=self.files[key], headers={"Content-Type": "application/octet-stream"})

    async def _unknown(self, request: web.Request) -> web.Response:
        self.unknown_routes.append(f"{request.method} {request.path}")
        return _json({"message": "404: Not Found", "code": 0}, 404)

    async def _body(self, request: web.Request) -> Any:
        if request.content_type == "application/json":
            return await request.json()
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            raw = form.get("payload_json")
            return json.loads(raw) if isinstance(raw, str) else {}
        text = await request.text()
        return json.loads(text) if text else None

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        call = Call(request.method, path, dict(request.query), await self._body(request))
        self.calls.append(call)
        try:
            needs_auth = not path.startswith(("/interactions/", "/webhooks/"))
            if needs_auth and request.headers.get("Authorization") != f"Bot {self.token}":
                if path == "/users/@me":
                    return _json({"message": "401: Unauthorized", "code": 0}, 401)
                self.auth_failures.append(f"{request.method} {path}")
                return _json({"message": "401: Unauthorized", "code": 0}, 401)
            for method, pattern, handler in self._routes():
                if request.method == method and (m := re.fullmatch(pattern, path)):
                    response = await handler(call, **m.groupdict())
                    call.response = response
                    return response if isinstance(response, web.StreamResponse) else _json(response)
            self.unknown_routes.append(f"{request.method} {path}")
            return _json({"message": "404: Not Found", "code": 0}, 404)
        finally:
            await self._changed_now()

    def _routes(self) -> Iterator[tuple[str, str, Callable[..., Any]]]:
        yield "GET", r"/users/@me", self._get_me
        yield "GET", r"/oauth2/applications/@me", self._get_application
        yield "PUT", r"/applications/(?P<app>\d+)/commands", self._put_commands
        yield "PUT", r"/applications/(?P<app>\d+)/guilds/(?P<guild>\d+)/commands", self._put_commands
        yield "GET", r"/channels/(?P<channel>\d+)", self._get_channel
        yield "PATCH", r"/channels/(?P<channel>\d+)", self._patch_channel
        yield "POST", r"/channels/(?P<channel>\d+)/messages", self._post_message
        yield "GET", r"/channels/(?P<channel>\d+)/messages/(?P<message>\d+)", self._get_message
        yield "GET", r"/channels/(?P<channel>\d+)/messages", self._list_messages
        yield "GET", r"/channels/(?P<channel>\d+)", self._get_channel
        yield "PATCH", r"/channels/(?P<channel>\d+)/messages/(?P<message>\d+)", self._patch_message
        yield "DELETE", r"/channels/(?P<channel>\d+)/messages/(?P<message>\d+)", self._no_content
        yield "POST", r"/channels/(?P<channel>\d+)/typing", self._no_content
        yield (
            "PUT",
            r"/channels/(?P<channel>\d+)/messages/(?P<message>\d+)/reactions/(?P<emoji>[^/]+)/@me",
            self._no_content,
        )
        yield (
            "DELETE",
            r"/channels/(?P<channel>\d+)/messages/(?P<message>\d+)/reactions/(?P<emoji>[^/]+)/@me",
            self._no_content,
        )
        yield "POST", r"/channels/(?P<channel>\d+)/messages/(?P<message>\d+)/threads", self._post_thread
        yield "POST", r"/channels/(?P<channel>\d+)/threads", self._post_thread
        yield "POST", r"/interactions/(?P<iid>\d+)/(?P<token>[^/]+)/callback", self._callback
        yield "POST", r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)", self._followup
        yield (
            "GET",
            r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)/messages/(?P<message>[^/]+)",
            self._get_webhook_message,
        )
        yield (
            "PATCH",
            r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)/messages/(?P<message>[^/]+)",
            self._patch_webhook_message,
        )
        yield (
            "DELETE",
            r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)/messages/(?P<message>[^/]+)",
            self._no_content,
        )

    async def _no_content(self, call: Call, **_: str) -> web.Response:
        return web.Response(status=204)

    async def _get_me(self, call: Call) -> dict[str, Any]:
        return self.bot_user

    async def _get_application(self, call: Call) -> dict[str, Any]:
        return {
            "id": str(APP_ID),
            "name": "Dossier",
            "description": "",
            "icon": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": self.users[ADMIN_ID],
            "verify_key": "0" * 64,
            "flags": 0,
        }

    async def _put_commands(self, call: Call, app: str, guild: str | None = None) -> list[dict[str, Any]]:
        out = []
        for cmd in call.json or []:
            registered = {
                "id": str(self.next_id()),
                "application_id": str(APP_ID),
                "version": "1",
                "type": 1,
                "default_member_permissions": None,
                "dm_permission": True,
                "nsfw": False,
                "description": "",  # context-menu commands carry none; Discord returns ""
                **cmd,
            }
            if guild is not None:
                registered["guild_id"] = guild
            out.append(registered)
        self.commands = out
        return out

    def _message(
        self, channel_id: int, body: dict[str, Any], *, message_id: int | None = None
    ) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "id": str(message_id or self.next_id()),
            "channel_id": str(channel_id),
            "guild_id": str(GUILD_ID),
            "type": 0,
            "content": body.get("content") or "",
            "author": self.bot_user,
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "embeds": body.get("embeds") or [],
            "attachments": [],
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": False,
            "pinned": False,
            "flags": body.get("flags") or 0,
            "components": body.get("components") or [],
        }
        ref = body.get("message_reference")
        if ref:
            msg["type"] = 19
            msg["message_reference"] = {**ref, "channel_id": str(channel_id), "guild_id": str(GUILD_ID)}
        return msg

    async def _echo(self, msg: dict[str, Any]) -> None:
        # Real Discord sends the bot its own messages back: it must ignore them.
        if self._ws is not None and not self._ws.closed and not (msg["flags"] & EPHEMERAL):
            await self.dispatch("MESSAGE_CREATE", {**msg, "member": member_payload(self.bot_user)})

    def _record(self, kind: str, msg: dict[str, Any], body: dict[str, Any], call: Call) -> None:
        self.messages[int(msg["id"])] = msg
        self.posted.append(Posted(kind, int(msg["channel_id"]), int(msg["id"]), body, call))

    async def _post_message(self, call: Call, channel: str) -> dict[str, Any]:
        channel_id = int(channel)
        if channel_id not in self.channels and channel_id not in self.threads:
            self.unknown_routes.append(f"POST /channels/{channel}/messages (unknown channel)")
        msg = self._message(channel_id, call.json or {})
        self._record("channel", msg, call.json or {}, call)
        await self._echo(msg)
        return msg

    async def _get_channel(self, call: Call, channel: str) -> web.StreamResponse | dict[str, Any]:
        cid = int(channel)
        if cid in self.threads or cid in self.channels:
            return self._channel_ref(cid)
        return _json({"message": "Unknown Channel", "code": 10003}, 404)

    async def _patch_channel(self, call: Call, channel: str) -> web.StreamResponse | dict[str, Any]:
        """Edit a thread (a forum post's tags, its name, archiving); THREAD_UPDATE follows."""
        cid = int(channel)
        thread = self.threads.get(cid)
        if thread is None:
            self.unknown_routes.append(f"PATCH /channels/{channel} (only threads can be edited here)")
            return _json({"message": "Unknown Channel", "code": 10003}, 404)
        body = call.json or {}
        if "applied_tags" in body:
            forum = self.channels.get(int(thread["parent_id"]), {})
            known = {t["id"] for t in forum.get("available_tags", [])}
            tags = [str(t) for t in body["applied_tags"]]
            if len(tags) > 5 or not set(tags) <= known:
                self.unknown_routes.append(f"bad applied_tags for post {channel}: {tags}")
            thread["applied_tags"] = tags
        if "name" in body:
            thread["name"] = body["name"]
        if "archived" in body:
            thread["thread_metadata"]["archived"] = bool(body["archived"])
        await self.dispatch("THREAD_UPDATE", thread)
        return thread

    async def _get_message(
        self, call: Call, channel: str, message: str
    ) -> web.StreamResponse | dict[str, Any]:
        msg = self.messages.get(int(message))
        return msg if msg is not None else _json({"message": "Unknown Message", "code": 10008}, 404)

    async def _patch_message(self, call: Call, channel: str, message: str) -> dict[str, Any]:
        msg = self.messages.get(int(message)) or self._message(int(channel), {}, message_id=int(message))
        msg = {
            **msg,
            **{k: v for k, v in (call.json or {}).items() if k in ("content", "embeds", "components")},
        }
        msg["edited_timestamp"] = _now()
        self._record("edit", msg, call.json or {}, call)
        return msg

    async def _list_messages(self, call: Call, channel: str) -> list[dict[str, Any]]:
        """A channel's messages as Discord lists them: newest first, `limit` of them next to
        `after` or `before` (or the newest)."""
        limit = int(call.query.get("limit", 50))
        ours = sorted(m for m, msg in self.messages.items() if msg["channel_id"] == channel)
        if "after" in call.query:
            ours = [m for m in ours if m > int(call.query["after"])][:limit]
        elif "before" in call.query:
            ours = [m for m in ours if m < int(call.query["before"])][-limit:]
        else:
            ours = ours[-limit:]
        return [self.messages[m] for m in reversed(ours)]

    async def _get_channel(self, call: Call, channel: str) -> web.StreamResponse | dict[str, Any]:
        found = self.threads.get(int(channel)) or self.channels.get(int(channel))
        return found if found is not None else _json({"message": "Unknown Channel", "code": 10003}, 404)

    def _thread_payload(self, thread_id: int, parent_id: str, name: str, owner_id: int) -> dict[str, Any]:
        return {
            "id": str(thread_id),
            "guild_id": str(GUILD_ID),
            "parent_id": parent_id,
            "owner_id": str(owner_id),
            "name": name,
            "type": 11,
            "message_count": 0,
            "member_count": 1,
            "rate_limit_per_user": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": _now(),
                "locked": False,
            },
        }

    async def _post_thread(self, call: Call, channel: str, message: str | None = None) -> dict[str, Any]:
        body = call.json or {}
        thread_id = int(message) if message else self.next_id()
        thread = {
            "id": str(thread_id),
            "guild_id": str(GUILD_ID),
            "parent_id": channel,
            "owner_id": str(BOT_ID),
            "name": body.get("name", "thread"),
            "type": 11,
            "message_count": 0,
            "member_count": 1,
            "rate_limit_per_user": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": body.get("auto_archive_duration") or 1440,
                "archive_timestamp": _now(),
                "locked": False,
            },
        }
        self.threads[thread_id] = thread
        await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        return thread

    async def _callback(self, call: Call, iid: str, token: str) -> dict[str, Any]:
        state = self.interactions.get(token)
        if state is None or str(state["id"]) != iid:
            self.unknown_routes.append(f"POST callback for unknown interaction {iid}")
            return {}
        body = call.json or {}
        kind = body.get("type")
        data = body.get("data") or {}
        result: dict[str, Any] = {
            "interaction": {
                "id": iid,
                "type": state["type"],
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool((data.get("flags") or 0) & EPHEMERAL),
            }
        }
        if kind in (4, 5):
            msg = self._message(state["channel_id"], data)
            msg["interaction_metadata"] = {"id": iid, "type": 2, "user": self.users[USER_ID]}
            msg["webhook_id"] = str(APP_ID)
            msg["application_id"] = str(APP_ID)
            if kind == 5:
                msg["flags"] |= 1 << 7  # loading
            state["original"] = int(msg["id"])
            state["deferred"] = kind == 5
            result["interaction"]["response_message_id"] = msg["id"]
            result["resource"] = {"type": kind, "message": msg}
            self._record("callback", msg, data, call)
        elif kind == 8:  # autocomplete suggestions: at most 25, each name and value <= 100 chars
            choices = data.get("choices")
            if state["type"] != 4 or not isinstance(choices, list) or len(choices) > 25:
                self.unknown_routes.append(f"bad autocomplete answer to a type {state['type']}: {data}")
            elif any(not 1 <= len(c["name"]) <= 100 or len(str(c["value"])) > 100 for c in choices):
                self.unknown_routes.append(f"autocomplete choice too long: {choices}")
            state["choices"] = choices or []
            result["resource"] = {"type": kind}
        else:
            result["resource"] = {"type": kind}
        state["callback"] = kind
        return result

    async def _followup(self, call: Call, app: str, token: str) -> web.StreamResponse | dict[str, Any]:
        state = self.interactions.get(token)
        if state is None:
            self.unknown_routes.append(f"POST followup for unknown token {token}")
            return _json({"message": "Unknown Webhook", "code": 10015}, 404)
        if state.get("callback") is None:
            self.unknown_routes.append("followup before the interaction was acknowledged")
        body = call.json or {}
        if state["deferred"]:
            # The first follow-up after a "thinking" defer replaces the loading message.
            state["deferred"] = False
            msg = self._message(state["channel_id"], body, message_id=state["original"])
        else:
            msg = self._message(state["channel_id"], body)
        msg["webhook_id"] = str(APP_ID)
        msg["application_id"] = str(APP_ID)
        self._record("followup", msg, body, call)
        await self._echo(msg)
        return msg

    async def _get_webhook_message(self, call: Call, app: str, token: str, message: str) -> dict[str, Any]:
        state = self.interactions[token]
        mid = state["original"] if message == "@original" else int(message)
        return self.messages[mid]

    async def _patch_webhook_message(self, call: Call, app: str, token: str, message: str) -> dict[str, Any]:
        state = self.interactions[token]
        mid = state["original"] if message == "@original" else int(message)
        if message == "@original":
            state["deferred"] = False  # the "thinking" message is now the answer: follow-ups are new
        base = self.messages.get(mid) or self._message(state["channel_id"], {}, message_id=mid)
        msg = {
            **base,
            **{k: v for k, v in (call.json or {}).items() if k in ("content", "embeds", "components")},
        }
        self._record("edit", msg, call.json or {}, call)
        return msg


# -- helpers ---------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[FakeDiscord]:
    """A running fake Discord with discord.py pointed at it; restored and stopped afterwards.
    Fails (AssertionError) if the bot called routes the fake does not know, or left out the token."""
    server = FakeDiscord()
    await server.start()
    saved = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    discord.http.Route.BASE = server.api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(server.gateway_url)
    try:
        yield server
    finally:
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved
        await server.stop()
    assert not server.unknown_routes, f"the bot called routes the fake does not know: {server.unknown_routes}"
    assert not server.auth_failures, f"requests without the bot token: {server.auth_failures}"


@contextlib.asynccontextmanager
async def running_bot(
    server: FakeDiscord, bot: discord.Client, *, timeout: float = 10.0
) -> AsyncIterator[Any]:
    """Run `bot` against `server` until the block ends; a crash of the bot fails the test.

    Exceptions escaping the bot's event handlers are collected too (`bot.on_error`), so a
    handler that dies is not mistaken for a bot that chose to stay silent.
    """
    handler_errors: list[str] = []

    async def on_error(event: str, *args: Any, **kwargs: Any) -> None:
        import traceback

        handler_errors.append(f"{event}: {traceback.format_exc()}")

    bot.on_error = on_error  # type: ignore[method-assign]

    entered = asyncio.Event()

    async def run() -> None:
        async with bot:
            entered.set()
            await bot.start(server.token)

    async def until_ready() -> None:
        await entered.wait()
        await bot.wait_until_ready()

    task = asyncio.create_task(run(), name="bot")
    ready = asyncio.create_task(until_ready())
    done, _ = await asyncio.wait({task, ready}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    if ready not in done:
        ready.cancel()
        if task in done:
            task.result()  # raises what killed the bot
        task.cancel()
        raise AssertionError("the bot did not become ready")
    try:
        yield bot
    finally:
        if not task.done():
            await bot.close()
        await asyncio.wait_for(task, timeout)  # surfaces a crash of the bot
        assert not handler_errors, "exceptions in the bot's event handlers:\n" + "\n".join(handler_errors)
