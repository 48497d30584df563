"""The vector side of the index: a Chroma collection, embedded or on a server.

Chroma holds ids, vectors and chunk texts. What is *committed* (visible to readers) is
decided by the manifest (index/manifest.py); vectors that Chroma holds but the manifest
does not are leftovers of an interrupted run and are cleaned up by the next one.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from dossier_common.errors import ModelMismatchError, StoreError
from dossier_common.settings import Settings
from dossier_common.urls import display_url
from index.layout import Layout
from index.schema import connect_read_only

log = logging.getLogger(__name__)

_CLIENTS: dict[str, Any] = {}
_CLIENTS_LOCK = threading.Lock()
# Chroma folder -> the private copy read instead, for folders this account may not write to.
_COPIES: dict[str, Path] = {}


def _read_only_copy(layout: Layout) -> Path:
    """A private copy of a Chroma folder this account may not write to.

    Embedded Chroma writes to its folder even to read (its own bookkeeping), so a read-only
    DOSSIER_HOME (say, a bot account sharing a folder) is read through a copy in the temp
    folder, made again whenever the index changes (`release_client`)."""
    folder, db = layout.chroma.resolve(), layout.chroma_db.name
    copy = Path(tempfile.mkdtemp(prefix="dossier-chroma-"))
    atexit.register(shutil.rmtree, copy, ignore_errors=True)
    shutil.copytree(folder, copy, dirs_exist_ok=True, ignore=shutil.ignore_patterns(f"{db}*"))
    source = connect_read_only(folder / db)
    target = sqlite3.connect(copy / db)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    log.info("reading the read-only Chroma folder %s through a copy in %s", folder, copy)
    return copy


def _client(settings: Settings) -> Any:
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        if not url.hostname:
            raise StoreError(f"DOSSIER_CHROMA_URL is not a URL: {display_url(settings.chroma_url)!r}")
        key = settings.chroma_url
        factory = lambda: chromadb.HttpClient(  # noqa: E731
            host=url.hostname,
            port=url.port or (443 if url.scheme == "https" else 8000),
            ssl=url.scheme == "https",
            settings=chroma_settings,
        )
    else:
        path = Layout(settings.home).chroma.resolve()
        path.mkdir(parents=True, exist_ok=True)
        key = str(path)
        factory = lambda: chromadb.PersistentClient(path=str(path), settings=chroma_settings)  # noqa: E731
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            try:
                _CLIENTS[key] = factory()
            except Exception as err:
                where = display_url(settings.chroma_url) if settings.chroma_url else key
                read_only = "readonly database" in str(err) or isinstance(err, PermissionError)
                if read_only and not settings.chroma_url:
                    try:
                        copy = _read_only_copy(Layout(settings.home))
                        _CLIENTS[key] = chromadb.PersistentClient(path=str(copy), settings=chroma_settings)
                        _COPIES[key] = copy
                        return _CLIENTS[key]
                    except Exception:
                        log.warning("could not read a copy of %s", key, exc_info=True)
                if read_only:
                    # Embedded Chroma writes to its folder even to read (its own bookkeeping).
                    raise StoreError(
                        f"Cannot open the Chroma index at {where}: embedded Chroma needs write access to "
                        "that folder. Give this account write access to DOSSIER_HOME, or serve the index "
                        "with `chroma run` and set DOSSIER_CHROMA_URL."
                    ) from err
                raise StoreError(f"Cannot open the Chroma index at {where}: {err}") from err
        return _CLIENTS[key]


def release_client(settings: Settings) -> None:
    """Forget (and stop) this process's embedded client of `settings.home`: the next one reloads
    what other processes wrote, and the folder may be moved or deleted meanwhile.

    An embedded Chroma client keeps its vector index in memory and does not see vectors that
    another process (a watcher, `dossier ingest`) added after it opened. Chroma shares one
    "system" per folder among its clients; swapping it makes every client of that folder,
    including collections already handed out, use the fresh one.
    """
    from chromadb.api.shared_system_client import SharedSystemClient

    key = str(Layout(settings.home).chroma.resolve())
    with _CLIENTS_LOCK:
        _CLIENTS.pop(key, None)
        copy = _COPIES.pop(key, None)
        ident = str(copy) if copy is not None else key
        old = SharedSystemClient._identifier_to_system.pop(ident, None)
        SharedSystemClient._identifier_to_refcount.pop(ident, None)
    if old is not None:
        try:
            old.stop()
        except Exception:
            log.debug("stopping the old Chroma system failed", exc_info=True)
    if copy is not None:
        shutil.rmtree(copy, ignore_errors=True)


def missing_vectors(settings: Settings, documents: int) -> StoreError:
    """The error for a manifest that lists documents whose vector store has gone."""
    return StoreError(
        f"The vector store ({describe_store(settings)}) is missing or empty, but the index lists "
        f"{documents} documents: run `dossier ingest PATH` to rebuild it."
    )


def count_vectors(settings: Settings, model: str) -> int:
    """Vectors in the collection; 0 when it (or the embedded store's folder) does not exist."""
    if not settings.chroma_url and not Layout(settings.home).chroma_db.exists():
        return 0  # without creating an empty store as a side effect
    return VectorStore(settings, model=model, create=False, check_model=False).count()


def describe_store(settings: Settings) -> str:
    if settings.chroma_url:
        return display_url(settings.chroma_url)  # status is shown to people who need no password
    return f"embedded: {Layout(settings.home).chroma.resolve()}"


class VectorStore:
    """Thin wrapper over one Chroma collection that knows which model built it."""

    def __init__(
        self,
        settings: Settings,
        *,
        model: str,
        dimension: int | None = None,
        create: bool = True,
        check_model: bool = True,
    ) -> None:
        self.settings = settings
        self.model = model
        self.dimension = dimension
        self.check_model = check_model
        self._client = _client(settings)
        self._collection = self._open(create)

    def _open(self, create: bool) -> Any:
        name = self.settings.collection
        try:
            if create:
                collection = self._client.get_or_create_collection(
                    name,
                    metadata={"embedding_model": self.model, "dimension": self.dimension or 0},
                    configuration={"hnsw": {"space": "cosine"}},
                    embedding_function=None,
                )
            else:
                collection = self._client.get_collection(name, embedding_function=None)
        except Exception as err:
            if not create:
                return None
            raise StoreError(f"Cannot open Chroma collection {name!r}: {err}") from err
        built_with = (collection.metadata or {}).get("embedding_model")
        if self.check_model and built_with and built_with != self.model:
            raise ModelMismatchError(
                f"The index was built with the embedding model {built_with!r}, but DOSSIER_EMBEDDING_MODEL "
                f"selects {self.model!r}. Re-ingest with `dossier ingest PATH --full` or set the model back."
            )
        return collection

    def reopen(self) -> None:
        """Pick up what another process committed: new vectors, or a collection recreated by
        `ingest --full`. Callers make sure no query runs on this store meanwhile."""
        if not self.settings.chroma_url:
            release_client(self.settings)
            self._client = _client(self.settings)
        self._collection = self._open(create=False)

    @property
    def exists(self) -> bool:
        return self._collection is not None

    def count(self) -> int:
        return self._collection.count() if self._collection is not None else 0

    def upsert(
        self,
        ids: Sequence[str],
        embeddings: Sequence[Sequence[float]],
        documents: Sequence[str],
        metadatas: Sequence[dict[str, Any]],
    ) -> None:
        step = self._batch()
        for i in range(0, len(ids), step):
            self._collection.upsert(
                ids=list(ids[i : i + step]),
                embeddings=[list(v) for v in embeddings[i : i + step]],
                documents=list(documents[i : i + step]),
                metadatas=list(metadatas[i : i + step]),
            )

    def delete(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        if not ids or self._collection is None:
            return
        step = self._batch()
        for i in range(0, len(ids), step):
            self._collection.delete(ids=ids[i : i + step])

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of these chunk ids (those that exist)."""
        if self._collection is None or not ids:
            return {}
        got = self._collection.get(ids=list(ids), include=["embeddings"])
        return {
            i: np.asarray(v, dtype=np.float32) for i, v in zip(got["ids"], got["embeddings"], strict=True)
        }

    def all_ids(self) -> set[str]:
        if self._collection is None:
            return set()
        found: set[str] = set()
        step, offset = 5000, 0
        while True:
            page = self._collection.get(include=[], limit=step, offset=offset)["ids"]
            found.update(page)
            if len(page) < step:
                return found
            offset += step

    def query(
        self, embedding: Sequence[float], n: int, sources: Sequence[str] | None = None
    ) -> list[tuple[str, float]]:
        """Nearest chunk ids with cosine similarity, best first (only of `sources` if given)."""
        if self._collection is None or n <= 0:
            return []
        n = min(n, self.count())
        if n == 0:
            return []
        where = {"source": {"$in": list(sources)}} if sources else None
        result = self._collection.query(
            query_embeddings=[list(embedding)], n_results=n, include=["distances"], where=where
        )
        return [(i, 1.0 - d) for i, d in zip(result["ids"][0], result["distances"][0], strict=True)]

    def reset(self) -> None:
        """Drop and recreate the collection (for `--full` and for a model change)."""
        try:
            self._client.delete_collection(self.settings.collection)
        except Exception:  # it may not exist yet
            log.debug("no collection to delete", exc_info=True)
        self.check_model = True
        self._collection = self._open(create=True)

    def _batch(self) -> int:
        try:
            return max(1, min(1000, int(self._client.get_max_batch_size())))
        except Exception:
            return 1000
