"""Re-ingest costs on the PG essays: first ingest, unchanged, one file changed, one deleted.

A copy of the essays (in a temp folder, so files can be edited and deleted) is ingested into
a temp DOSSIER_HOME, then:

- unchanged: the same folder again with a fresh `Embedder` (as a new `dossier ingest` would
  have): it must embed nothing and never load the model. Also timed as the real command
  (`dossier ingest DIR --json` in a new process: interpreter, imports and all);
- changed: one sentence in the middle of one essay is edited (a different essay each
  repeat), and the folder re-ingested; compared with ingesting that edited essay alone into
  an empty index (same warm model, same process);
- deleted: one essay removed, folder re-ingested.

Model loading is excluded from the in-process timings (it is loaded once, up front; the
unchanged runs never load it). Medians of `--repeats` runs.

    .venv/bin/python bench/reingest.py [--quick] [--repeats N]
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from common import (
    PYTHON,
    Timer,
    child_env,
    copy_corpus,
    emit,
    essay_files,
    last_json,
    log,
    make_embedder,
    median,
    run_child,
    settings_for,
    table,
    verdict,
)

DOSSIER = str(Path(PYTHON).parent / "dossier")


def edit_middle_sentence(path: Path, tag: str) -> None:
    """Change one sentence near the middle of the file (a realistic small edit)."""
    text = path.read_text(encoding="utf-8")
    middle = len(text) // 2
    m = re.compile(r"[.!?]\s+").search(text, middle)
    cut = m.end() if m else middle
    path.write_text(
        text[:cut] + f"This sentence was edited for benchmark {tag}. " + text[cut:], encoding="utf-8"
    )


def chroma_count(settings: Any) -> int:
    from dossier_common.settings import DEFAULT_MODEL
    from index.store import VectorStore

    return VectorStore(settings, model=DEFAULT_MODEL, create=False).count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="12 essays, 2 repeats")
    parser.add_argument("--essays", type=int, default=None, help="essays in the corpus (default all 212)")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    n_essays = args.essays or (12 if args.quick else None)
    repeats = args.repeats or (2 if args.quick else 3)

    from index.layout import Layout
    from index.manifest import Manifest
    from ingest.pipeline import ingest_paths

    warm = make_embedder()
    with Timer() as load:
        warm.model  # noqa: B018
    files = essay_files(n_essays)
    with tempfile.TemporaryDirectory(prefix="dossier-bench-reingest-") as tmp_name:
        tmp = Path(tmp_name)
        corpus = copy_corpus(files, tmp / "corpus" / "essays")
        settings = settings_for(tmp / "home")

        log(f"first ingest of {len(files)} essays")
        with Timer() as first:
            report = ingest_paths([corpus], settings, warm)
        n_chunks = report.chunks
        log(f"first: {report.summary()}")

        unchanged: list[float] = []
        for _ in range(max(repeats, 5)):
            fresh = make_embedder()
            with Timer() as t:
                r = ingest_paths([corpus], settings, fresh)
            assert r.embedded == 0 and r.unchanged == len(files), r.summary()
            assert not fresh.model_loaded, "an unchanged re-ingest loaded the model"
            unchanged.append(t.wall)
        cli: list[float] = []
        for _ in range(3):
            with Timer() as t:
                out = run_child([DOSSIER, "ingest", str(corpus), "--json"], env=child_env(settings.home))
            assert last_json(out)["embedded"] == 0
            cli.append(t.wall)
        log(f"unchanged: {median(unchanged) * 1000:.0f} ms in-process, {median(cli):.2f} s as a command")

        # Changed: a different mid-sized essay each time; compare with that essay alone.
        by_size = sorted(corpus.glob("*.txt"), key=lambda p: p.stat().st_size)
        picks = [by_size[len(by_size) // 2 + i] for i in range(repeats)]
        changed: list[dict[str, Any]] = []
        for i, path in enumerate(picks):
            edit_middle_sentence(path, f"{i}")
            with Timer() as t:
                r = ingest_paths([corpus], settings, warm)
            assert r.updated == 1 and r.unchanged == len(files) - 1, r.summary()
            alone_dir = tmp / f"alone-{i}" / "essays"
            alone_dir.mkdir(parents=True)
            shutil.copy2(path, alone_dir / path.name)
            alone_settings = settings_for(tmp / f"alone-{i}" / "home")
            with Timer() as a:
                ra = ingest_paths([alone_dir], alone_settings, warm)
            changed.append(
                {
                    "file": path.name,
                    "kb": round(path.stat().st_size / 1024, 1),
                    "chunks": ra.chunks,
                    "embedded": r.embedded,
                    "changed_s": t.wall,
                    "alone_s": a.wall,
                    "alone_embedded": ra.embedded,
                }
            )
            log(f"changed {path.name}: {t.wall:.2f} s ({r.embedded} embedded) vs alone {a.wall:.2f} s")

        deleted: list[float] = []
        for i in range(repeats):
            victim = by_size[i]
            victim.unlink()
            with Timer() as t:
                r = ingest_paths([corpus], settings, warm)
            assert r.deleted == 1 and r.embedded == 0, r.summary()
            deleted.append(t.wall)
        manifest = Manifest(Layout(settings.home).manifest, readonly=True)
        try:
            final_chunks = manifest.chunk_count()
        finally:
            manifest.close()
        consistent = chroma_count(settings) == final_chunks

    first_s = first.wall
    unchanged_s = median(unchanged)
    ratio_unchanged = first_s / unchanged_s
    changed_s = median([c["changed_s"] for c in changed])
    alone_s = median([c["alone_s"] for c in changed])
    ratio_changed = median([c["changed_s"] / c["alone_s"] for c in changed])
    rows = [
        ["first ingest", f"{len(files)} files", n_chunks, first_s, "", ""],
        [
            "unchanged (in process)",
            "0 embedded",
            0,
            unchanged_s,
            f"{ratio_unchanged:,.0f}x faster",
            verdict(ratio_unchanged >= 50),
        ],
        [
            "unchanged (`dossier ingest`)",
            "new process",
            0,
            median(cli),
            f"{first_s / median(cli):,.0f}x faster",
            "",
        ],
    ]
    for c in changed:
        rows.append(
            [
                f"changed {c['file']} ({c['kb']} KB)",
                f"{c['embedded']}/{c['chunks']} chunks",
                c["embedded"],
                c["changed_s"],
                "",
                "",
            ]
        )
        rows.append(
            [
                "  same file alone, empty index",
                "",
                c["alone_embedded"],
                c["alone_s"],
                f"{c['changed_s'] / c['alone_s']:.2f}x alone",
                "",
            ]
        )
    rows.append(
        ["changed (median)", "", "", changed_s, f"{ratio_changed:.2f}x alone", verdict(ratio_changed < 2)]
    )
    rows.append(["deleted (median)", "1 file", 0, median(deleted), "", ""])
    table(
        f"Re-ingest, PG essays ({len(files)} files, {n_chunks} chunks; model load {load.wall:.1f} s excluded); "
        f"index consistent at the end (Chroma = manifest): {consistent}",
        ["run", "what", "embedded", "seconds", "ratio", "target"],
        rows,
        digits=3,
    )
    print("targets: unchanged >= 50x faster than the first ingest; one changed file < 2x that file alone")
    emit(
        "reingest",
        {
            "quick": args.quick,
            "files": len(files),
            "chunks": n_chunks,
            "model_load_s": round(load.wall, 2),
            "first_s": round(first_s, 2),
            "unchanged_s": round(unchanged_s, 4),
            "unchanged_cli_s": round(median(cli), 3),
            "unchanged_speedup": round(ratio_unchanged, 1),
            "changed": [
                {k: round(v, 3) if isinstance(v, float) else v for k, v in c.items()} for c in changed
            ],
            "changed_s": round(changed_s, 3),
            "alone_s": round(alone_s, 3),
            "changed_vs_alone": round(ratio_changed, 3),
            "deleted_s": round(median(deleted), 3),
            "consistent": consistent,
            "targets": {"unchanged_ge_50x": ratio_unchanged >= 50, "changed_lt_2x_alone": ratio_changed < 2},
        },
    )


if __name__ == "__main__":
    main()
