"""Run every benchmark in sequence and summarise the targets (`make bench`).

Each benchmark runs as its own process (as `.venv/bin/python bench/NAME.py`), its output is
shown as it comes, and its closing JSON line is collected into
`bench/out/latest.json` (`latest-quick.json` with --quick). The summary at the end lists
every target, met or missed. Figures for bench/RESULTS.md come from these runs.

    .venv/bin/python bench/run_all.py [--quick] [--only NAME,...] [--skip NAME,...]

--quick uses small sizes (a few minutes in all once the caches under bench/out/ exist; the
first run builds them). The default sizes take about 45 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import OUT, PYTHON, ROOT, backend, child_env, essay_files, link_corpus, machine, table

BENCHES = [
    "ingest_throughput",
    "backends",
    "reingest",
    "query_latency",
    "cold_start",
    "memory",
    "concurrency",
    "watch_latency",
]


def run(name: str, quick: bool, tmp: Path) -> tuple[dict[str, Any] | None, float, int]:
    args = [PYTHON, str(ROOT / "bench" / f"{name}.py")]
    if name == "watch_latency":
        if quick:  # it has no --quick: give it a small folder and one small-file run
            files = [f for f in essay_files() if f.name == "siliconvalley.txt"] + essay_files(
                11
            )  # its question's essay
            args += ["--essays", str(link_corpus(files, tmp / "watch-essays")), "--repeat", "1"]
    elif quick:
        args.append("--quick")
    print(f"\n=== {name}: {' '.join(args[1:])}", flush=True)
    started = time.perf_counter()
    proc = subprocess.Popen(args, cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, text=True)
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        lines.append(line)
    code = proc.wait()
    seconds = time.perf_counter() - started
    return closing_json(lines), seconds, code


def closing_json(lines: list[str]) -> dict[str, Any] | None:
    """The last JSON object printed: one line, or (watch_latency) an indented block at the end."""
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].lstrip().startswith("{"):
            for text in (lines[i], "".join(lines[i:])):
                try:
                    return json.loads(text)
                except json.JSONDecodeError:
                    continue
    return None


def targets_of(name: str, figures: dict[str, Any]) -> list[tuple[str, bool | None]]:
    out: list[tuple[str, bool | None]] = []
    if name == "ingest_throughput":
        for corpus in figures.get("corpora", []):
            for key, ok in corpus.get("targets", {}).items():
                out.append((f"{corpus['corpus']}: {key}", ok))
    elif name == "backends":
        for backend, r in figures.get("backends", {}).items():
            if r.get("adopt_ok") is not None:
                out.append(
                    (f"adopt {backend} (nDCG drop {r['ndcg_drop']}, x{r['speedup_vs_torch']})", r["adopt_ok"])
                )
    else:
        out.extend(figures.get("targets", {}).items())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a few minutes in all")
    parser.add_argument(
        "--backend",
        choices=["torch", "onnx"],
        default=None,
        help="DOSSIER_EMBEDDING_BACKEND for every benchmark",
    )
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--skip", default="", help="comma-separated benchmark names")
    args = parser.parse_args()
    only = [n for n in args.only.split(",") if n]
    skip = {n for n in args.skip.split(",") if n}
    names = [n for n in BENCHES if (not only or n in only) and n not in skip]
    if args.backend:
        os.environ["DOSSIER_EMBEDDING_BACKEND"] = args.backend  # children inherit it

    collected: dict[str, Any] = {"machine": machine(), "quick": args.quick, "benches": {}}
    rows: list[list[Any]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dossier-bench-all-") as tmp:
        for name in names:
            figures, seconds, code = run(name, args.quick, Path(tmp))
            collected["benches"][name] = {"seconds": round(seconds, 1), "exit": code, "figures": figures}
            if code != 0 or figures is None:
                rows.append([name, "", f"FAILED (exit {code})", seconds])
                continue
            checks = targets_of(name, figures)
            if not checks:
                rows.append([name, "(no target)", "-", seconds])
            for i, (label, ok) in enumerate(checks):
                rows.append(
                    [name if i == 0 else "", label, "met" if ok else "MISSED", seconds if i == 0 else ""]
                )
    total = time.perf_counter() - started
    OUT.mkdir(parents=True, exist_ok=True)
    suffix = ("" if backend() == "torch" else f"-{backend()}") + ("-quick" if args.quick else "")
    target = OUT / f"latest{suffix}.json"
    target.write_text(json.dumps(collected, indent=1))
    table(
        f"Summary ({'quick' if args.quick else 'default sizes'}; {total / 60:.1f} min; figures in {target})",
        ["benchmark", "target", "result", "seconds"],
        rows,
        digits=0,
    )
    print(json.dumps({"bench": "run_all", "seconds": round(total, 1), "file": str(target)}))
    failed = [n for n, b in collected["benches"].items() if b["exit"] != 0]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
