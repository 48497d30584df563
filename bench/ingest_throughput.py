"""Ingest throughput: our pipeline vs the LangChain tutorial recipe vs the model's own floor.

For each corpus, in one process and one run (so the ratios share the machine's mood):

- ours: `ingest_paths` into an empty temp DOSSIER_HOME (load, chunk, embed chunk and sentence
  vectors in one forward pass, Chroma upsert, SQLite commit);
- floor: `SentenceTransformer.encode` of exactly our chunk texts (`Chunk.embed_text`) at the
  best batch size (16/32/64/128 tried on a sample first), nothing else;
- LangChain: the tutorial recipe: RecursiveCharacterTextSplitter(1000, 200), HuggingFaceEmbeddings
  on the same local model, `Chroma.from_documents` into a temp folder.

The machine is shared: a neighbour busy for a minute would bias whichever pipeline ran
then. So each corpus is cut into `--slices` slices (files dealt round-robin) and the three
pipelines take turns slice by slice (order rotated per slice); each one's figure is the sum
over slices. Ours ingests slice after slice into one home, as `dossier ingest` of several
folders would; LangChain adds each slice to one collection (what `from_documents` does).
CPU seconds (the process's own) are shown next to wall seconds: they are less sensitive to
neighbours.

Model loading is excluded from all three (each model is loaded before its clock starts) and
measured once. Chunk sizes differ between us and LangChain, so the fair comparison is per
token embedded: word pieces the model actually reads (special tokens included, truncation
at its 256 limit applied). The floor's chunk texts are made by our loader and chunker
(no embedding) and checked to be exactly as many as ours indexed.

    .venv/bin/python bench/ingest_throughput.py [--quick] [--essays N] [--scifact-docs N] [--slices N]
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common import (
    Timer,
    emit,
    essay_files,
    link_corpus,
    log,
    make_embedder,
    model_path,
    scifact_files,
    settings_for,
    table,
    total_bytes,
    verdict,
)

OVERHEAD_TARGET = 0.15


@contextmanager
def timed_methods(targets: Sequence[tuple[Any, str, str]]) -> Iterator[dict[str, float]]:
    """Accumulate the wall time spent in each (object, attribute) under a label."""
    spent: dict[str, float] = {label: 0.0 for _, _, label in targets}
    saved = []
    for obj, attr, label in targets:
        original = getattr(obj, attr)
        saved.append((obj, attr, obj.__dict__.get(attr, _MISSING) if hasattr(obj, "__dict__") else _MISSING))

        def wrapper(
            *args: Any, _original: Callable[..., Any] = original, _label: str = label, **kw: Any
        ) -> Any:
            t = time.perf_counter()
            try:
                return _original(*args, **kw)
            finally:
                spent[_label] += time.perf_counter() - t

        functools.update_wrapper(wrapper, original)
        setattr(obj, attr, wrapper)
    try:
        yield spent
    finally:
        for obj, attr, before in reversed(saved):
            if before is _MISSING:
                delattr(obj, attr)
            else:
                setattr(obj, attr, before)


_MISSING = object()


def model_tokens(tokenizer: Any, texts: Sequence[str], limit: int) -> int:
    """Word pieces the model reads: special tokens included, cut at its limit."""
    total = 0
    for i in range(0, len(texts), 512):
        enc = tokenizer(list(texts[i : i + 512]), add_special_tokens=True, truncation=True, max_length=limit)
        total += sum(len(ids) for ids in enc["input_ids"])
    return total


def chunk_texts(files: Sequence[Path], root: Path, embedder: Any) -> list[str]:
    """Our chunk texts for `files`, made by the pipeline's own loader and chunker (no embedding)."""
    from dossier_common.settings import Settings
    from ingest.chunking import chunk_document
    from ingest.loaders import load_file

    defaults = Settings.model_fields
    max_tokens = min(defaults["chunk_tokens"].default, embedder.max_tokens)
    texts: list[str] = []
    for f in files:
        doc = load_file(root / f.name, root.parent)
        chunks = chunk_document(
            doc, embedder.count_tokens, max_tokens=max_tokens, overlap=defaults["chunk_overlap"].default
        )
        texts.extend(c.embed_text for c in chunks)
    return texts


def sweep_batch_sizes(
    model: Any, texts: list[str], batch_sizes: Sequence[int], sample: int
) -> tuple[int, dict]:
    step = max(1, len(texts) // sample)
    probe = texts[::step][:sample]
    model.encode(probe[:8], show_progress_bar=False)  # warm the kernels
    sweep: dict[int, float] = {}
    for bs in batch_sizes:
        with Timer() as t:
            model.encode(probe, batch_size=bs, normalize_embeddings=True, show_progress_bar=False)
        sweep[bs] = len(probe) / t.wall
        log(f"floor sweep: batch {bs}: {sweep[bs]:.1f} chunks/s")
    return max(sweep, key=sweep.__getitem__), sweep


class Ours:
    """`ingest_paths`, one slice folder at a time, into one home; time spent per stage."""

    def __init__(self, embedder: Any, home: Path) -> None:
        from index.manifest import Manifest
        from index.store import VectorStore

        self.embedder = embedder
        self.settings = settings_for(home)
        self.targets = [
            (embedder.documents, "encode", "encode"),
            (embedder, "embed_with_spans", "embed_with_spans"),
            (embedder, "count_tokens", "count_tokens"),
            (VectorStore, "upsert", "chroma_upsert"),
            (Manifest, "commit_files", "manifest_commit"),
        ]
        self.wall = self.cpu = 0.0
        self.chunks = 0
        self.spent: dict[str, float] = {label: 0.0 for *_, label in self.targets}

    def run(self, folder: Path) -> None:
        from ingest.pipeline import ingest_paths

        with timed_methods(self.targets) as spent, Timer() as t:
            report = ingest_paths([folder], self.settings, self.embedder)
        self.wall += t.wall
        self.cpu += t.cpu
        self.chunks = report.chunks
        for k, v in spent.items():
            self.spent[k] += v


class LangChainRecipe:
    """The tutorial: load, RecursiveCharacterTextSplitter(1000, 200), HuggingFaceEmbeddings, Chroma."""

    def __init__(self, path: str, folder: Path) -> None:
        from langchain_chroma import Chroma
        from langchain_huggingface import HuggingFaceEmbeddings
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        self.embeddings = HuggingFaceEmbeddings(model_name=path, model_kwargs={"device": "cpu"})
        self.embeddings.embed_documents(["warm up"])  # model loaded and kernels warm before the clock
        self.splitter = RecursiveCharacterTextSplitter(
            chunk_size=1000, chunk_overlap=200, add_start_index=True
        )
        self.folder = folder
        self.chroma = Chroma
        self.store: Any = None
        self.wall = self.cpu = 0.0
        self.texts: list[str] = []

    def run(self, files: Sequence[Path]) -> None:
        from langchain_core.documents import Document

        with Timer() as t:
            docs = [
                Document(page_content=f.read_text(encoding="utf-8"), metadata={"source": str(f)})
                for f in files
            ]
            splits = self.splitter.split_documents(docs)
            if self.store is None:
                self.store = self.chroma.from_documents(
                    documents=splits,
                    embedding=self.embeddings,
                    persist_directory=str(self.folder),
                    collection_name="langchain",
                )
            else:  # what from_documents does, into the same collection
                self.store.add_documents(splits)
        self.wall += t.wall
        self.cpu += t.cpu
        self.texts.extend(d.page_content for d in splits)


def bench_corpus(name: str, files: list[Path], embedder: Any, args: argparse.Namespace) -> dict[str, Any]:
    model = embedder.documents
    limit = int(model.max_seq_length)
    mb = total_bytes(files) / 1e6
    slices = [files[i :: args.slices] for i in range(args.slices)]
    with tempfile.TemporaryDirectory(prefix="dossier-bench-ingest-") as tmp_name:
        tmp = Path(tmp_name)
        folders = [link_corpus(part, tmp / "corpus" / f"{name}-{i}") for i, part in enumerate(slices)]
        texts = [chunk_texts(part, folder, embedder) for part, folder in zip(slices, folders, strict=True)]
        all_texts = [t for part in texts for t in part]
        best, sweep = sweep_batch_sizes(model, all_texts, args.batch_sizes, args.sweep_chunks)
        ours = Ours(embedder, tmp / "ours-home")
        lc = LangChainRecipe(model_path(), tmp / "langchain")
        floor_wall = floor_cpu = 0.0
        log(
            f"{name}: {len(files)} files, {mb:.1f} MB, {len(all_texts)} chunks, {args.slices} interleaved slices"
        )
        for i, (part, folder, part_texts) in enumerate(zip(slices, folders, texts, strict=True)):
            # Rotate the order so no pipeline always runs first (or last) in a slice.
            steps = ["ours", "floor", "langchain"]
            for step in steps[i % 3 :] + steps[: i % 3]:
                if step == "ours":
                    ours.run(folder)
                elif step == "floor":
                    with Timer() as t:
                        model.encode(
                            part_texts, batch_size=best, normalize_embeddings=True, show_progress_bar=False
                        )
                    floor_wall += t.wall
                    floor_cpu += t.cpu
                else:
                    lc.run(part)
            log(
                f"{name}: slice {i + 1}/{args.slices}: ours {ours.wall:.0f} s, floor {floor_wall:.0f} s, LangChain {lc.wall:.0f} s so far"
            )
    assert ours.chunks == len(all_texts), (ours.chunks, len(all_texts))
    ours_tokens = model_tokens(model.tokenizer, all_texts, limit)
    lc_tokens = model_tokens(model.tokenizer, lc.texts, limit)
    n = ours.chunks
    spent = ours.spent
    result = {
        "corpus": name,
        "files": len(files),
        "mb": round(mb, 3),
        "slices": args.slices,
        "ours": {
            "seconds": round(ours.wall, 2),
            "cpu_seconds": round(ours.cpu, 2),
            "chunks": n,
            "tokens": ours_tokens,
            "chunks_per_s": round(n / ours.wall, 2),
            "mb_per_s": round(mb / ours.wall, 4),
            "tokens_per_s": round(ours_tokens / ours.wall, 1),
            "breakdown_s": {k: round(v, 2) for k, v in spent.items()},
        },
        "floor": {
            "seconds": round(floor_wall, 2),
            "cpu_seconds": round(floor_cpu, 2),
            "chunks": n,
            "tokens": ours_tokens,
            "batch_size": best,
            "sweep_chunks_per_s": {str(k): round(v, 2) for k, v in sweep.items()},
            "chunks_per_s": round(n / floor_wall, 2),
            "mb_per_s": round(mb / floor_wall, 4),
            "tokens_per_s": round(ours_tokens / floor_wall, 1),
        },
        "langchain": {
            "seconds": round(lc.wall, 2),
            "cpu_seconds": round(lc.cpu, 2),
            "chunks": len(lc.texts),
            "tokens": lc_tokens,
            "chunks_per_s": round(len(lc.texts) / lc.wall, 2),
            "mb_per_s": round(mb / lc.wall, 4),
            "tokens_per_s": round(lc_tokens / lc.wall, 1),
        },
    }
    overhead = ours.wall / floor_wall - 1
    overhead_cpu = ours.cpu / floor_cpu - 1
    vs_lc = result["ours"]["tokens_per_s"] / result["langchain"]["tokens_per_s"]
    result["overhead_vs_floor"] = round(overhead, 3)
    result["overhead_vs_floor_cpu"] = round(overhead_cpu, 3)
    result["tokens_per_s_vs_langchain"] = round(vs_lc, 3)
    result["targets"] = {
        "overhead_le_15pct": overhead <= OVERHEAD_TARGET,
        "per_token_ge_langchain": vs_lc >= 1.0,
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="12 essays, no SciFact, small batch sweep")
    parser.add_argument("--essays", type=int, default=None, help="PG essays to ingest (default all 212)")
    parser.add_argument(
        "--scifact-docs",
        type=int,
        default=None,
        help="SciFact abstracts (default 300; 0 skips; -1 all 5,183)",
    )
    parser.add_argument(
        "--batch-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[16, 32, 64, 128]
    )
    parser.add_argument("--sweep-chunks", type=int, default=None, help="chunks in the batch-size sweep")
    parser.add_argument(
        "--slices", type=int, default=None, help="interleaved slices of each corpus (default 4)"
    )
    args = parser.parse_args()
    essays = args.essays if args.essays is not None else (12 if args.quick else None)
    scifact = args.scifact_docs if args.scifact_docs is not None else (0 if args.quick else 300)
    args.sweep_chunks = args.sweep_chunks or (64 if args.quick else 256)
    args.slices = args.slices or (2 if args.quick else 4)

    embedder = make_embedder()
    with Timer() as load:
        embedder.documents  # noqa: B018  (load it now: excluded from every clock below)
    log(f"model loaded in {load.wall:.1f} s")

    corpora = [("pg-essays", essay_files(essays))]
    if scifact:
        corpora.append(("scifact", scifact_files(None if scifact < 0 else scifact)))
    results = [bench_corpus(name, files, embedder, args) for name, files in corpora]

    for r in results:
        rows = []
        for key, label in (
            ("ours", "ours (dossier ingest)"),
            ("floor", "floor (ST encode)"),
            ("langchain", "LangChain recipe"),
        ):
            x = r[key]
            rows.append(
                [
                    label,
                    x["chunks"],
                    x["tokens"],
                    x["seconds"],
                    x["cpu_seconds"],
                    x["chunks_per_s"],
                    x["mb_per_s"],
                    x["tokens_per_s"],
                ]
            )
        table(
            f"{r['corpus']}: {r['files']} files, {r['mb']:.2f} MB (model load {load.wall:.1f} s excluded)",
            ["pipeline", "chunks", "tokens", "wall s", "cpu s", "chunks/s", "MB/s", "tokens/s"],
            rows,
            digits=2,
        )
        b = r["ours"]["breakdown_s"]
        other = (
            r["ours"]["seconds"]
            - b["embed_with_spans"]
            - b["count_tokens"]
            - b["chroma_upsert"]
            - b["manifest_commit"]
        )
        print(
            f"ours, where the time goes: model.encode {b['encode']:.1f} s, rest of embed_with_spans "
            f"{b['embed_with_spans'] - b['encode']:.1f} s, count_tokens {b['count_tokens']:.1f} s, "
            f"Chroma upsert {b['chroma_upsert']:.1f} s, manifest commit {b['manifest_commit']:.1f} s, other {other:.1f} s"
        )
        print(f"floor batch sweep (chunks/s on {args.sweep_chunks}): {r['floor']['sweep_chunks_per_s']}")
        print(
            f"overhead over the floor: {r['overhead_vs_floor']:+.1%} wall, {r['overhead_vs_floor_cpu']:+.1%} cpu "
            f"(target <= +15%: {verdict(r['targets']['overhead_le_15pct'])}); "
            f"tokens/s vs LangChain: {r['tokens_per_s_vs_langchain']:.2f}x "
            f"(target >= 1: {verdict(r['targets']['per_token_ge_langchain'])})"
        )
    emit("ingest_throughput", {"quick": args.quick, "model_load_s": round(load.wall, 2), "corpora": results})


if __name__ == "__main__":
    main()
