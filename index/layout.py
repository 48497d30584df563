"""Where an index keeps its state on disk, in one place, and the lock its one writer holds.

Everything lives under one folder, DOSSIER_HOME:

    index.sqlite     the manifest (files, chunks, sentence vectors, briefs)
    chroma/          the embedded vector store (absent when Chroma runs as a server)
    keyword/         the keyword (BM25) indexes saved per manifest generation
    feedback.sqlite  votes on answers
    gaps.sqlite      questions the bot declined (knowledge gaps)
    fetch.key        the key that signs fetched pages' sidecars
    models/          embedding models exported for ONNX Runtime
    writer.lock      held by the one process writing the index; writer.pid names it
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from dossier_common.errors import DossierError, LockedError


class Layout:
    """The paths of one DOSSIER_HOME. Building one touches nothing on disk."""

    def __init__(self, home: Path) -> None:
        self.home = home

    @property
    def manifest(self) -> Path:
        return self.home / "index.sqlite"

    @property
    def chroma(self) -> Path:
        return self.home / "chroma"

    @property
    def chroma_db(self) -> Path:
        """The embedded store's own SQLite file: it exists once vectors have been written."""
        return self.chroma / "chroma.sqlite3"

    @property
    def keyword_cache(self) -> Path:
        return self.home / "keyword"

    @property
    def feedback(self) -> Path:
        return self.home / "feedback.sqlite"

    @property
    def gaps(self) -> Path:
        return self.home / "gaps.sqlite"

    @property
    def fetch_key(self) -> Path:
        return self.home / "fetch.key"

    @property
    def models(self) -> Path:
        return self.home / "models"

    @property
    def lock_file(self) -> Path:
        return self.home / "writer.lock"

    @property
    def writer_pid(self) -> Path:
        return self.home / "writer.pid"

    # What a backup holds, as paths relative to home: SQLite files (copied with SQLite's
    # online backup), folders, and plain files.
    @property
    def sqlite_files(self) -> tuple[Path, ...]:
        return (self.manifest, self.feedback, self.gaps)

    @property
    def folders(self) -> tuple[Path, ...]:
        return (self.chroma, self.keyword_cache)

    @property
    def other_files(self) -> tuple[Path, ...]:
        return (self.fetch_key,)

    @contextmanager
    def writer_lock(self, wait: float = 0) -> Iterator[None]:
        """One writer per index. `wait` is how long to wait for another writer (e.g. the bot's
        watcher thread) before giving up with LockedError."""
        lock = FileLock(str(self.lock_file), timeout=wait, thread_local=False)
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            lock.acquire()
        except Timeout:
            owner = self.writer_pid
            pid = owner.read_text().strip() if owner.exists() else "?"
            who = (
                "Another ingest in this process"
                if pid == str(os.getpid())
                else f"Another dossier process (pid {pid})"
            )
            raise LockedError(
                f"{who} is writing to the index in {self.home}; wait for it to finish and try again."
            ) from None
        except OSError as err:
            raise DossierError(
                f"Cannot write to DOSSIER_HOME ({self.home}): {err.strerror or err}. "
                "Ingest needs write access there."
            ) from None
        try:
            self.writer_pid.write_text(str(os.getpid()))
            yield
        finally:
            lock.release()
