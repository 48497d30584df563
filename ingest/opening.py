"""Opening the index for an ingest run: the manifest (a damaged one set aside on --full), the
vector store for the model in use (a model change refused unless --full), and recovery from
an interrupted run, so that the store holds exactly the committed chunks."""

from __future__ import annotations

import errno
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

from dossier_common.errors import CorruptIndexError, DossierError, ModelMismatchError, StoreError
from dossier_common.settings import Settings
from index.layout import Layout
from index.manifest import Manifest
from index.schema import set_aside
from index.store import VectorStore

log = logging.getLogger(__name__)


class DocumentEmbedder(Protocol):
    name: str

    @property
    def dimension(self) -> int: ...
    @property
    def max_tokens(self) -> int: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...
    def embed_documents(self, texts: list[str]) -> list[list[float]]: ...


@contextmanager
def disk_full_explained(settings: Settings) -> Iterator[None]:
    """A full disk is the user's to fix: one line instead of a traceback. What was committed
    stays, and the next run finishes the job."""
    try:
        yield
    except (OSError, sqlite3.OperationalError) as err:
        full = getattr(err, "errno", None) == errno.ENOSPC or "disk is full" in str(err)
        if not full:
            raise
        raise DossierError(
            f"The disk holding {settings.home} is full; free some space and run the ingest again "
            "(files committed so far are kept)."
        ) from None


def open_manifest(settings: Settings, full: bool) -> Manifest:
    path = Layout(settings.home).manifest
    try:
        return Manifest(path)
    except CorruptIndexError:
        if not full:
            raise
    # --full rebuilds everything from the documents, so a damaged record is only set aside.
    log.warning("the manifest %s is damaged; moved to %s and rebuilt", path, set_aside(path))
    return Manifest(path)


def open_for_full(
    settings: Settings, manifest: Manifest, embedder: DocumentEmbedder
) -> tuple[VectorStore | None, bool]:
    """For `--full` with the model that built the index: the store as it is, and True. The
    rebuild then re-embeds every file and replaces its chunks file by file, so readers keep
    answering from the old chunks until each file's new ones commit. (None, False) when the
    index must be emptied first: another model, or nothing usable to keep."""
    if manifest.get_meta("embedding_model") != embedder.name or manifest.chunk_count() == 0:
        return None, False
    try:
        return open_store(settings, manifest, embedder, full=False), True
    except (ModelMismatchError, StoreError) as err:
        log.warning("rebuilding from an empty index: %s", err)
        return None, False


def open_store(settings: Settings, manifest: Manifest, embedder: DocumentEmbedder, full: bool) -> VectorStore:
    if full:
        store = VectorStore(
            settings, model=embedder.name, dimension=embedder.dimension, check_model=False, create=False
        )
        # Forget the record first: if we die between the two steps, the next run's
        # consistency check sees vectors the manifest does not know and removes them.
        manifest.clear()
        store.reset()
    else:
        recorded = manifest.get_meta("embedding_model")
        if recorded and recorded != embedder.name:
            raise ModelMismatchError(
                f"The index was built with the embedding model {recorded!r}, but DOSSIER_EMBEDDING_MODEL "
                f"selects {embedder.name!r}. Re-ingest with `dossier ingest PATH --full` or set the model back."
            )
        # The dimension is only known once the model is loaded; an unchanged re-ingest never loads it.
        dimension = int(manifest.get_meta("dimension") or 0) or None
        store = VectorStore(settings, model=embedder.name, dimension=dimension or embedder.dimension)
    if manifest.get_meta("embedding_model") != embedder.name:
        manifest.set_model(embedder.name, store.dimension or embedder.dimension)
    return store


def recover(manifest: Manifest, store: VectorStore) -> None:
    """Remove vectors left by an interrupted run, so Chroma holds exactly the committed chunks
    (plus the staged parts of a large file, which this run will commit)."""
    staged = manifest.staged()
    pending = manifest.pending() - manifest.all_chunk_ids() - staged
    if pending:
        log.info("removing %d vectors left by an interrupted run", len(pending))
        store.delete(pending)
    manifest.clear_pending()
    if store.count() != manifest.chunk_count() + len(staged):
        committed = manifest.all_chunk_ids()
        present = store.all_ids()
        lost = staged - present
        if lost:
            manifest.unstage(lost)
            manifest.clear_pending()
        extra = present - committed - staged
        if extra:
            log.info("removing %d vectors the manifest does not know", len(extra))
            store.delete(extra)
        missing = committed - present
        if missing:
            # Vectors lost outside our control (e.g. a wiped server): re-ingest those files.
            sources = {r["source"] for r in manifest.chunks(sorted(missing))}
            log.warning("%d files lost their vectors; they will be ingested again", len(sources))
            manifest.remove_files(sources)
            manifest.clear_pending()
