"""How long from a file landing in a watched folder to a question answered from it.

Starts `dossier watch` on a temporary folder (its own DOSSIER_HOME), lets it load the model,
then measures, with an Engine in this process as the reader (like a running `dossier chat`):

- one small file: landing -> committed in the manifest -> `Engine.ask` answers citing it;
- the PG essays copied in at once: landing -> first essay committed -> all committed ->
  a question about one of them answered with its source retrieved.

    .venv/bin/python bench/watch_latency.py [--essays DIR] [--debounce-ms MS] [--repeat N]

Prints one line per figure and a JSON object at the end. Nothing is written outside a temp dir.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ESSAYS = ROOT.parent / "shared" / "datasets" / "pg-essays" / "essays"
ESSAY_QUESTION = "What key components are necessary to create a technology hub according to Paul Graham?"
ESSAY_SOURCE = "essays/siliconvalley.txt"
FACTS = [
    (
        "zorblat.txt",
        "The Zorblat festival takes place in Quillport every March.",
        "Where does the Zorblat festival take place?",
    ),
    (
        "marrow.txt",
        "The Marrowby lighthouse was painted green in 1931.",
        "What colour was the Marrowby lighthouse painted?",
    ),
    (
        "tarn.txt",
        "Copper from the Tarnby mine was shipped to Velden by barge.",
        "Where was Tarnby copper shipped?",
    ),
]


def _query(home: Path, sql: str) -> list[tuple]:
    db = sqlite3.connect(f"file:{home / 'index.sqlite'}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def _sources(home: Path) -> set[str]:
    return {r[0] for r in _query(home, "SELECT source FROM files")}


def _wait(check, timeout: float, what: str, interval: float = 0.02):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(interval)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--essays", type=Path, default=ESSAYS, help="folder of essays to drop at once")
    parser.add_argument(
        "--debounce-ms", type=int, default=None, help="DOSSIER_WATCH_DEBOUNCE_MS (default: the setting's)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="small-file runs (max 3)")
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    from bot.engine import Engine
    from dossier_common.settings import Settings

    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="dossier-watch-bench-") as tmp:
        docs, home = Path(tmp) / "docs", Path(tmp) / "home"
        docs.mkdir()
        (docs / "seed.txt").write_text("Kitchen rules: the copper kettle is descaled every month.\n")
        env = {**os.environ, "DOSSIER_HOME": str(home), "PYTHONUNBUFFERED": "1"}
        if args.debounce_ms is not None:
            env["DOSSIER_WATCH_DEBOUNCE_MS"] = str(args.debounce_ms)
        settings = Settings(
            home=home,
            _env_file=None,
            **({} if args.debounce_ms is None else {"watch_debounce_ms": args.debounce_ms}),
        )
        results["debounce_ms"] = settings.watch_debounce_ms
        lines: list[str] = []
        watcher = subprocess.Popen(
            [sys.executable, "-c", "from bot.cli import main; main()", "watch", str(docs)],
            env=env,
            cwd=tmp,
            stdout=subprocess.PIPE,
            text=True,
        )
        threading.Thread(
            target=lambda: lines.extend(line.rstrip() for line in watcher.stdout), daemon=True
        ).start()  # type: ignore[union-attr]
        try:
            _wait(lambda: lines, 180, "the watcher's first batch")
            engine = Engine(settings)
            engine.ask("How often is the kettle descaled?")  # load the model and open the index

            small = []
            for name, fact, question in FACTS[: args.repeat]:
                landed = time.perf_counter()
                (docs / name).write_text(fact + "\n")
                _wait(lambda n=name: n in _sources(home), 120, name)
                committed = time.perf_counter()
                answer = engine.ask(question)
                answered = time.perf_counter()
                cited = any(c.source == name for c in answer.citations)
                small.append({"commit_s": committed - landed, "answer_s": answered - landed, "cited": cited})
                print(
                    f"small file {name}: committed {committed - landed:.2f} s, answered {answered - landed:.2f} s, cited={cited}"
                )
            results["small_file"] = {
                "runs": small,
                "median_commit_s": round(statistics.median(r["commit_s"] for r in small), 2),
                "median_answer_s": round(statistics.median(r["answer_s"] for r in small), 2),
            }

            if args.essays.is_dir():
                essays = sorted(args.essays.glob("*.txt"))
                target = docs / "essays"
                target.mkdir()
                batches_before = len(lines)
                landed = time.perf_counter()
                for path in essays:
                    shutil.copyfile(path, target / path.name)
                copied = time.perf_counter()
                expected = {f"essays/{p.name}" for p in essays}
                _wait(lambda: _sources(home) & expected, 3600, "the first essay", interval=0.05)
                first = time.perf_counter()
                _wait(lambda: expected <= _sources(home), 3600, "all essays", interval=0.2)
                done = time.perf_counter()
                answer = engine.ask(ESSAY_QUESTION)
                answered = time.perf_counter()
                hit = (
                    [p.source for p in answer.retrieved].index(ESSAY_SOURCE) + 1
                    if any(p.source == ESSAY_SOURCE for p in answer.retrieved)
                    else None
                )
                chunks = _query(home, "SELECT COUNT(*) FROM chunks WHERE source LIKE 'essays/%'")[0][0]
                _wait(lambda: len(lines) > batches_before, 30, "the batch summaries")
                results["essays"] = {
                    "files": len(essays),
                    "chunks": chunks,
                    "copy_s": round(copied - landed, 2),
                    "first_commit_s": round(first - landed, 2),
                    "all_committed_s": round(done - landed, 2),
                    "answer_s": round(answered - landed, 2),
                    "source_rank": hit,
                    "batches": lines[batches_before:],
                }
                print(
                    f"{len(essays)} essays ({chunks} chunks): copied in {copied - landed:.2f} s; first committed "
                    f"{first - landed:.1f} s, all committed {done - landed:.1f} s, answered {answered - landed:.1f} s "
                    f"(source rank {hit})"
                )
            engine.close()
        finally:
            watcher.send_signal(signal.SIGTERM)
            results["watcher_exit"] = watcher.wait(120)
    results["cpus"] = os.cpu_count()
    results["load_avg_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
