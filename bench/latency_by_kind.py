"""Warm `Engine.ask` p50 per question kind, on an existing index, for any checkout of the code.

Groups the PG essay questions (open-dev.jsonl with its `kind` labels, and the 51 factoid
questions of qa.jsonl) by the kind the question file gives, so that a checkout from before
question kinds existed can be measured on the same questions: run it from each checkout, on
the same DOSSIER_HOME, one after the other, and compare the lines. It imports the `bot`
package of the current directory (so it deliberately does not use bench/common.py, which puts
this repository first on the path).

    cd CHECKOUT && PYTHONPATH=. HF_HUB_OFFLINE=1 python PATH/TO/bench/latency_by_kind.py --home H
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

DATASETS = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "pg-essays"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="a DOSSIER_HOME holding the 212 essays")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    args = parser.parse_args()

    from bot.engine import Engine
    from dossier_common.settings import Settings
    from ingest.embedder import Embedder

    engine = Engine(Settings(home=args.home, _env_file=None), embedder=Embedder())
    engine.ask("warm up: what makes a startup succeed?")
    questions = []
    for name in ("open-dev.jsonl", "qa.jsonl"):
        with (args.datasets / name).open() as fh:
            questions += [json.loads(line) for line in fh if line.strip()]
    times: dict[str, list[float]] = {}
    for _ in range(args.passes):
        for q in questions:
            started = time.perf_counter()
            engine.ask(q["question"])
            times.setdefault(q.get("kind") or "factoid", []).append((time.perf_counter() - started) * 1000)
    engine.close()
    for kind, values in sorted(times.items()):
        print(f"{kind:<10}{len(values):>6} asks   p50 {statistics.median(values):7.1f} ms")
    print(
        json.dumps(
            {
                "bench": "latency_by_kind",
                "p50_ms": {k: round(statistics.median(v), 1) for k, v in sorted(times.items())},
            }
        )
    )


if __name__ == "__main__":
    main()
