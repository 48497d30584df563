"""Warm `Engine.ask` latency (extractive answerer) at 1k, 10k and 100k chunks, with the breakdown.

Indexes come from `bench/synth.py` (real PG essays + SciFact chunks and vectors, then
perturbed copies; see its docstring for exactly how), copied into a temp DOSSIER_HOME.
For each size: open the engine, build the keyword index and load the model (timed as the
cold start of a serving process), warm up with three unrelated questions, then ask the 51
PG-essay questions `--passes` times. The query-embedding cache is cleared before every
question, so each one pays for its own embedding (a real user's new question does).

Percentiles are over all asks of a size (51 x passes); stage figures are medians / p95s of
the engine's own `timings_ms` (embed, dense, keyword, fusion, answer).

    .venv/bin/python bench/query_latency.py [--quick] [--sizes 1000,10000,100000] [--passes N]
"""

from __future__ import annotations

import argparse
import gc
import tempfile
from pathlib import Path
from typing import Any

from common import (
    Timer,
    emit,
    load_questions,
    log,
    make_embedder,
    median,
    settings_for,
    table,
    verdict,
)
from synth import copy_home, synthetic_home

from bot.evaluate import percentile

STAGES = ("embed", "dense", "keyword", "fusion", "answer")
WARMUP = (
    "How do scientists measure the effect of a drug?",
    "What makes a good programming language?",
    "Where should a startup be located?",
)


def measure(home: Path, embedder: Any, questions: list[str], passes: int) -> dict[str, Any]:
    from bot.engine import Engine

    engine = Engine(settings_for(home), embedder=embedder)
    try:
        with Timer() as open_t:
            retriever = engine.retriever
        with Timer() as keyword_t:
            retriever.refresh()
        chunks = len(retriever.keyword.ids)
        vectors = retriever.store.count()
        with Timer() as first_t:
            engine.ask(WARMUP[0])
        for q in WARMUP[1:]:
            engine.ask(q)
        samples: list[dict[str, float]] = []
        for _ in range(passes):
            for q in questions:
                embedder.clear_cache()  # every question pays for its own embedding
                samples.append(engine.ask(q).timings_ms)
    finally:
        engine.close()
    totals = [s["total"] for s in samples]
    return {
        "chunks": chunks,
        "vectors": vectors,
        "asks": len(samples),
        "open_s": round(open_t.wall, 3),
        "keyword_build_s": round(keyword_t.wall, 3),
        "first_ask_ms": round(first_t.wall * 1000, 1),
        "p50_ms": round(percentile(totals, 50), 1),
        "p95_ms": round(percentile(totals, 95), 1),
        "p99_ms": round(percentile(totals, 99), 1),
        "max_ms": round(max(totals), 1),
        "stages_p50_ms": {k: round(median([s[k] for s in samples]), 2) for k in STAGES},
        "stages_p95_ms": {k: round(percentile([s[k] for s in samples], 95), 2) for k in STAGES},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="1k and 10k chunks from the small base, one pass"
    )
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=None)
    parser.add_argument("--passes", type=int, default=None, help="passes over the 51 questions per size")
    args = parser.parse_args()
    sizes = args.sizes or ([1000, 10000] if args.quick else [1000, 10000, 100000])
    passes = args.passes or (1 if args.quick else 3)
    questions = [q["question"] for q in load_questions()]

    embedder = make_embedder()
    with Timer() as load:
        embedder.model  # noqa: B018
    results: dict[int, dict[str, Any]] = {}
    for n in sizes:
        cached = synthetic_home(n, args.quick)
        with tempfile.TemporaryDirectory(prefix="dossier-bench-query-") as tmp:
            with Timer() as copy_t:
                home = copy_home(cached, Path(tmp) / "home")
            log(f"{n}: index copied in {copy_t.wall:.1f} s; measuring")
            results[n] = measure(home, embedder, questions, passes)
        gc.collect()
        r = results[n]
        log(
            f"{n}: p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms (keyword index built in {r['keyword_build_s']} s)"
        )

    rows = []
    for r in results.values():
        p50, p95 = r["stages_p50_ms"], r["stages_p95_ms"]
        rows.append(
            [
                f"{r['chunks']:,}",
                r["asks"],
                r["p50_ms"],
                r["p95_ms"],
                r["p99_ms"],
                *[f"{p50[k]:.1f} / {p95[k]:.1f}" for k in STAGES],
                r["keyword_build_s"],
                r["first_ask_ms"],
            ]
        )
    table(
        f"Engine.ask, warm, extractive (model load {load.wall:.1f} s excluded); stages: p50 / p95 ms",
        ["chunks", "asks", "p50 ms", "p95 ms", "p99 ms", *STAGES, "kw build s", "1st ask ms"],
        rows,
    )
    targets: dict[str, bool] = {}
    ten = next((r for n, r in results.items() if n == 10000), None)
    hundred = next((r for n, r in results.items() if n == 100000), None)
    if ten:
        targets["p50_le_50ms_at_10k"] = ten["p50_ms"] <= 50
        targets["p95_le_150ms_at_10k"] = ten["p95_ms"] <= 150
        print(
            f"10k: p50 {ten['p50_ms']} ms (target <= 50: {verdict(targets['p50_le_50ms_at_10k'])}), "
            f"p95 {ten['p95_ms']} ms (target <= 150: {verdict(targets['p95_le_150ms_at_10k'])})"
        )
    if ten and hundred:
        ratio = hundred["p95_ms"] / ten["p95_ms"]
        targets["p95_100k_le_2x_10k"] = ratio <= 2
        print(f"100k p95 / 10k p95 = {ratio:.2f} (target <= 2: {verdict(targets['p95_100k_le_2x_10k'])})")
    emit(
        "query_latency",
        {
            "quick": args.quick,
            "passes": passes,
            "model_load_s": round(load.wall, 2),
            "sizes": {str(n): r for n, r in results.items()},
            "targets": targets,
        },
    )


if __name__ == "__main__":
    main()
