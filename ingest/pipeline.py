"""Incremental ingest: discover, load, chunk, embed, upsert, commit, delete.

Invariants (tested): unchanged files cost no embedding; a changed file's old chunks are
replaced; a deleted file's chunks are removed; a kill at any moment followed by another run
leaves exactly what a clean run leaves; one writer at a time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from dossier_common.errors import DossierError
from dossier_common.settings import Settings
from dossier_common.urls import is_url
from index.briefs import BriefSentence, brief_of
from index.chunks import Chunk
from index.layout import Layout
from index.manifest import FileRecord, Manifest, SentenceRows
from index.sentences import sentence_spans
from index.store import VectorStore
from ingest.chunking import chunk_document
from ingest.loaders import Budget, LoadedDocument, LoadError, discover, file_hash, load_file
from ingest.naming import unique_name
from ingest.opening import (
    DocumentEmbedder,
    disk_full_explained,
    open_for_full,
    open_manifest,
    open_store,
    recover,
)
from ingest.sidecar import trusted_url

log = logging.getLogger(__name__)

# Files are committed in groups of about this many model batches of new chunks: enough to
# keep the model busy, few enough that a kill loses little work.
_GROUP_BATCHES = 4


class Progress(Protocol):
    """Told how far an ingest has got, for a front end to show (the CLI draws a bar)."""

    def start(self, total: int) -> None:
        """`total` files were found and are about to be looked at."""

    def advance(self, name: str) -> None:
        """The next file, `name`, is being looked at (unchanged files included)."""

    def finish(self) -> None:
        """The run is over, whether it completed or not."""


@dataclass(frozen=True)
class Failure:
    path: str
    reason: str


@dataclass(frozen=True)
class FileReport:
    """What reading one ingested file found (see `FileNotes`)."""

    path: str
    tables: int = 0
    ocr_pages: int = 0
    skipped_pages: tuple[int, ...] = ()
    advice: str = ""


@dataclass(frozen=True)
class IngestReport:
    added: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    failed: tuple[Failure, ...] = ()
    skipped: tuple[Failure, ...] = ()
    files: tuple[FileReport, ...] = ()  # each file read by this run (added or updated)
    chunks: int = 0  # in the index after this run
    embedded: int = 0  # chunks embedded by this run
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["failed"] = [asdict(f) for f in self.failed]
        out["skipped"] = [asdict(f) for f in self.skipped]
        out["files"] = [{**asdict(f), "skipped_pages": list(f.skipped_pages)} for f in self.files]
        out["seconds"] = round(self.seconds, 3)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IngestReport:
        """The inverse of `to_dict` (a report sent by another process)."""
        problems = {key: tuple(Failure(**f) for f in data.get(key, ())) for key in ("failed", "skipped")}
        files = tuple(
            FileReport(**{**f, "skipped_pages": tuple(f.get("skipped_pages", ()))})
            for f in data.get("files", ())
        )
        return cls(**{**data, **problems, "files": files})

    @property
    def ok(self) -> bool:
        """False when files were given but none could be ingested."""
        return not self.failed or bool(self.added or self.updated or self.unchanged)

    def summary(self) -> str:
        return (
            f"{self.added} added, {self.updated} updated, {self.deleted} deleted, {self.unchanged} unchanged, "
            f"{len(self.failed)} failed; {self.chunks} chunks in the index, {self.embedded} embedded "
            f"in {self.seconds:.1f} s"
        )


def budget_of(settings: Settings) -> Budget:
    return Budget(
        pdf_pages=settings.max_pdf_pages,
        unzipped_bytes=int(settings.max_unzipped_mb * 1024 * 1024),
        text_chars=settings.max_text_chars,
    )


@dataclass
class _Pending:
    doc: LoadedDocument
    root: Path
    chunks: list[Chunk]
    new: bool
    to_embed: list[Chunk] = field(default_factory=list)


def ingest_paths(
    paths: Sequence[Path],
    settings: Settings,
    embedder: DocumentEmbedder,
    *,
    full: bool = False,
    progress: Progress | None = None,
    on_group: Callable[[int], None] | None = None,
    lock_wait: float = 0,
) -> IngestReport:
    """Bring the index in line with the files under `paths` (incrementally unless `full`).

    `progress` hears of each file as it is looked at; `on_group(embedded)` runs after each
    commit (it may raise to end the run there: what was committed stays)."""
    started = time.perf_counter()
    with Layout(settings.home).writer_lock(lock_wait), disk_full_explained(settings):
        manifest = open_manifest(settings, full)
        try:
            store, rebuild = open_for_full(settings, manifest, embedder) if full else (None, False)
            if store is None:
                store = open_store(settings, manifest, embedder, full)
            recover(manifest, store)
            report = _run(paths, settings, embedder, manifest, store, progress, on_group, rebuild=rebuild)
            return IngestReport(
                **{**report, "chunks": manifest.chunk_count(), "seconds": time.perf_counter() - started}
            )
        finally:
            manifest.close()


def _run(
    paths: Sequence[Path],
    settings: Settings,
    embedder: DocumentEmbedder,
    manifest: Manifest,
    store: VectorStore,
    progress: Progress | None,
    on_group: Callable[[int], None] | None,
    *,
    rebuild: bool = False,
) -> dict[str, Any]:
    """One pass over the files. `rebuild`: re-embed every file in place (`--full`), then drop
    the records of files this run did not ingest."""
    counts = {"added": 0, "updated": 0, "deleted": 0, "unchanged": 0, "embedded": 0}
    failed: list[Failure] = []
    files: list[FileReport] = []
    found, skipped_files = discover([Path(p) for p in paths])
    skipped = [Failure(str(s.path), s.reason) for s in skipped_files if s.reason != "does not exist"]
    known = manifest.files()

    # Deletions: files recorded under an ingested folder (or named directly) that are gone now.
    seen_sources: set[str] = set()
    present_paths = {str(f.resolve()) for f, _ in found}
    doomed = []
    for arg in paths:
        arg_abs = Path(arg).resolve()
        for record in known.values():
            recorded = Path(record.path)
            inside = recorded == arg_abs or arg_abs in recorded.parents
            if inside and str(recorded) not in present_paths and not recorded.exists():
                doomed.append(record.source)
    if doomed:
        store.delete(manifest.remove_files(sorted(set(doomed))))
        manifest.clear_pending()
        counts["deleted"] = len(set(doomed))
        known = manifest.files()
    # A file is identified by where it really is; its source name is only for display.
    by_path = {record.path: record for record in known.values()}
    missing_args = [s for s in skipped_files if s.reason == "does not exist"]
    for s in missing_args:
        if not any(Path(r.path) == s.path.resolve() for r in known.values()):
            failed.append(Failure(str(s.path), "does not exist"))

    max_tokens = 0  # read from the model when the first file needs chunking
    max_bytes = int(settings.max_file_mb * 1024 * 1024)
    budget = budget_of(settings)
    part_size = _GROUP_BATCHES * settings.embed_batch_size
    staged = manifest.staged()  # embedded by an interrupted run: not embedded again
    rebuilt: set[str] = set()
    group: list[_Pending] = []
    group_size = 0
    if progress is not None:
        progress.start(len(found))
    try:
        for path, root in found:
            if progress is not None:
                progress.advance(path.name)
            real = str(path.resolve())
            previous = by_path.get(real)
            try:
                digest = file_hash(path)
            except OSError as err:
                failed.append(Failure(str(path), _os_reason(err)))
                continue
            # A fetched page is known by its URL (ingest.fetch records it in a signed NAME.url sidecar).
            url = trusted_url(path, settings, digest, previous.source if previous else None)
            if previous is not None and (
                url == previous.source or (url is None and not is_url(previous.source))
            ):
                source = previous.source  # stable, so unchanged chunks keep their ids
            elif url is not None:
                if url in seen_sources or any(r.source == url and r.path != real for r in known.values()):
                    failed.append(Failure(str(path), f"another file already provides the source {url!r}"))
                    continue
                source = url
            else:
                taken = _NamesTaken(known, real, seen_sources)
                source = unique_name(path.relative_to(root).as_posix(), path, taken)
            seen_sources.add(source)
            if (
                not rebuild
                and previous is not None
                and previous.content_hash == digest
                and previous.source == source
            ):
                counts["unchanged"] += 1
                continue
            try:
                doc = load_file(path, root, max_bytes=max_bytes, budget=budget)
                if doc.source != source:
                    doc = replace(doc, source=source)
                max_tokens = max_tokens or min(settings.chunk_tokens, embedder.max_tokens)
                chunks = chunk_document(
                    doc, embedder.count_tokens, max_tokens=max_tokens, overlap=settings.chunk_overlap
                )
                if len(chunks) > settings.max_chunks_per_file:
                    raise LoadError(
                        f"{len(chunks):,} chunks, over the {settings.max_chunks_per_file:,} limit "
                        "(DOSSIER_MAX_CHUNKS_PER_FILE)"
                    )
            except LoadError as err:
                failed.append(Failure(str(path), err.reason))
                continue
            notes = doc.notes
            files.append(
                FileReport(str(path), notes.tables, notes.ocr_pages, notes.skipped_pages, notes.advice)
            )
            keep = previous is not None and previous.source == source and not rebuild
            old_ids = manifest.chunk_ids(source) if keep else set()
            item = _Pending(doc, root, chunks, new=previous is None or rebuild)
            rebuilt.add(real)
            item.to_embed = [c for c in chunks if c.id not in old_ids and c.id not in staged]
            if len(item.to_embed) > part_size:
                counts["embedded"] += _stage_in_parts(item, part_size, embedder, manifest, store, on_group)
            group.append(item)
            # Every chunk waiting for the commit counts, embedded or not: a large file's chunks
            # were embedded in parts above, yet its text and chunks stay here until its commit,
            # and a run of large files would otherwise all wait in memory until the end.
            group_size += len(item.chunks)
            if group_size >= _GROUP_BATCHES * settings.embed_batch_size:
                counts["embedded"] += _flush(group, embedder, manifest, store, counts)
                if on_group:
                    on_group(counts["embedded"])
                group, group_size = [], 0
        if group:
            counts["embedded"] += _flush(group, embedder, manifest, store, counts)
            if on_group:
                on_group(counts["embedded"])
        if rebuild:
            # What a rebuild from nothing would not have: files elsewhere, or failing now.
            dropped = [r.source for r in manifest.files().values() if r.path not in rebuilt]
            if dropped:
                store.delete(manifest.remove_files(dropped))
                manifest.clear_pending()
        # Parts staged by an interrupted run whose file changed or went away meanwhile.
        leftover = manifest.staged()
        if leftover:
            manifest.unstage(leftover)
            store.delete(leftover)
            manifest.clear_pending(leftover)
    finally:
        if progress is not None:
            progress.finish()
    return {**counts, "failed": tuple(failed), "skipped": tuple(skipped), "files": tuple(files)}


def _flush(
    group: list[_Pending], embedder: DocumentEmbedder, manifest: Manifest, store: VectorStore, counts: dict
) -> int:
    fresh = [c for item in group for c in item.to_embed]
    sentences = _embed(fresh, embedder, manifest, store)
    now = time.time()
    entries = [
        (
            FileRecord(
                source=item.doc.source,
                root=str(item.root.resolve()),
                path=str(item.doc.path.resolve()),
                content_hash=item.doc.content_hash,
                title=item.doc.title,
                n_chunks=len(item.chunks),
                ingested_at=now,
            ),
            item.doc.text,
            item.chunks,
        )
        for item in group
    ]
    briefs = {item.doc.source: _brief(item, sentences, manifest) for item in group}
    stale = manifest.commit_files(entries, sentences, briefs)
    if stale:
        store.delete(stale)
        manifest.clear_pending(stale)
    for item in group:
        counts["added" if item.new else "updated"] += 1
    return len(fresh)


def _brief(
    item: _Pending, fresh: dict[str, list[tuple[int, int, int, bytes]]], manifest: Manifest
) -> list[BriefSentence]:
    """The document's key sentences, from the sentence vectors its chunks already have (new
    chunks: this run's; kept chunks: the manifest's)."""
    kept = [c.id for c in item.chunks if c.id not in fresh]
    stored = {**manifest.sentence_vectors(kept), **fresh} if kept else fresh
    return brief_of(item.doc.text, [(c.id, c.start) for c in item.chunks], stored)


class _NamesTaken:
    """Source names used by other files: recorded ones (except the file at `real`) and
    those given out earlier in this run."""

    def __init__(self, known: dict[str, FileRecord], real: str, this_run: set[str]) -> None:
        self._known = known
        self._real = real
        self._this_run = this_run

    def __contains__(self, name: object) -> bool:
        if name in self._this_run:
            return True
        record = self._known.get(name) if isinstance(name, str) else None
        return record is not None and record.path != self._real


def _embed(
    fresh: list[Chunk], embedder: DocumentEmbedder, manifest: Manifest, store: VectorStore
) -> dict[str, SentenceRows]:
    """Embed `fresh` into Chroma (recorded as pending first); returns their sentence rows."""
    sentences: dict[str, SentenceRows] = {}
    if not fresh:
        return sentences
    manifest.add_pending(c.id for c in fresh)  # before Chroma sees them: a kill leaves a trace
    texts = [c.embed_text for c in fresh]
    embed_with_spans = getattr(embedder, "embed_with_spans", None)
    if embed_with_spans is None:
        vectors = embedder.embed_documents(texts)
    else:
        # Sentence vectors come from the same forward pass, so answering needs no model call
        # beyond the question's.
        spans = [sentence_spans(c.text) for c in fresh]
        shifted = [
            [(a + c.text_offset, b + c.text_offset) for a, b, _ in s]
            for c, s in zip(fresh, spans, strict=True)
        ]
        vectors, span_vectors = embed_with_spans(texts, shifted)
        for c, s, rows in zip(fresh, spans, span_vectors, strict=True):
            sentences[c.id] = [(a, b, k, row.tobytes()) for (a, b, k), row in zip(s, rows, strict=True)]
    store.upsert([c.id for c in fresh], vectors, [c.text for c in fresh], [chunk_metadata(c) for c in fresh])
    return sentences


def _stage_in_parts(
    item: _Pending,
    part_size: int,
    embedder: DocumentEmbedder,
    manifest: Manifest,
    store: VectorStore,
    on_part: Callable[[int], None] | None,
) -> int:
    """Embed a large file's new chunks part by part, each part staged as soon as it is in
    Chroma: a kill keeps the parts done, and the next run embeds only the rest. The file
    still becomes visible to readers whole, when `_flush` commits it. `on_part` is called
    after each part (the watcher may stop there: the parts are kept)."""
    done = 0
    for i in range(0, len(item.to_embed), part_size):
        part = item.to_embed[i : i + part_size]
        manifest.stage([c.id for c in part], _embed(part, embedder, manifest, store))
        done += len(part)
        if on_part:
            on_part(done)
    item.to_embed = []
    return done


def chunk_metadata(chunk: Chunk) -> dict[str, Any]:
    """What the vector store keeps beside a chunk's vector and text."""
    meta: dict[str, Any] = {"source": chunk.source, "ord": chunk.ord, "title": chunk.title[:200]}
    if chunk.section:
        meta["section"] = chunk.section[:200]
    if chunk.page is not None:
        meta["page"] = chunk.page
    return meta


def _os_reason(err: OSError) -> str:
    if isinstance(err, FileNotFoundError):
        return "file vanished while reading"
    if isinstance(err, PermissionError):
        return "permission denied"
    return f"cannot read: {err.strerror or err}"


__all__ = ["DossierError", "Failure", "IngestReport", "Progress", "ingest_paths"]
