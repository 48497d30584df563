"""Cross-language abstention (issue 16): which signal tells a Chinese question the English
documents answer from one they do not, for the multilingual model?

Each question is asked through the engine (the index in DOSSIER_HOME, built with
DOSSIER_EMBEDDING_MODEL=multilingual); over the passages it retrieved, this prints per question:

  evidence  the answerer's best sentence score (what the threshold is compared with today)
  best      the best raw cosine of a sentence or clause to the question
  mean, sd  the mean and spread of the cosines of every sentence of the retrieved passages
  margin    best - mean: how far the best sentence stands out of the text around it
  z         margin / sd
  null      best - the question's mean cosine to a few sentences on nothing in particular
  agree     whether the best sentence lies in the best-ranked passage

and, per signal, the largest cut that keeps every answerable question of the tuning files
answered, with how many unanswerable ones it declines on the tuning and held-out files; then,
for `best` (the signal chosen: DOSSIER_CROSS_LANGUAGE_THRESHOLD), a few bars around that cut.
The questions are asked with the cross-language bar off, so the figures are those before it.

  DOSSIER_HOME=... DOSSIER_EMBEDDING_MODEL=multilingual python bench/cross_language_signals.py \\
      --tune ../shared/eval/report-zh-dev.jsonl bench/data/zh-cross-language-tune.jsonl \\
      --held-out bench/data/zh-cross-language-held-out.jsonl

The other direction, English questions over Chinese text: --zh-library indexes the Chinese
corpus of bench/zh_corpus.py (a temporary home, the multilingual model) and asks there:

  python bench/cross_language_signals.py --zh-library --tune bench/data/en-over-zh-library.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.engine import Engine  # noqa: E402
from dossier_common.settings import Settings  # noqa: E402

# Sentences about nothing the report (or most documents) discusses: the question's cosine to
# them is its baseline, how close it sits to any text at all.
NULL_TEXTS = [
    "The kettle was on the stove for ten minutes.",
    "She painted the fence blue last summer.",
    "Trains leave the station every half hour.",
    "The recipe needs two cups of flour.",
]
SIGNALS = ("evidence", "best", "margin", "z", "null")


def signals(engine: Engine, question: str, null_vectors: np.ndarray) -> dict[str, float | bool]:
    answer = engine.ask(question)
    passages = list(answer.retrieved)
    extractive = engine._extractive
    assert extractive is not None
    q = np.asarray(engine.embedder.embed_query(question), dtype=np.float32)
    stored = extractive.sentence_vectors(passages) if extractive.sentence_vectors else None
    units = stored if stored is not None else extractive._embed_units(passages)
    cosines: list[tuple[float, int]] = []
    for i, spans in enumerate(units):
        for _a, _b, _kind, vector in spans:
            cosines.append((float(vector.astype(np.float32) @ q), i))
    values = [c for c, _ in cosines] or [0.0]
    best, where = max(cosines) if cosines else (0.0, -1)
    mean = statistics.fmean(values)
    sd = statistics.pstdev(values) or 1e-6
    return {
        "abstained": answer.abstained,
        "evidence": float(answer.evidence or 0.0),
        "best": best,
        "mean": mean,
        "sd": sd,
        "margin": best - mean,
        "z": (best - mean) / sd,
        "null": best - float(np.mean(null_vectors @ q)),
        "agree": where == 0,
    }


def rows(engine: Engine, files: list[Path], null_vectors: np.ndarray) -> list[dict]:
    out = []
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                q = json.loads(line)
                out.append(
                    {
                        "id": q["id"],
                        "answerable": q.get("answerable", True),
                        **signals(engine, q["question"], null_vectors),
                    }
                )
    return out


def tally(group: list[dict], key: str, cut: float) -> str:
    """How many unanswerable questions a cut on `key` declines (or were declined anyway), and
    how many answered answerable ones it would decline."""
    unanswerable = [r for r in group if not r["answerable"]]
    declined = sum(1 for r in unanswerable if r["abstained"] or r[key] < cut)
    lost = sum(1 for r in group if r["answerable"] and not r["abstained"] and r[key] < cut)
    return f"declines {declined}/{len(unanswerable)}, answerable lost {lost}"


def library_settings(root: Path) -> Settings:
    """A multilingual index of the Chinese library corpus under `root`, and its settings."""
    from bench.zh_corpus import PARAGRAPHS
    from ingest.embedder import Embedder
    from ingest.pipeline import ingest_paths

    docs = root / "docs"
    docs.mkdir()
    (docs / "library.md").write_text("# 青石市图书馆\n\n" + "\n\n".join(PARAGRAPHS), encoding="utf-8")
    settings = Settings(
        home=root / "home", embedding_model="multilingual", cross_language_threshold=0.0, _env_file=None
    )
    ingest_paths([docs], settings, Embedder.from_settings(settings))
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tune", type=Path, nargs="+", required=True)
    parser.add_argument("--held-out", type=Path, nargs="*", default=[])
    parser.add_argument("--zh-library", action="store_true", help="ask over bench/zh_corpus.py instead")
    args = parser.parse_args()
    settings = Settings(cross_language_threshold=0.0)  # the bar off: measure before it
    if args.zh_library:
        settings = library_settings(Path(tempfile.mkdtemp(prefix="zh-library-")))
    engine = Engine(settings)
    null_vectors = np.asarray(engine.embedder.embed_documents(NULL_TEXTS), dtype=np.float32)
    tune, held = rows(engine, args.tune, null_vectors), rows(engine, args.held_out, null_vectors)
    for name, group in (("tune", tune), ("held-out", held)):
        print(f"== {name}")
        for r in group:
            print(
                f"{r['id']:8} {'A' if r['answerable'] else 'U'} {'abst' if r['abstained'] else 'ans '}"
                + "".join(
                    f" {k}={r[k]:.3f}" for k in ("evidence", "best", "mean", "sd", "margin", "z", "null")
                )
                + f" agree={r['agree']}"
            )
    print("== cuts (largest value that keeps every answered answerable tuning question answered)")
    for key in SIGNALS:
        cut = min(r[key] for r in tune if r["answerable"] and not r["abstained"])
        print(
            f"{key:8} cut {cut:.3f}: "
            + "; ".join(
                f"{name} {tally(group, key, cut)}" for name, group in (("tune", tune), ("held-out", held))
            )
        )
    print("== best: bars")
    for bar in (0.79, 0.795, 0.80, 0.805, 0.81, 0.815):
        print(
            f"{bar:.3f}: "
            + "; ".join(
                f"{name} {tally(group, 'best', bar)}" for name, group in (("tune", tune), ("held-out", held))
            )
        )
    engine.close()


if __name__ == "__main__":
    main()
