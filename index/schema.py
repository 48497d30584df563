"""The manifest's schema: its tables, their version and the migrations between versions,
and how its SQLite file is opened read-only, judged damaged and set aside.

The meta key `schema_version` records which migrations have run; a migration never drops
tables it does not know, so tables added by other features (created with IF NOT EXISTS)
survive it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path

from dossier_common.errors import CorruptIndexError
from index.periods import OPENING_CHARS, document_period

log = logging.getLogger(__name__)

SCHEMA_VERSION = 4

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    source TEXT PRIMARY KEY,
    root TEXT NOT NULL,
    path TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    n_chunks INTEGER NOT NULL,
    ingested_at REAL NOT NULL,
    period TEXT               -- index.periods.DocumentPeriod as JSON; NULL before schema 4
);
CREATE TABLE IF NOT EXISTS chunks (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    ord INTEGER NOT NULL,
    text TEXT NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    title TEXT NOT NULL,
    section TEXT NOT NULL,
    page INTEGER,
    tokens INTEGER NOT NULL,
    language TEXT            -- index.languages.detect_language of the text; NULL before schema 3
);
CREATE INDEX IF NOT EXISTS chunks_by_source ON chunks(source, ord);
CREATE TABLE IF NOT EXISTS pending (id TEXT PRIMARY KEY);
-- Chunks of a large file already in Chroma (with their sentence rows) but not committed yet.
CREATE TABLE IF NOT EXISTS staged (id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS sentences (
    chunk_id TEXT NOT NULL,
    start INTEGER NOT NULL,  -- relative to the chunk's text
    "end" INTEGER NOT NULL,
    kind INTEGER NOT NULL,   -- 0 sentence, 1 clause of a long sentence
    vector BLOB NOT NULL     -- float16, from the chunk's own forward pass
);
CREATE INDEX IF NOT EXISTS sentences_by_chunk ON sentences(chunk_id);
CREATE TABLE IF NOT EXISTS briefs (
    source TEXT PRIMARY KEY,
    sentences TEXT NOT NULL  -- JSON [[start, end, score], ...]: offsets into the file's text
);
"""


def corrupt(path: Path, err: BaseException) -> CorruptIndexError:
    detail = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
    return CorruptIndexError(
        f"The index manifest {path} is damaged ({detail}). Run `dossier ingest PATH --full` to rebuild "
        "it from the documents (the damaged file is kept beside it)."
    )


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to an SQLite file, even in a folder we may not write to."""
    uri = f"{path.resolve().as_uri()}?mode=ro"
    db = sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False, isolation_level=None)
    try:
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        # Reading a WAL database needs its -shm file, which a read-only folder cannot get;
        # nobody can write there either, so the file cannot change under us.
        db.close()
        log.info("opening %s as immutable (read-only folder)", path)
        uri = f"{path.resolve().as_uri()}?immutable=1"
        db = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
    return db


def set_aside(path: Path) -> Path:
    """Move a damaged manifest (and its WAL files) out of the way; returns its new name."""
    target = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    for suffix in ("", "-wal", "-shm"):
        part = path.with_name(path.name + suffix)
        if part.exists():
            os.replace(part, target.with_name(target.name + suffix))
    return target


def v1_to_v2(db: sqlite3.Connection) -> None:
    """Files are identified by their real path. Version 1 keyed them by display name only, so
    one file ingested through a folder and through its parent could be recorded twice: keep
    the most recent record and let the next ingest delete the others' vectors (via pending)."""
    dupes = db.execute(
        "SELECT source FROM files f WHERE EXISTS (SELECT 1 FROM files g WHERE g.path = f.path AND "
        "(g.ingested_at > f.ingested_at OR (g.ingested_at = f.ingested_at AND g.source > f.source)))"
    ).fetchall()
    for (source,) in dupes:
        ids = [r[0] for r in db.execute("SELECT id FROM chunks WHERE source = ?", (source,))]
        db.executemany("INSERT OR IGNORE INTO pending(id) VALUES (?)", ((i,) for i in ids))
        db.executemany("DELETE FROM sentences WHERE chunk_id = ?", ((i,) for i in ids))
        db.execute("DELETE FROM chunks WHERE source = ?", (source,))
        db.execute("DELETE FROM files WHERE source = ?", (source,))
        db.execute("DELETE FROM briefs WHERE source = ?", (source,))
    db.execute("CREATE UNIQUE INDEX IF NOT EXISTS files_by_path ON files(path)")


def v2_to_v3(db: sqlite3.Connection) -> None:
    """Chunks record their language (detected at ingest). Existing rows keep NULL, and readers
    detect it from the text: nothing is re-embedded. A manifest created by this version already
    has the column (SCHEMA runs before the migrations)."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(chunks)")}
    if "language" not in columns:
        db.execute("ALTER TABLE chunks ADD COLUMN language TEXT")


def v3_to_v4(db: sqlite3.Connection) -> None:
    """Files record the period they cover (index.periods). It is read from what the manifest
    already holds (names, title, the start of the text), so nothing is loaded or embedded again."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(files)")}
    if "period" not in columns:
        db.execute("ALTER TABLE files ADD COLUMN period TEXT")
    rows = db.execute(
        "SELECT source, path, title, substr(text, 1, ?) FROM files WHERE period IS NULL", (OPENING_CHARS,)
    ).fetchall()
    for source, path, title, opening in rows:
        period = document_period((Path(path).name, source, title), opening)
        db.execute("UPDATE files SET period = ? WHERE source = ?", (period.to_json(), source))


# MIGRATIONS[n] brings a manifest from schema n to n + 1, inside one transaction.
MIGRATIONS = {1: v1_to_v2, 2: v2_to_v3, 3: v3_to_v4}
