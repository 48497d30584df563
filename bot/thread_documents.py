"""A Discord thread written as a Markdown document under the documents folder, ready to ingest.

`discord/<channel>/<thread>.md` holds the thread's title, its dates and its messages: the
first is the question, the rest the replies. Authors are left out, and so is every mention
(users, roles, channels, @everyone): a document is quoted to anyone who asks, and the
people in a help thread did not write for that. Bots' messages are left out too (the bot's
own answers quote the documents already). A signed `NAME.url` sidecar (ingest.sidecar)
holds the thread's link, so the index knows the document by that URL and answers citing it
link back to the thread.

Plain functions over text and files: bot.discord_thread_documents reads the thread from
Discord and calls them.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bot.discord_admin import safe_filename
from dossier_common.settings import Settings
from ingest.sidecar import SIDECAR_SUFFIX, sign_sidecar, source_url

FOLDER = "discord"
# Mentions as Discord writes them (users, nicknames, roles, channels, slash commands), and
# the two that ping everyone.
_MENTION = re.compile(r"<(?:@[!&]?|#)\d+>|</[^\s<>:]+(?: [^\s<>:]+)*:\d+>|(?<![\w.])@(?:everyone|here)\b")
_CUSTOM_EMOJI = re.compile(r"<a?(:\w+:)\d+>")  # <:name:id> -> :name:
_TIMESTAMP = re.compile(r"<t:(-?\d+)(?::[tTdDfFR])?>")  # <t:unix:style> -> the date


@dataclass(frozen=True)
class ThreadMessage:
    """One message of a thread, as it goes into the document (no author)."""

    text: str
    at: datetime


def clean_message(text: str) -> str:
    """The message without mentions or ids; custom emoji by name, timestamps as dates."""
    text = "\n".join(_without_mentions(line) for line in text.splitlines())
    text = _CUSTOM_EMOJI.sub(r"\1", text)
    text = _TIMESTAMP.sub(
        lambda m: f"{datetime.fromtimestamp(int(m.group(1)), UTC):%Y-%m-%d %H:%M} UTC", text
    )
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _without_mentions(line: str) -> str:
    if not _MENTION.search(line):
        return line.rstrip()
    # Where a mention was: no doubled or leading spaces, no space before punctuation, and no
    # punctuation left doubled ("Thanks <@1>, see" -> "Thanks, see"; "console, <@1>;" -> "console;").
    line = re.sub(r"(?<=\S) {2,}", " ", _MENTION.sub("", line)).strip()
    line = re.sub(r" +(?=[,.;:!?](?:\s|$))", "", line)
    return re.sub(r"[,;:](?=[,.;:!?])", "", line)


def thread_markdown(title: str, channel: str, messages: Sequence[ThreadMessage]) -> str:
    """The document: title, where and when, the question, then the replies."""
    kept = [m for m in messages if clean_message(m.text)]
    if not kept:
        raise ValueError("the thread has no message with text")
    first, rest = kept[0], kept[1:]
    heading = " ".join(clean_message(title).split()) or "Discord thread"
    lines = [
        f"# {heading}",
        "",
        f"A Discord thread in #{channel}, {first.at:%Y-%m-%d} to {kept[-1].at:%Y-%m-%d}.",
        "",
        "## Question",
        "",
        clean_message(first.text),
    ]
    if rest:
        lines += ["", "## Replies"]
        for message in rest:
            lines += ["", clean_message(message.text)]
    return "\n".join(lines) + "\n"


def thread_document_path(documents: Path, channel: str, thread: str, url: str) -> Path:
    """`documents/discord/<channel>/<thread>.md`, safe names; a thread of the same name already
    saved from another thread gets `<thread> (2).md`."""
    folder = documents / FOLDER / safe_filename(channel)
    stem = safe_filename(thread.replace(".", " ")) or "thread"
    path = folder / f"{stem}.md"
    n = 2
    while path.exists() and source_url(path) not in (None, url):
        path = folder / f"{stem} ({n}).md"
        n += 1
    return path


def write_thread_document(settings: Settings, path: Path, markdown: str, url: str) -> Path:
    """Write the document and its signed sidecar (the thread's URL), each atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(path, markdown)
    _write_atomically(path.with_name(path.name + SIDECAR_SUFFIX), f"[InternetShortcut]\nURL={url}\n")
    sign_sidecar(path, settings)  # for this content: an edit by hand makes it a plain file again
    return path


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
