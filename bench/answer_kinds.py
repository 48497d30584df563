"""What answering by question kind costs: briefs at ingest, and warm latency per kind.

Ingests PG essays (the ones the dev questions cite first) into a temp DOSSIER_HOME with the
real model, timing the brief of every file inside the same run (`index.briefs.brief_of`,
as `ingest.pipeline` calls it, wrapped by a timer; a fresh ingest reuses no stored vectors, so
that is all of a brief), so the share of ingest time spent on briefs is measured on one machine
state. Then, warm: the 51 factoid questions of qa.jsonl, the 24 open questions of
open-dev.jsonl (grouped by the kind the engine gives them), and `Engine.summary` of every
essay, each `--passes` times. Ratios are taken within the run (shared machines are noisy).

Targets (issue 11): briefs <= 5% of ingest time; a summary answer warm p50 <= 100 ms; every
other kind's p50 within 1.5x of the factoid p50.

    .venv/bin/python bench/answer_kinds.py [--essays 60] [--passes 3]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from common import (
    DATASETS,
    Timer,
    copy_corpus,
    emit,
    essay_files,
    load_questions,
    log,
    make_embedder,
    median,
    settings_for,
    table,
    temp_home,
    verdict,
)

from bot.evaluate import percentile

OPEN_DEV = DATASETS / "pg-essays" / "open-dev.jsonl"


def ingest_with_brief_timer(files: list[Path], home: Path, embedder: Any) -> dict[str, float]:
    import ingest.pipeline as pipeline

    spent = [0.0]
    original = pipeline.brief_of

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - started

    pipeline.brief_of = timed
    try:
        corpus = copy_corpus(files, home.parent / "docs")
        with Timer() as t:
            report = pipeline.ingest_paths([corpus], settings_for(home), embedder)
    finally:
        pipeline.brief_of = original
    return {
        "files": report.added,
        "chunks": report.chunks,
        "ingest_s": round(t.wall, 2),
        "briefs_s": round(spent[0], 3),
        "briefs_share": round(spent[0] / t.wall, 4),
    }


def timed_asks(engine: Any, questions: list[str], passes: int) -> dict[str, list[float]]:
    by_kind: dict[str, list[float]] = defaultdict(list)
    for _ in range(passes):
        for q in questions:
            started = time.perf_counter()
            answer = engine.ask(q)
            by_kind[answer.kind].append((time.perf_counter() - started) * 1000)
    return by_kind


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--essays", type=int, default=60, help="how many essays to ingest")
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()

    from bot.engine import Engine

    embedder = make_embedder()
    embedder.model  # noqa: B018  (loaded before anything is timed)
    with temp_home("dossier-bench-kinds-") as home:
        ingest = ingest_with_brief_timer(essay_files(args.essays), home, embedder)
        log(f"ingest {ingest['ingest_s']} s, briefs {ingest['briefs_s']} s")
        engine = Engine(settings_for(home), embedder=embedder)
        try:
            engine.ask("warm up: what makes a startup succeed?")
            factoid = [q["question"] for q in load_questions()]
            open_dev = [q["question"] for q in load_questions(OPEN_DEV)]
            times = timed_asks(engine, factoid, args.passes)
            for kind, values in timed_asks(engine, open_dev, args.passes).items():
                times[kind].extend(values)
            sources = [d.source for d in engine.documents()]
            for _ in range(args.passes):
                for source in sources:
                    started = time.perf_counter()
                    engine.summary(source)
                    times["summary"].append((time.perf_counter() - started) * 1000)
        finally:
            engine.close()

    base = median(times["factoid"])
    rows = []
    figures: dict[str, Any] = {}
    for kind, values in sorted(times.items()):
        p50 = median(values)
        figures[kind] = {
            "asks": len(values),
            "p50_ms": round(p50, 1),
            "p95_ms": round(percentile(values, 95), 1),
            "p50_vs_factoid": round(p50 / base, 2),
        }
        rows.append([kind, len(values), p50, percentile(values, 95), p50 / base])
    table(
        f"Warm latency by kind over {ingest['files']} essays (factoid p50 {base:.1f} ms)",
        ["kind", "asks", "p50 ms", "p95 ms", "p50 / factoid"],
        rows,
        digits=2,
    )
    targets = {
        "briefs_le_5pct_of_ingest": ingest["briefs_share"] <= 0.05,
        "summary_p50_le_100ms": figures["summary"]["p50_ms"] <= 100,
        "kinds_p50_le_1_5x_factoid": all(
            f["p50_vs_factoid"] <= 1.5 for k, f in figures.items() if k not in ("factoid", "summary")
        ),
    }
    print(
        f"briefs: {ingest['briefs_s']} s of {ingest['ingest_s']} s ingest = {ingest['briefs_share']:.1%} "
        f"(target <= 5%: {verdict(targets['briefs_le_5pct_of_ingest'])}); "
        f"summary p50 {figures['summary']['p50_ms']} ms (target <= 100: "
        f"{verdict(targets['summary_p50_le_100ms'])}); other kinds within 1.5x of factoid: "
        f"{verdict(targets['kinds_p50_le_1_5x_factoid'])}"
    )
    emit("answer_kinds", {"ingest": ingest, "kinds": figures, "passes": args.passes, "targets": targets})


if __name__ == "__main__":
    main()
