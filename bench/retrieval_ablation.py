"""Retrieval ablation: dense only, keyword only and the fused ranking, on one ingested index.

Usage: DOSSIER_HOME=<home with the corpus ingested> python bench/retrieval_ablation.py QUESTIONS.jsonl [-k 5]

Prints hit@k, MRR and nDCG@10 (by source) for each configuration of the same retriever, so the
published single-method figures (SciFact: MiniLM dense 0.645, BM25 0.665) can be compared with
ours measured the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from bot.engine import Engine
from bot.evaluate import hit_rank, load_questions, ndcg_at_10
from bot.retrieval import HybridRetriever, passages_by_source
from dossier_common.settings import Settings

_BASE = {"dense_weight": 0.5, "keyword_weight": 1.0, "source_decay": 0.8}
_OFF = {"document_weight": 0.0, "evidence": False}
# Each configuration is a retriever built with these constructor arguments over the engine's
# index; "evidence" turns the evidence ordering of the top passages on or off.
CONFIGS: dict[str, dict[str, float]] = {
    "dense only": {"dense_weight": 1.0, "keyword_weight": 0.0, "source_decay": 1.0, **_OFF},
    "BM25 only": {"dense_weight": 0.0, "keyword_weight": 1.0, "source_decay": 1.0, **_OFF},
    "RRF 1:1": {"dense_weight": 1.0, "keyword_weight": 1.0, "source_decay": 1.0, **_OFF},
    "RRF 0.5:1, decay 0.8": {**_BASE, **_OFF},
    "+ evidence order": {**_BASE, "document_weight": 0.0, "evidence": True},
    "+ documents 0.3": {**_BASE, "document_weight": 0.3, "evidence": False},
    "default (both)": {**_BASE, "document_weight": 0.3, "evidence": True},
    "default, documents 0.15": {**_BASE, "document_weight": 0.15, "evidence": True},
    "default, documents 0.5": {**_BASE, "document_weight": 0.5, "evidence": True},
    "default, top documents 3": {**_BASE, "document_weight": 0.3, "evidence": True, "top_documents": 3},
    "default, top documents 8": {**_BASE, "document_weight": 0.3, "evidence": True, "top_documents": 8},
    "default, no named bonus": {**_BASE, "document_weight": 0.3, "evidence": True, "named_bonus": 0.0},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("questions", type=Path)
    parser.add_argument("-k", type=int, default=5)
    args = parser.parse_args()
    settings = Settings()
    engine = Engine(settings)
    engine.retrieve("warm up", 1)
    base = engine.retriever
    questions = load_questions(args.questions)
    figures = {}
    only = os.environ.get("ABLATION_ONLY")  # run only the configurations whose name has this
    for name, config in CONFIGS.items():
        if only and only not in name:
            continue
        weights = {key: value for key, value in config.items() if key != "evidence"}
        retriever = HybridRetriever(
            base.manifest,
            base.store,
            base.embedder,
            cache_dir=settings.home / "keyword",
            evidence=base.evidence if config["evidence"] else None,
            context_chunks=base.context_chunks,
            **weights,  # type: ignore[arg-type]
        )
        engine.embedder.clear_cache()  # each configuration pays for its query embeddings
        hits, ranks, ndcgs = 0, [], []
        started = time.perf_counter()
        for q in questions:
            # As `dossier eval` does: hit and MRR on the k passages an answer gets, nDCG deeper.
            top = retriever.retrieve(q.question, args.k)
            rank = hit_rank(top, q)
            hits += rank is not None
            ranks.append(1 / rank if rank else 0.0)
            if q.relevant_sources:
                deeper = retriever.retrieve(q.question, 30)
                ndcgs.append(ndcg_at_10(passages_by_source(deeper), q.relevant_sources))
        n = len(questions)
        figures[name] = {
            f"hit_at_{args.k}": round(hits / n, 4),
            "mrr": round(sum(ranks) / n, 4),
            "ndcg_at_10": round(sum(ndcgs) / len(ndcgs), 4) if ndcgs else None,
            "ms_per_query": round((time.perf_counter() - started) * 1000 / n, 1),
        }
    print(f"{'configuration':<24}{'hit@' + str(args.k):>8}{'MRR':>8}{'nDCG@10':>9}{'ms/q':>8}")
    for name, f in figures.items():
        ndcg = "-" if f["ndcg_at_10"] is None else f"{f['ndcg_at_10']:.3f}"
        print(f"{name:<24}{f[f'hit_at_{args.k}']:>8.3f}{f['mrr']:>8.3f}{ndcg:>9}{f['ms_per_query']:>8.1f}")
    print(json.dumps({"bench": "retrieval_ablation", "questions": str(args.questions), "figures": figures}))


if __name__ == "__main__":
    main()
