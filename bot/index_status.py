"""What `dossier status` and `dossier docs` report: read from the index without loading the model."""

from __future__ import annotations

from typing import Any

from bot.types import DocumentInfo, IndexStatus
from dossier_common.errors import StoreError
from dossier_common.settings import Settings, model_name
from index.layout import Layout
from index.manifest import open_for_reading
from index.store import count_vectors, describe_store, missing_vectors


def index_status(settings: Settings) -> IndexStatus:
    """Documents, chunks, vectors and the last ingest; a problem (vectors lost, a read-only
    home) is reported in `problem` rather than raised, so the rest of the status holds."""
    path = Layout(settings.home).manifest
    stats: dict[str, Any] = {"documents": 0, "chunks": 0, "last_ingest": None, "model": None}
    if path.exists():
        manifest = open_for_reading(path)
        try:
            stats = manifest.stats()
        finally:
            manifest.close()
    vectors: int | None = None
    try:
        vectors = count_vectors(settings, stats["model"] or model_name(settings.embedding_model))
        lost = stats["chunks"] and not vectors
        problem = str(missing_vectors(settings, stats["documents"])) if lost else ""
    except StoreError as err:
        problem = str(err)
    return IndexStatus(
        home=str(settings.home.resolve()),
        store=describe_store(settings),
        collection=settings.collection,
        model=stats["model"] or model_name(settings.embedding_model),
        answerer=settings.llm,
        documents=stats["documents"],
        chunks=stats["chunks"],
        last_ingest=stats["last_ingest"],
        vectors=vectors,
        problem=problem,
    )


def indexed_documents(settings: Settings) -> list[DocumentInfo]:
    """Every indexed document (none when nothing was ingested yet)."""
    path = Layout(settings.home).manifest
    if not path.exists():
        return []
    manifest = open_for_reading(path)
    try:
        rows = manifest.documents()
    finally:
        manifest.close()
    return [DocumentInfo(r["source"], r["title"], r["n_chunks"], r["chars"], r["ingested_at"]) for r in rows]
