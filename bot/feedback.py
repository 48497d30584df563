"""Votes on answers (👍 / 👎), kept in SQLite under DOSSIER_HOME and exportable.

Two tables: `answers` (what was asked and answered, saved when the answer is sent, so a
click still finds it after a restart) and `votes` (one row per answer and user; a second
click replaces the first). Each call opens its own connection, so the store can be used
from worker threads.
"""

from __future__ import annotations

import csv
import json
import logging
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, TextIO

from bot.types import Citation
from dossier_common.errors import ConfigError
from dossier_common.settings import Settings
from index.layout import Layout

log = logging.getLogger(__name__)

FORMATS = ("jsonl", "csv")
EXPORT_FIELDS = (
    "answer_id",
    "question",
    "answer",
    "sources",
    "vote",
    "user_id",
    "guild_id",
    "channel_id",
    "answered_at",
    "voted_at",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    answer_id   TEXT PRIMARY KEY,
    question    TEXT NOT NULL,
    answer      TEXT NOT NULL,
    sources     TEXT NOT NULL,      -- JSON list of {n, source, location, quote}
    guild_id    INTEGER,
    channel_id  INTEGER,
    created_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS votes (
    answer_id   TEXT NOT NULL,
    user_id     INTEGER NOT NULL,
    vote        INTEGER NOT NULL CHECK (vote IN (-1, 1)),
    guild_id    INTEGER,
    channel_id  INTEGER,
    created_at  REAL NOT NULL,
    PRIMARY KEY (answer_id, user_id)
);
"""


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


class FeedbackStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def for_settings(cls, settings: Settings) -> FeedbackStore:
        return cls(Layout(settings.home).feedback)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=10)) as conn:
            conn.executescript(_SCHEMA)
            with conn:  # one transaction, committed on success
                yield conn

    def save_answer(
        self,
        answer_id: str,
        *,
        question: str,
        answer: str,
        sources: Sequence[Citation] | Sequence[dict[str, Any]] = (),
        guild_id: int | None = None,
        channel_id: int | None = None,
    ) -> None:
        """Remember an answer that was sent, so that votes on it can be stored with it."""
        payload = [s.to_dict() if isinstance(s, Citation) else dict(s) for s in sources]
        with self._connect() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    answer_id,
                    question,
                    answer,
                    json.dumps(payload, ensure_ascii=False),
                    guild_id,
                    channel_id,
                    time.time(),
                ),
            )

    def record(
        self,
        answer_id: str,
        vote: int,
        user_id: int,
        *,
        guild_id: int | None = None,
        channel_id: int | None = None,
    ) -> bool:
        """Store `user_id`'s vote (+1 or -1) on an answer; returns False if the answer is unknown."""
        if vote not in (1, -1):
            raise ValueError(f"vote must be +1 or -1, not {vote!r}")
        with self._connect() as conn:
            known = conn.execute("SELECT 1 FROM answers WHERE answer_id = ?", (answer_id,)).fetchone()
            conn.execute(
                "INSERT OR REPLACE INTO votes VALUES (?, ?, ?, ?, ?, ?)",
                (answer_id, user_id, vote, guild_id, channel_id, time.time()),
            )
        return known is not None

    def rows(self) -> list[dict[str, Any]]:
        """Every vote with its answer, oldest first."""
        with self._connect() as conn:
            conn.row_factory = sqlite3.Row
            cursor = conn.execute(
                """
                SELECT v.answer_id, a.question, a.answer, a.sources, v.vote, v.user_id,
                       COALESCE(v.guild_id, a.guild_id) AS guild_id,
                       COALESCE(v.channel_id, a.channel_id) AS channel_id,
                       a.created_at AS answered_at, v.created_at AS voted_at
                FROM votes v LEFT JOIN answers a ON a.answer_id = v.answer_id
                ORDER BY v.created_at, v.rowid
                """
            )
            rows = [dict(row) for row in cursor]
        for row in rows:
            row["sources"] = json.loads(row["sources"]) if row["sources"] else []
            row["answered_at"] = _iso(row["answered_at"])
            row["voted_at"] = _iso(row["voted_at"])
        return rows

    def voted_down(self, since: float | None = None) -> list[tuple[str, float]]:
        """(question, time of the last vote) of each answer with more 👎 than 👍, the last
        vote at or after `since`; oldest first. For `dossier gaps` (bot.gaps)."""
        if not self.path.exists():
            return []
        with self._connect() as conn:
            rows = conn.execute(
                """
                SELECT a.question, MAX(v.created_at) AS last
                FROM votes v JOIN answers a ON a.answer_id = v.answer_id
                GROUP BY v.answer_id HAVING SUM(v.vote) < 0 AND MAX(v.created_at) >= ?
                ORDER BY last
                """,
                (since if since is not None else float("-inf"),),
            ).fetchall()
        return [(str(question), float(last)) for question, last in rows]

    def export(self, out: TextIO, fmt: str = "jsonl") -> int:
        """Write every vote as JSON lines or CSV (sources as a JSON string); returns the count."""
        if fmt not in FORMATS:
            raise ConfigError(f"Unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
        rows = self.rows() if self.path.exists() else []
        if fmt == "jsonl":
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS)
            writer.writeheader()
            for row in rows:
                writer.writerow({**row, "sources": json.dumps(row["sources"], ensure_ascii=False)})
        return len(rows)


def export_feedback(settings: Settings, out: TextIO, fmt: str = "jsonl") -> int:
    """`dossier feedback export`: write the stored votes to `out`; returns how many."""
    return FeedbackStore.for_settings(settings).export(out, fmt)
