"""Peak memory (RSS) of ingest and of a process serving questions at 10k and 100k chunks.

Each figure comes from a child process of its own (`--child ...`) that does the work and
reports its peak resident set size (VmHWM) plus its
RSS at a few points; a fresh process per figure, so nothing earlier inflates it.

- model only: load the embedding model and embed one query (the floor of any process that
  answers);
- ingest: `ingest_paths` of N PG essays into an empty temp home (model load included), at
  two corpus sizes: the pipeline works in groups of about 256 chunks, so the peak should not
  grow with the corpus;
- serving: an `Engine` over a synthetic index (bench/synth.py) answering the 51 PG-essay
  questions, as the Discord bot's engine does (open, keyword index, model, answers).

Target: the serving process under 1 GiB at 100k chunks.

    .venv/bin/python bench/memory.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    PYTHON,
    emit,
    essay_files,
    export_into,
    link_corpus,
    log,
    make_embedder,
    run_child,
    settings_for,
    table,
    verdict,
)

GIB = 1024**3
TARGET_BYTES = 1 * GIB


def rss() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def peak() -> int:
    """This process's peak RSS. VmHWM belongs to the process image: getrusage's ru_maxrss
    survives exec, so a child started by a parent that had just built a large index would
    report the parent's size."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(kind: str, arg: str, home: str | None) -> dict[str, Any]:
    points: dict[str, int] = {"start": rss()}
    t = time.perf_counter()
    if kind == "model":
        embedder = make_embedder()
        embedder.embed_query("What is a technology hub?")
        points["model_loaded"] = rss()
        extra: dict[str, Any] = {}
    elif kind == "ingest":
        from ingest.pipeline import ingest_paths

        assert home
        report = ingest_paths([Path(arg)], settings_for(Path(home)), make_embedder())
        points["after_ingest"] = rss()
        extra = {"chunks": report.chunks}
    else:
        from common import load_questions

        from bot.engine import Engine

        assert home
        engine = Engine(settings_for(Path(home)))
        retriever = engine.retriever
        points["engine_open_model_loaded"] = rss()
        retriever.refresh()
        points["keyword_index_built"] = rss()
        for q in load_questions():
            engine.ask(q["question"])
        points["after_51_questions"] = rss()
        extra = {"chunks": len(retriever.keyword.ids)}
    return {"peak": peak(), "points": points, "seconds": time.perf_counter() - t, **extra}


def run(kind: str, arg: str = "-", home: Path | None = None) -> dict[str, Any]:
    args = [PYTHON, str(Path(__file__).resolve()), "--child", kind, arg]
    if home is not None:
        args.append(str(home))
    out = run_child(args)
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="ingest 10 essays; serve 1k and 10k chunks (small base)"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, arg, *rest = args.child
        print(json.dumps(child(kind, arg, rest[0] if rest else None)), flush=True)
        return
    from synth import copy_home, synthetic_home

    ingest_sizes = [10] if args.quick else [15, 60]
    serve_sizes = [1000, 10000] if args.quick else [10000, 100000]
    rows: list[list[Any]] = []
    results: dict[str, Any] = {}

    log("model only")
    results["model_only"] = m = run("model")
    rows.append(
        ["model only (load + one query)", "-", m["peak"] / 2**20, m["points"]["model_loaded"] / 2**20, ""]
    )
    for n in ingest_sizes:
        with tempfile.TemporaryDirectory(prefix="dossier-bench-mem-") as tmp:
            corpus = link_corpus(essay_files(n), Path(tmp) / "corpus" / "essays")
            log(f"ingest of {n} essays")
            results[f"ingest_{n}_essays"] = r = run("ingest", str(corpus), Path(tmp) / "home")
        rows.append(
            [f"ingest {n} essays", r["chunks"], r["peak"] / 2**20, r["points"]["after_ingest"] / 2**20, ""]
        )
    for n in serve_sizes:
        cached = synthetic_home(n, args.quick)
        with tempfile.TemporaryDirectory(prefix="dossier-bench-mem-") as tmp:
            home = copy_home(cached, Path(tmp) / "home")
            export_into(home)
            log(f"serving {n} chunks")
            results[f"serve_{n}"] = r = run("serve", "-", home)
        target = verdict(r["peak"] < TARGET_BYTES) if n == 100000 else ""
        p = r["points"]
        rows.append(
            [
                f"serve 51 questions at {n:,} chunks",
                r["chunks"],
                r["peak"] / 2**20,
                p["after_51_questions"] / 2**20,
                target,
            ]
        )
    table(
        "Peak RSS per process (MiB)",
        ["process", "chunks", "peak MiB", "RSS at end MiB", "target"],
        rows,
        digits=0,
    )
    for n in serve_sizes:
        p = results[f"serve_{n}"]["points"]
        print(
            f"serve {n:,}: RSS after engine open + model {p['engine_open_model_loaded'] / 2**20:.0f} MiB, "
            f"after keyword index {p['keyword_index_built'] / 2**20:.0f} MiB, "
            f"after the questions {p['after_51_questions'] / 2**20:.0f} MiB"
        )
    targets = {}
    if "serve_100000" in results:
        targets["serve_100k_lt_1gib"] = results["serve_100000"]["peak"] < TARGET_BYTES
        print(f"target: serving at 100k chunks under 1 GiB: {verdict(targets['serve_100k_lt_1gib'])}")
    emit("memory", {"quick": args.quick, "results": results, "targets": targets})


if __name__ == "__main__":
    main()
