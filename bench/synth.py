"""Real and synthetic indexes for the query, memory, cold-start and concurrency benchmarks.

Embedding 100k chunks for real would take about two hours here, so large indexes are
synthesised from a real one:

1. The *base* is a real `ingest_paths` run (real chunks, real chunk vectors, real sentence
   vectors from the same forward pass) over the PG essays (those the questions cite first)
   plus the first SciFact abstracts. It is cached under `bench/out/` because building it
   costs minutes; the cache key covers the files, the model and the ingest code.
2. An index of N chunks holds the base's files first (all of them, or the first files up to
   N chunks), then perturbed copies of the base until it reaches N chunks. Copy j of a file:
   - source `synthetic-{j:03d}/{source}`, so every copy is a distinct file;
   - text: each word of 3+ letters is, with probability 0.35, replaced by a word of the
     *same length* drawn from the base's own vocabulary by frequency (first-letter case
     kept). Lengths are unchanged, so every chunk's and sentence's character offsets stay
     exact, while BM25 sees different term statistics in every copy;
   - chunk and sentence vectors: the base vector plus Gaussian noise (sigma 0.03 per
     dimension, cosine to the original about 0.86), renormalised; sentence vectors are
     stored as float16 like the real ones;
   - chunk ids are made by `index.chunks.chunk_ids`, as ingest makes them.
   Everything is written through the real seams: `Manifest.commit_files` (with sentence
   rows) and `VectorStore.upsert`.

Built indexes are cached under `bench/out/` too and copied into a temporary DOSSIER_HOME for
each run (`copy_home`), so a benchmark never writes to a shared one.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    OUT,
    code_digest,
    essay_files,
    files_digest,
    link_corpus,
    log,
    scifact_files,
    settings_for,
)

NOISE_SIGMA = 0.03
REPLACE_P = 0.35
_WORD = re.compile(r"[A-Za-z]{3,}")
# The code that decides what the base holds (text, chunks, sentence spans) and how the
# manifest stores it. Other ingest changes (the pipeline's plumbing, embedder options) do not
# change the vectors, so they keep the cache, which costs ~10 minutes to rebuild.
INGEST_CODE = (
    "ingest/chunking.py",
    "index/sentences.py",
    "ingest/loaders/__init__.py",
    "ingest/loaders/discovery.py",
    "ingest/loaders/document.py",
    "ingest/loaders/docx.py",
    "ingest/loaders/html.py",
    "ingest/loaders/pdf.py",
    "ingest/loaders/plain.py",
    "ingest/loaders/reader.py",
    "ingest/loaders/text.py",
    "index/manifest.py",
)
# Bump when the way copies are made changes: cached synthetic indexes are then rebuilt.
SYNTH_VERSION = 1


def base_files(quick: bool) -> list[Path]:
    """Quick: the 29 essays the questions cite. Full: all 212 essays and 600 SciFact abstracts."""
    if quick:
        cited = {s for q in _questions() for s in q.get("relevant_sources", [])}
        return [f for f in essay_files() if f.name in cited]
    return essay_files() + scifact_files(600)


def _questions() -> list[dict[str, Any]]:
    from common import load_questions

    return load_questions()


def base_home(quick: bool) -> Path:
    """The cached real index (built on first use); read it, never write to it."""
    files = base_files(quick)
    key = f"{'quick' if quick else 'full'}-{files_digest(files)}-{code_digest(*INGEST_CODE)}"
    home = OUT / f"base-{key}" / "home"
    if (home / "index.sqlite").exists():
        return home
    from common import make_embedder

    from ingest.pipeline import ingest_paths

    building = OUT / f"base-{key}.building-{os.getpid()}"  # per process: concurrent runs never collide
    corpus = building / "corpus"
    essays = [f for f in files if f.parent.name == "essays"]
    abstracts = [f for f in files if f.parent.name == "corpus"]
    paths = [link_corpus(essays, corpus / "essays")]
    if abstracts:
        paths.append(link_corpus(abstracts, corpus / "scifact"))
    log(f"building the base index ({len(files)} files; cached in {home.parent})")
    started = time.perf_counter()
    report = ingest_paths(paths, settings_for(building / "home"), make_embedder())
    log(f"base index: {report.summary()} ({time.perf_counter() - started:.0f} s)")
    _release_chroma(building / "home")
    _publish(building, home.parent)
    return home


def synthetic_home(n_chunks: int, quick: bool) -> Path:
    """A cached index of about `n_chunks` chunks (base files first, then perturbed copies)."""
    base = base_home(quick)
    key = f"{base.parent.name.removeprefix('base-')}-v{SYNTH_VERSION}-{n_chunks}"
    home = OUT / f"synth-{key}" / "home"
    if (home / "index.sqlite").exists():
        return home
    building = OUT / f"synth-{key}.building-{os.getpid()}"
    started = time.perf_counter()
    count = build_synthetic(base, building / "home", n_chunks)
    log(f"synthetic index: {count} chunks in {time.perf_counter() - started:.0f} s (cached in {home.parent})")
    _release_chroma(building / "home")
    _publish(building, home.parent)
    return home


def _publish(building: Path, target: Path) -> None:
    """Move a finished build into place; if another run got there first, keep theirs."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        building.rename(target)
    except OSError:
        shutil.rmtree(building, ignore_errors=True)


def copy_home(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, symlinks=True)
    return dest


def _release_chroma(home: Path) -> None:
    """Close this process's Chroma client of `home`, so its folder can be moved."""
    from index.store import release_client

    release_client(settings_for(home))


# -- the builder ----------------------------------------------------------------------------------


class _Base:
    """Everything of the base index needed to write copies of it."""

    def __init__(self, home: Path) -> None:
        from dossier_common.settings import DEFAULT_MODEL
        from index.manifest import Manifest
        from index.store import VectorStore

        manifest = Manifest(home / "index.sqlite", readonly=True)
        try:
            self.files = [dict(r) for r in manifest.db.execute("SELECT * FROM files ORDER BY rowid")]
            rows = [dict(r) for r in manifest.db.execute("SELECT * FROM chunks ORDER BY source, ord")]
            sentences: dict[str, list[tuple[int, int, int, bytes]]] = {}
            for r in manifest.db.execute(
                'SELECT chunk_id, start, "end", kind, vector FROM sentences ORDER BY rowid'
            ):
                sentences.setdefault(r[0], []).append((r[1], r[2], r[3], r[4]))
        finally:
            manifest.close()
        self.chunks_by_source: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            self.chunks_by_source.setdefault(r["source"], []).append(r)
        store = VectorStore(settings_for(home), model=DEFAULT_MODEL, create=False)
        ids = [r["id"] for r in rows]
        vectors: dict[str, np.ndarray] = {}
        for i in range(0, len(ids), 2000):
            vectors.update(store.vectors(ids[i : i + 2000]))
        self.vectors = vectors
        self.sentences = sentences
        _release_chroma(home)
        # The base's vocabulary by length, for same-length substitutions.
        counts: Counter[str] = Counter()
        for f in self.files:
            counts.update(w.lower() for w in _WORD.findall(f["text"]))
        self.vocab: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        by_len: dict[int, list[tuple[str, int]]] = {}
        for word, c in counts.items():
            by_len.setdefault(len(word), []).append((word, c))
        for length, items in by_len.items():
            words = np.array([w for w, _ in items], dtype=object)
            weights = np.array([c for _, c in items], dtype=np.float64)
            self.vocab[length] = (words, weights / weights.sum())

    def n_chunks(self, source: str) -> int:
        return len(self.chunks_by_source.get(source, []))

    def perturb_text(self, text: str, rng: np.random.Generator) -> str:
        matches = list(_WORD.finditer(text))
        if not matches:
            return text
        replace = rng.random(len(matches)) < REPLACE_P
        picks: dict[int, list[str]] = {}
        need = Counter(len(m.group()) for m, r in zip(matches, replace, strict=True) if r)
        for length, n in need.items():
            words, p = self.vocab[length]
            picks[length] = list(rng.choice(words, size=n, p=p))
        out: list[str] = []
        pos = 0
        for m, r in zip(matches, replace, strict=True):
            if not r:
                continue
            word = picks[len(m.group())].pop()
            if m.group()[0].isupper():
                word = word[0].upper() + word[1:]
            out.append(text[pos : m.start()])
            out.append(word)
            pos = m.end()
        out.append(text[pos:])
        return "".join(out)


def _noisy(vectors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noisy = vectors + rng.normal(0.0, NOISE_SIGMA, size=vectors.shape).astype(np.float32)
    norms = np.linalg.norm(noisy, axis=1, keepdims=True)
    return noisy / np.where(norms == 0, 1.0, norms)


def build_synthetic(base_path: Path, dest: Path, n_chunks: int, seed: int = 7) -> int:
    """Write an index of about `n_chunks` chunks into the DOSSIER_HOME `dest`; returns its size."""
    from dossier_common.settings import DEFAULT_MODEL
    from index.chunks import Chunk
    from index.manifest import FileRecord, Manifest
    from index.store import VectorStore
    from ingest.pipeline import chunk_metadata

    base = _Base(base_path)
    settings = settings_for(dest)
    dest.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(dest / "index.sqlite")
    dim = len(next(iter(base.vectors.values())))
    manifest.set_model(DEFAULT_MODEL, dim)
    store = VectorStore(settings, model=DEFAULT_MODEL, dimension=dim)
    written = 0
    copy = 0
    try:
        while written < n_chunks:
            rng = np.random.default_rng(seed + copy)
            batch: list[tuple[dict[str, Any], str, str, str]] = []  # file row, source, title, text
            for f in base.files:
                if written >= n_chunks:
                    break
                if copy == 0:
                    batch.append((f, f["source"], f["title"], f["text"]))
                else:
                    text = base.perturb_text(f["text"], rng)
                    title = base.perturb_text(f["title"], rng)
                    batch.append((f, f"synthetic-{copy:03d}/{f['source']}", title, text))
                written += base.n_chunks(f["source"])
                if len(batch) >= 100:
                    _write(batch, copy, base, manifest, store, rng, Chunk, FileRecord, chunk_metadata)
                    batch = []
            if batch:
                _write(batch, copy, base, manifest, store, rng, Chunk, FileRecord, chunk_metadata)
            copy += 1
        return manifest.chunk_count()
    finally:
        manifest.close()


def _write(batch, copy, base, manifest, store, rng, Chunk, FileRecord, metadata) -> None:  # type: ignore[no-untyped-def]
    from index.chunks import chunk_ids

    entries = []
    sentences: dict[str, list[tuple[int, int, int, bytes]]] = {}
    ids: list[str] = []
    vectors: list[np.ndarray] = []
    metas: list[dict[str, Any]] = []
    now = time.time()
    for f, source, title, text in batch:
        chunks = []
        rows = base.chunks_by_source.get(f["source"], [])
        # Ids as ingest makes them (the base's own for copy 0, whose texts are the base's).
        ids_of = chunk_ids(source, [text[row["start"] : row["end"]] for row in rows])
        for row, (chunk_id, content_hash) in zip(rows, ids_of, strict=True):
            chunk_text = text[row["start"] : row["end"]]
            chunk = Chunk(
                id=chunk_id,
                source=source,
                ord=row["ord"],
                text=chunk_text,
                start=row["start"],
                end=row["end"],
                title=title,
                section=row["section"],
                page=row["page"],
                tokens=row["tokens"],
                content_hash=content_hash,
            )
            chunks.append(chunk)
            stored = base.sentences.get(row["id"], [])
            if copy == 0:
                sentences[chunk_id] = stored
                vectors.append(base.vectors[row["id"]])
            else:
                if stored:
                    sv = np.stack([np.frombuffer(v, dtype=np.float16).astype(np.float32) for *_, v in stored])
                    sv = _noisy(sv, rng).astype(np.float16)
                    sentences[chunk_id] = [
                        (a, b, k, sv[i].tobytes()) for i, (a, b, k, _) in enumerate(stored)
                    ]
                else:
                    sentences[chunk_id] = []
                vectors.append(_noisy(base.vectors[row["id"]][None, :], rng)[0])
            ids.append(chunk_id)
            metas.append(metadata(chunk))
        record = FileRecord(
            source=source,
            root="/synthetic" if copy else f["root"],
            path=f"/synthetic/{source}" if copy else f["path"],
            content_hash=hashlib.sha256(text.encode()).hexdigest(),
            title=title,
            n_chunks=len(chunks),
            ingested_at=now,
        )
        entries.append((record, text, chunks))
    store.upsert(ids, [v.tolist() for v in vectors], [c.text for _, _, c in _flat(entries)], metas)
    manifest.commit_files(entries, sentences)


def _flat(entries):  # type: ignore[no-untyped-def]
    for record, text, chunks in entries:
        for c in chunks:
            yield record, text, c
