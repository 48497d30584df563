"""The record of what is indexed: files, their chunks, and vectors not yet accounted for.

A SQLite database under DOSSIER_HOME. A file's chunks become visible to readers in the
same transaction that records the file, so a reader sees every file whole or not at all.
The `pending` table lists vector ids that may exist in Chroma without being committed here
(written before each upsert, cleared after the commit or the delete); the next run
removes whatever is left in it, so a kill at any moment converges to a clean state.

Files are identified by their resolved `path` (unique); `source` is the short name shown in
citations (unique too, see ingest/naming.py). The tables and their migrations are in
index/schema.py; every query on them, for the writer (ingest) and for readers (the bot), is a
method here.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dossier_common.errors import StoreError
from index.chunks import Chunk
from index.languages import detect_language
from index.periods import OPENING_CHARS, DocumentPeriod, document_period
from index.schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION, connect_read_only, corrupt

log = logging.getLogger(__name__)

SentenceRows = list[tuple[int, int, int, bytes]]


@dataclass(frozen=True)
class FileRecord:
    source: str
    root: str
    path: str
    content_hash: str
    title: str
    n_chunks: int
    ingested_at: float


def chunk_language(row: sqlite3.Row) -> str:
    """The language of a chunk row: as recorded at ingest, or detected from its text for rows
    written before schema 3 (NULL, or no column in a manifest a reader opened unmigrated)."""
    # sqlite3.Row: `in` looks at the values, keys() at the column names.
    language = row["language"] if "language" in row.keys() else None  # noqa: SIM118
    return str(language) if language else detect_language(row["text"])


def open_for_reading(path: Path) -> Manifest:
    """The manifest as readers open it: read-write when they may (so the schema is current),
    read-only when DOSSIER_HOME is not writable for them."""
    try:
        return Manifest(path)
    except (sqlite3.OperationalError, PermissionError) as err:
        log.info("opening %s read-only: %s", path, err)
        return Manifest(path, readonly=True)


class Manifest:
    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        if readonly and not path.exists():
            raise FileNotFoundError(path)
        if not readonly:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.db = self._connect(path, readonly)
        try:
            if not readonly:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
            # A damaged file otherwise shows up later, in whichever query reads the bad page,
            # or not at all (an ingest would report "unchanged").
            problems = [r[0] for r in self.db.execute("PRAGMA quick_check(3)")]
            if problems != ["ok"]:
                raise sqlite3.DatabaseError("; ".join(problems))
            if not readonly:
                self.db.executescript(SCHEMA)
                self._migrate()
        except sqlite3.OperationalError:
            self.db.close()  # locked, or no write access: not damage
            raise
        except sqlite3.DatabaseError as err:
            self.db.close()
            raise corrupt(path, err) from None

    @staticmethod
    def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
        if readonly:
            db = connect_read_only(path)
        else:
            db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        db.row_factory = sqlite3.Row
        return db

    def close(self) -> None:
        self.db.close()

    def schema_version(self) -> int:
        # Manifests written before versioning hold the version 1 tables and no key.
        return int(self.get_meta("schema_version") or 1)

    def _migrate(self) -> None:
        if self.schema_version() == SCHEMA_VERSION:
            return
        with self.transaction() as db:
            version = self.schema_version()  # again: another process may have just migrated
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"The index in {self.path.parent} was written by a newer Dossier "
                    f"(manifest schema {version}, this one knows up to {SCHEMA_VERSION}); upgrade Dossier."
                )
            for step in range(version, SCHEMA_VERSION):
                log.info("migrating the manifest from schema %d to %d", step, step + 1)
                MIGRATIONS[step](db)
            self.set_meta(db, "schema_version", SCHEMA_VERSION)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- meta -------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, db: sqlite3.Connection, key: str, value: Any) -> None:
        db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, str(value)))

    def generation(self) -> int:
        """Bumped by every commit; readers compare it to know when to refresh."""
        return int(self.get_meta("generation") or 0)

    def _bump(self, db: sqlite3.Connection) -> None:
        db.execute(
            "INSERT INTO meta(key, value) VALUES ('generation', '1') "
            "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )
        self.set_meta(db, "last_ingest", time.time())
        self.set_meta(db, "writer_pid", os.getpid())

    # -- files ------------------------------------------------------------------------------
    def files(self) -> dict[str, FileRecord]:
        rows = self.db.execute(
            "SELECT source, root, path, content_hash, title, n_chunks, ingested_at FROM files"
        ).fetchall()
        return {r["source"]: FileRecord(**dict(r)) for r in rows}

    def chunk_ids(self, source: str) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT id FROM chunks WHERE source = ?", (source,))}

    def all_chunk_ids(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT id FROM chunks")}

    def chunk_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    def file_text(self, source: str) -> str | None:
        row = self.db.execute("SELECT text FROM files WHERE source = ?", (source,)).fetchone()
        return row[0] if row else None

    def brief(self, source: str) -> list[tuple[int, int, float]] | None:
        """The file's key sentences (offsets into its text), or None when it has no brief yet
        (an index built before briefs existed)."""
        row = self.db.execute("SELECT sentences FROM briefs WHERE source = ?", (source,)).fetchone()
        return [(int(a), int(b), float(s)) for a, b, s in json.loads(row[0])] if row else None

    def openings(self, chars: int = 400) -> list[tuple[str, str, str]]:
        """(source, title, first `chars` characters of the text) of every committed file."""
        rows = self.db.execute(
            "SELECT source, title, substr(text, 1, ?) FROM files ORDER BY source", (chars,)
        )
        return [(r[0], r[1], r[2]) for r in rows]

    def periods(self) -> dict[str, DocumentPeriod]:
        """The period each committed file covers (empty DocumentPeriod when it states none).
        A manifest opened read-only before its migration to schema 4 has no column: the periods
        are then read from the start of each text, as the migration would."""
        columns = {r[1] for r in self.db.execute("PRAGMA table_info(files)")}
        if "period" in columns:
            rows = self.db.execute("SELECT source, period FROM files").fetchall()
            return {r[0]: DocumentPeriod.from_json(r[1]) for r in rows}
        rows = self.db.execute(
            "SELECT source, path, title, substr(text, 1, ?) FROM files", (OPENING_CHARS,)
        ).fetchall()
        return {r[0]: _period_of(r[0], r[1], r[2], r[3]) for r in rows}

    def documents(self) -> list[sqlite3.Row]:
        """One row per committed file: source, title, chunk count, characters, ingest time."""
        return self.db.execute(
            "SELECT source, title, n_chunks, length(text) AS chars, ingested_at FROM files ORDER BY source"
        ).fetchall()

    def chunks(self, ids: Sequence[str] | None = None) -> list[sqlite3.Row]:
        if ids is None:
            return self.db.execute("SELECT * FROM chunks ORDER BY source, ord").fetchall()
        out: list[sqlite3.Row] = []
        for i in range(0, len(ids), 500):
            part = list(ids[i : i + 500])
            marks = ",".join("?" * len(part))
            out.extend(self.db.execute(f"SELECT * FROM chunks WHERE id IN ({marks})", part).fetchall())
        return out

    def chunk_sources(self) -> dict[str, str]:
        """The source of every committed chunk, by chunk id (ids and sources only: cheap)."""
        return dict(self.db.execute("SELECT id, source FROM chunks").fetchall())

    def chunk_texts(self) -> Iterator[tuple[str, str, str, str]]:
        """(id, title, section, text) of every committed chunk, streamed from the database, so
        the collection's texts are never all in memory at once."""
        for row in self.db.execute("SELECT id, title, section, text FROM chunks"):
            yield row[0], row[1], row[2], row[3]

    def file_texts(self) -> Iterator[tuple[str, str, str]]:
        """(source, title, whole text) of every committed file, streamed."""
        for row in self.db.execute("SELECT source, title, text FROM files"):
            yield row[0], row[1], row[2]

    def chunks_of(self, source: str) -> list[sqlite3.Row]:
        """The file's chunks in order."""
        return self.db.execute("SELECT * FROM chunks WHERE source = ? ORDER BY ord", (source,)).fetchall()

    def neighbours(self, source: str, ords: Iterable[int]) -> list[sqlite3.Row]:
        ords = sorted(set(ords))
        if not ords:
            return []
        marks = ",".join("?" * len(ords))
        return self.db.execute(
            f"SELECT * FROM chunks WHERE source = ? AND ord IN ({marks}) ORDER BY ord", [source, *ords]
        ).fetchall()

    # -- writes -----------------------------------------------------------------------------
    def add_pending(self, ids: Iterable[str]) -> None:
        with self.transaction() as db:
            db.executemany("INSERT OR IGNORE INTO pending(id) VALUES (?)", ((i,) for i in ids))

    def pending(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT id FROM pending")}

    def clear_pending(self, ids: Iterable[str] | None = None) -> None:
        with self.transaction() as db:
            if ids is None:
                db.execute("DELETE FROM pending")
            else:
                db.executemany("DELETE FROM pending WHERE id = ?", ((i,) for i in ids))

    def stage(self, ids: Sequence[str], sentences: dict[str, SentenceRows]) -> None:
        """Record chunks whose vectors Chroma now holds, so a kill does not lose them."""
        with self.transaction() as db:
            _put_sentences(db, sentences)
            db.executemany("INSERT OR IGNORE INTO staged(id) VALUES (?)", ((i,) for i in ids))
            db.executemany("DELETE FROM pending WHERE id = ?", ((i,) for i in ids))

    def staged(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT id FROM staged")}

    def unstage(self, ids: Iterable[str]) -> None:
        """Give up staged chunks: their vectors become pending (to delete), their sentences go."""
        ids = list(ids)
        with self.transaction() as db:
            db.executemany("DELETE FROM staged WHERE id = ?", ((i,) for i in ids))
            db.executemany("DELETE FROM sentences WHERE chunk_id = ?", ((i,) for i in ids))
            db.executemany("INSERT OR IGNORE INTO pending(id) VALUES (?)", ((i,) for i in ids))

    def sentence_vectors(self, chunk_ids: Sequence[str]) -> dict[str, SentenceRows]:
        out: dict[str, SentenceRows] = {}
        for i in range(0, len(chunk_ids), 500):
            part = list(chunk_ids[i : i + 500])
            marks = ",".join("?" * len(part))
            for r in self.db.execute(
                f'SELECT chunk_id, start, "end", kind, vector FROM sentences WHERE chunk_id IN ({marks})',
                part,
            ):
                out.setdefault(r[0], []).append((r[1], r[2], r[3], r[4]))
        return out

    def commit_files(
        self,
        entries: Sequence[tuple[FileRecord, str, Sequence[Chunk]]],
        sentences: dict[str, SentenceRows] | None = None,
        briefs: Mapping[str, Sequence[tuple[int, int, float]]] | None = None,
    ) -> set[str]:
        """Replace these files' chunks (and the sentence vectors of new chunks, and their
        briefs) in one transaction. Returns ids no longer used (to delete from Chroma)."""
        stale: set[str] = set()
        sentences = sentences or {}
        briefs = briefs or {}
        with self.transaction() as db:
            _put_sentences(db, sentences)
            for record, text, chunks in entries:
                old = {r[0] for r in db.execute("SELECT id FROM chunks WHERE source = ?", (record.source,))}
                new = {c.id for c in chunks}
                stale |= old - new
                db.execute("DELETE FROM chunks WHERE source = ?", (record.source,))
                # The same file under another name (its URL sidecar changed): that record goes.
                for (other,) in db.execute(
                    "SELECT source FROM files WHERE path = ? AND source != ?", (record.path, record.source)
                ).fetchall():
                    stale |= {r[0] for r in db.execute("SELECT id FROM chunks WHERE source = ?", (other,))}
                    db.execute("DELETE FROM chunks WHERE source = ?", (other,))
                    db.execute("DELETE FROM files WHERE source = ?", (other,))
                    db.execute("DELETE FROM briefs WHERE source = ?", (other,))
                db.executemany(
                    "INSERT OR REPLACE INTO chunks"
                    '(id, source, ord, text, start, "end", title, section, page, tokens, language)'
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            c.id,
                            c.source,
                            c.ord,
                            c.text,
                            c.start,
                            c.end,
                            c.title,
                            c.section,
                            c.page,
                            c.tokens,
                            c.language,
                        )
                        for c in chunks
                    ],
                )
                db.execute(
                    "INSERT OR REPLACE INTO files"
                    "(source, root, path, content_hash, title, text, n_chunks, ingested_at, period)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.source,
                        record.root,
                        record.path,
                        record.content_hash,
                        record.title,
                        text,
                        len(chunks),
                        record.ingested_at,
                        _period_of(record.source, record.path, record.title, text).to_json(),
                    ),
                )
                db.execute(
                    "INSERT OR REPLACE INTO briefs(source, sentences) VALUES (?, ?)",
                    (record.source, json.dumps([list(s) for s in briefs.get(record.source, ())])),
                )
                # The new vectors are now accounted for; the stale ones still need deleting.
                db.executemany("DELETE FROM pending WHERE id = ?", ((c.id,) for c in chunks))
                db.executemany("DELETE FROM staged WHERE id = ?", ((c.id,) for c in chunks))
            db.executemany("INSERT OR IGNORE INTO pending(id) VALUES (?)", ((i,) for i in stale))
            db.executemany("DELETE FROM sentences WHERE chunk_id = ?", ((i,) for i in stale))
            self._bump(db)
        return stale

    def remove_files(self, sources: Iterable[str]) -> set[str]:
        """Forget these files in one transaction. Returns their chunk ids (to delete from Chroma)."""
        gone: set[str] = set()
        with self.transaction() as db:
            for source in sources:
                gone |= {r[0] for r in db.execute("SELECT id FROM chunks WHERE source = ?", (source,))}
                db.execute("DELETE FROM chunks WHERE source = ?", (source,))
                db.execute("DELETE FROM files WHERE source = ?", (source,))
                db.execute("DELETE FROM briefs WHERE source = ?", (source,))
            db.executemany("INSERT OR IGNORE INTO pending(id) VALUES (?)", ((i,) for i in gone))
            db.executemany("DELETE FROM sentences WHERE chunk_id = ?", ((i,) for i in gone))
            self._bump(db)
        return gone

    def clear(self) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM chunks")
            db.execute("DELETE FROM sentences")
            db.execute("DELETE FROM files")
            db.execute("DELETE FROM briefs")
            db.execute("DELETE FROM pending")
            db.execute("DELETE FROM staged")
            db.execute("DELETE FROM meta WHERE key IN ('embedding_model', 'dimension')")
            self._bump(db)

    def set_model(self, model: str, dimension: int) -> None:
        with self.transaction() as db:
            self.set_meta(db, "embedding_model", model)
            self.set_meta(db, "dimension", dimension)

    def stats(self) -> dict[str, Any]:
        return {
            "documents": int(self.db.execute("SELECT COUNT(*) FROM files").fetchone()[0]),
            "chunks": self.chunk_count(),
            "last_ingest": float(self.get_meta("last_ingest") or 0) or None,
            "model": self.get_meta("embedding_model"),
        }


def _period_of(source: str, path: str, title: str, text: str) -> DocumentPeriod:
    # Names first: the file's own name, the name it is cited by (a URL's), then its title.
    return document_period((Path(path).name, source, title), text[:OPENING_CHARS])


def _put_sentences(db: sqlite3.Connection, sentences: dict[str, SentenceRows]) -> None:
    # A chunk embedded again (`ingest --full` in place) replaces its rows rather than doubling them.
    db.executemany("DELETE FROM sentences WHERE chunk_id = ?", ((cid,) for cid in sentences))
    db.executemany(
        'INSERT INTO sentences(chunk_id, start, "end", kind, vector) VALUES (?, ?, ?, ?, ?)',
        [(cid, a, b, k, v) for cid, rows in sentences.items() for a, b, k, v in rows],
    )
