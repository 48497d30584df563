"""The default embedding backend (OpenVINO for documents, ONNX Runtime for questions) against
torch, through the product's `Embedder`.

Embeds a SciFact subset (claims and abstracts; the same subset as `bench/backends.py
--quick`) with `Embedder.from_settings` on the default backend and with the torch backend,
and reports: the largest difference of any vector component and the smallest cosine between
the two backends' vectors, dense nDCG@10 of each over the subset, and encode speed (rounds
interleaved, medians; documents only, as ingest embeds them). The ONNX model is exported once
into bench/out/models (not timed).

    .venv/bin/python bench/default_backend.py [--claims N] [--docs N] [--rounds N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from backends import ndcg_at_10, scifact
from common import OUT, Timer, emit, log, median, table

from dossier_common.settings import Settings
from ingest.embedder import Embedder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--claims", type=int, default=50)
    parser.add_argument("--docs", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp), _env_file=None)
    default = Embedder.from_settings(settings)
    default.cache_dir = OUT / "models"  # exported once, kept between runs
    with Timer() as t:
        _ = default.model, default.documents
    log(f"default backend {settings.embedding_backend!r} -> {default.backend} ({t.wall:.0f} s to load)")
    torch = Embedder()
    _ = torch.model

    ids, texts, queries, relevant = scifact(True, args.claims, args.docs)
    vectors: dict[str, list[np.ndarray]] = {}
    walls: dict[str, list[float]] = {"default": [], "torch": []}
    for r in range(args.rounds):
        for name, emb in (
            (("default", default), ("torch", torch))
            if r % 2 == 0
            else (("torch", torch), ("default", default))
        ):
            with Timer() as t:
                docs = np.asarray(emb.embed_documents(texts))
            walls[name].append(t.wall)
            vectors[name] = [docs, np.asarray([emb.embed_query(q) for q in queries])]
            emb.clear_cache()
        log(f"round {r + 1}/{args.rounds} done")

    docs_d, q_d = vectors["default"]
    docs_t, q_t = vectors["torch"]
    both_d, both_t = np.vstack([docs_d, q_d]), np.vstack([docs_t, q_t])
    max_diff = float(np.max(np.abs(both_d - both_t)))
    min_cos = float(np.min(np.sum(both_d * both_t, axis=1)))
    ndcg = {
        "default": ndcg_at_10(docs_d, q_d, ids, relevant),
        "torch": ndcg_at_10(docs_t, q_t, ids, relevant),
    }
    speed = median(walls["torch"]) / median(walls["default"])
    table(
        f"Default backend ({default.backend}) vs torch: {len(queries)} claims, {len(texts)} abstracts",
        ["backend", "encode s (median)", "nDCG@10 (subset)"],
        [
            [default.backend, f"{median(walls['default']):.1f}", f"{ndcg['default']:.4f}"],
            ["torch", f"{median(walls['torch']):.1f}", f"{ndcg['torch']:.4f}"],
        ],
    )
    log(
        f"max |difference| of a component {max_diff:.2e}, min cosine {min_cos:.6f}, "
        f"nDCG@10 difference {ndcg['default'] - ndcg['torch']:+.4f}, speed {speed:.2f}x torch"
    )
    emit(
        "default_backend",
        {
            "backend": default.backend,
            "claims": len(queries),
            "abstracts": len(texts),
            "max_abs_diff": max_diff,
            "min_cosine": min_cos,
            "ndcg_at_10": {k: round(v, 4) for k, v in ndcg.items()},
            "speed_vs_torch": round(speed, 3),
            "time": time.strftime("%Y-%m-%d %H:%M %Z"),
        },
    )


if __name__ == "__main__":
    main()
