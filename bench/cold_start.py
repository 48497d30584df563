"""Cold start: `dossier ask` in a new process against the floor `python -c "import torch"`.

Each round runs, as new processes from a temp cwd with a temp copy of the real base index
(PG essays + SciFact abstracts; see bench/synth.py):

- floor: `python -c "import torch"` (wall);
- model load: a process that imports torch, then times importing sentence-transformers and
  building the SentenceTransformer from the shipped weights (in-process clock, so it is
  the load alone);
- `dossier ask QUESTION --json` (wall): what a user waits for;
- the same with a question in Chinese (`QUESTION_ZH`; issue 16: <= 2 s on a quiet machine).
  The base index has no Chinese, so the question's Chinese words can match nothing and jieba's
  dictionary is not loaded (index.languages): it should cost what the English one does;
- the same steps as `dossier ask`, timed inside a child (imports, engine open with model
  load and Chroma, keyword index, the ask itself) to show where the time goes.

Target: `dossier ask` <= 1.5 x (floor + model load). Medians over `--rounds` rounds.

    .venv/bin/python bench/cold_start.py [--quick] [--rounds N]
"""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

from common import PYTHON, Timer, child_env, emit, log, median, model_path, run_child, table, verdict

DOSSIER = str(Path(PYTHON).parent / "dossier")
QUESTION = "What key components are necessary to create a technology hub according to Paul Graham?"
QUESTION_ZH = "根据保罗·格雷厄姆的说法，建立一个科技中心需要哪些关键要素？"
TARGET = 1.5

MODEL_LOAD = """
import json, time
import torch
t0 = time.perf_counter()
from sentence_transformers import SentenceTransformer
t1 = time.perf_counter()
SentenceTransformer({path!r}, device="cpu", local_files_only=True)
t2 = time.perf_counter()
print(json.dumps({{"import_st": t1 - t0, "construct": t2 - t1}}))
"""


def child_breakdown(question: str) -> None:
    """Run by `--child`: the steps of `dossier ask`, each timed."""
    entered = time.time()
    atexit.register(gc.freeze)  # as bot/cli.py's main does, so the exit is timed like the command's
    t0 = time.perf_counter()
    from bot.engine import Engine
    from dossier_common.settings import Settings

    t1 = time.perf_counter()
    engine = Engine(Settings())
    retriever = engine.retriever  # loads the model (dimension check), the keyword index, Chroma
    t2 = time.perf_counter()
    retriever.refresh()  # nothing left to do since the engine builds it on opening
    t3 = time.perf_counter()
    answer = engine.ask(question)
    t4 = time.perf_counter()
    print(
        json.dumps(
            {
                "imports": t1 - t0,
                "open_engine_model_chroma": t2 - t1,
                "keyword_index": t3 - t2,
                "ask": t4 - t3,
                "ask_timings_ms": answer.timings_ms,
                "entered": entered,
                "left": time.time(),
            }
        ),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds over the small base index")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_breakdown(QUESTION)
        return
    rounds = args.rounds or (3 if args.quick else 5)
    from synth import base_home, copy_home  # not in the child: it would inflate its start-up

    path = model_path()
    base = base_home(args.quick)

    floor: list[float] = []
    load: list[float] = []
    load_parts: list[dict[str, float]] = []
    ask: list[float] = []
    ask_zh: list[float] = []
    parts: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="dossier-bench-cold-") as tmp:
        home = copy_home(base, Path(tmp) / "home")
        env = child_env(home)
        out = json.loads(
            run_child([DOSSIER, "ask", QUESTION, "--json"], env=env)
        )  # also warms the page cache
        chunks = json.loads(run_child([DOSSIER, "status", "--json"], env=env)).get("chunks")
        for r in range(rounds):
            with Timer() as t:
                run_child([PYTHON, "-c", "import torch"], env=env)
            floor.append(t.wall)
            got = json.loads(run_child([PYTHON, "-c", MODEL_LOAD.format(path=path)], env=env))
            load_parts.append(got)
            load.append(got["import_st"] + got["construct"])
            with Timer() as t:
                out = json.loads(run_child([DOSSIER, "ask", QUESTION, "--json"], env=env))
            ask.append(t.wall)
            with Timer() as t:
                run_child([DOSSIER, "ask", QUESTION_ZH, "--json"], env=env)
            ask_zh.append(t.wall)
            launched = time.time()
            got = json.loads(run_child([PYTHON, str(Path(__file__).resolve()), "--child"], env=env))
            got["interpreter_start"] = got["entered"] - launched
            got["interpreter_exit"] = time.time() - got["left"]
            parts.append(got)
            log(
                f"round {r + 1}/{rounds}: floor {floor[-1]:.2f} s, load {load[-1]:.2f} s, ask {ask[-1]:.2f} s, "
                f"ask in Chinese {ask_zh[-1]:.2f} s"
            )
    assert out["citations"], "the cold ask did not answer"

    floor_s, load_s, ask_s = median(floor), median(load), median(ask)
    budget = TARGET * (floor_s + load_s)
    ratio = ask_s / (floor_s + load_s)
    keys = [
        "interpreter_start",
        "imports",
        "open_engine_model_chroma",
        "keyword_index",
        "ask",
        "interpreter_exit",
    ]
    breakdown = {k: round(median([p[k] for p in parts]), 3) for k in keys}
    table(
        f"Cold start ({chunks:,} chunks indexed; medians of {rounds} rounds)",
        ["process", "seconds"],
        [
            ['python -c "import torch" (floor)', floor_s],
            ["model load (import sentence-transformers + build), after torch", load_s],
            ["  of which import sentence-transformers", median([p["import_st"] for p in load_parts])],
            ["floor + model load", floor_s + load_s],
            ["dossier ask QUESTION --json", ask_s],
            ["dossier ask QUESTION_ZH --json (Chinese)", median(ask_zh)],
            ["  the same steps, timed in a child:", ""],
            ["  interpreter start (+ bench module imports)", breakdown["interpreter_start"]],
            ["  imports (bot.engine, ingest...)", breakdown["imports"]],
            ["  open engine: model load, keyword index, Chroma", breakdown["open_engine_model_chroma"]],
            ["  keyword index (already built on opening)", breakdown["keyword_index"]],
            ["  the ask", breakdown["ask"]],
            ["  interpreter exit", breakdown["interpreter_exit"]],
        ],
        digits=2,
    )
    print(
        f"dossier ask / (floor + model load) = {ratio:.2f} (target <= {TARGET}: {verdict(ratio <= TARGET)}; "
        f"budget {budget:.2f} s)"
    )
    emit(
        "cold_start",
        {
            "quick": args.quick,
            "rounds": rounds,
            "chunks": chunks,
            "floor_s": round(floor_s, 3),
            "model_load_s": round(load_s, 3),
            "dossier_ask_s": round(ask_s, 3),
            "dossier_ask_zh_s": round(median(ask_zh), 3),
            "ratio": round(ratio, 3),
            "breakdown_s": breakdown,
            "samples": {"floor": floor, "model_load": load, "ask": ask, "ask_zh": ask_zh},
            "targets": {"ask_le_1_5x_floor_plus_load": ratio <= TARGET},
        },
    )


if __name__ == "__main__":
    sys.exit(main())
