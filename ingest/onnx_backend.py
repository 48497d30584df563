"""The embedding model as an ONNX graph, run by ONNX Runtime or by OpenVINO.

The ONNX file is exported once from the local weights (never downloaded) into
DOSSIER_HOME/models/ and reused; torch is imported only for that export. Two runtimes read it:

- OpenVINO (`runtime="openvino"`) embeds documents under the default backend
  (`DOSSIER_EMBEDDING_BACKEND=openvino`). On CPUs with AMX or AVX512-BF16 it computes in
  bfloat16 by default: bench/backends.py measured 2.9x torch's throughput with vectors at
  cosine >= 0.99998 to torch's and the same SciFact nDCG@10 (within 0.005); elsewhere it runs
  in f32. Its compiled graph is cached next to the ONNX file, so later loads take ~0.1 s.
- ONNX Runtime embeds questions (one short text: loads in ~0.2 s and holds ~80 MB less than
  OpenVINO, which matters to a serving process) and everything under
  `DOSSIER_EMBEDDING_BACKEND=onnx`.

When a runtime cannot be used, `Embedder` falls back with one warning (ingest/embedder.py).
`OnnxSentenceModel` mimics the part of SentenceTransformer the embedder uses: `encode`
(sentence and token embeddings), `tokenizer`, `max_seq_length`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dossier_common.errors import ConfigError

log = logging.getLogger(__name__)

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class FastTokenizer:
    """The calls the embedder makes on a Hugging Face tokenizer, made on the `tokenizers`
    library directly: transformers' AutoTokenizer imports torch (transformers 5 pulls it in
    through configuration_utils), which would cost the ONNX backend ~1 s and ~250 MB per
    process for nothing. Same ids and offsets (tokenizer.json is what the fast tokenizer runs)."""

    def __init__(self, path: Path, max_length: int) -> None:
        from tokenizers import Tokenizer

        self._plain = Tokenizer.from_file(str(path))
        self._plain.no_truncation()  # tokenizer.json may carry the exporter's settings
        self._plain.no_padding()
        self._cut = Tokenizer.from_file(str(path))
        self._cut.no_padding()
        self._max_length = max_length
        self._cut.enable_truncation(max_length)
        self.pad_id = self._plain.token_to_id("[PAD]") or 0

    def __call__(
        self,
        texts: Sequence[str],
        add_special_tokens: bool = True,
        truncation: bool = False,
        max_length: int | None = None,
        padding: bool = False,
        return_offsets_mapping: bool = False,
        return_tensors: str | None = None,
    ) -> dict[str, Any]:
        if truncation and max_length not in (None, self._max_length):
            raise ValueError(f"this tokenizer truncates at {self._max_length} tokens only")
        tokenizer = self._cut if truncation else self._plain
        encodings = tokenizer.encode_batch(list(texts), add_special_tokens=add_special_tokens)
        out: dict[str, Any] = {
            "input_ids": [e.ids for e in encodings],
            "attention_mask": [e.attention_mask for e in encodings],
            "token_type_ids": [e.type_ids for e in encodings],
        }
        if return_offsets_mapping:
            out["offset_mapping"] = [e.offsets for e in encodings]
        if padding or return_tensors == "np":
            width = max((len(ids) for ids in out["input_ids"]), default=0)
            for key, fill in (("input_ids", self.pad_id), ("attention_mask", 0), ("token_type_ids", 0)):
                rows = np.full((len(encodings), width), fill, dtype=np.int64)
                for i, values in enumerate(out[key]):
                    rows[i, : len(values)] = values
                out[key] = rows
        return out


class OnnxSentenceModel:
    def __init__(self, model_path: str, cache_root: Path, runtime: str = "onnxruntime") -> None:
        # The runtime is imported first: without it, exporting would be wasted.
        if runtime == "openvino":
            import openvino  # noqa: F401
        else:
            import onnxruntime  # noqa: F401

        folder = Path(model_path)
        config = _read_json(folder / "sentence_bert_config.json")
        pooling = _read_json(next(folder.glob("*Pooling*/config.json"), folder / "missing.json"))
        if not pooling.get("pooling_mode_mean_tokens"):
            raise ConfigError(
                "DOSSIER_EMBEDDING_BACKEND=onnx supports mean-pooling sentence-transformers models only; "
                "use the torch backend for this model."
            )
        self.max_seq_length = int(config.get("max_seq_length", 256))
        if (folder / "tokenizer.json").exists():
            self.tokenizer: Any = FastTokenizer(folder / "tokenizer.json", self.max_seq_length)
        else:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]
        onnx_file = cache_root / f"{folder.name}-{digest}" / "model.onnx"
        if not onnx_file.exists():
            export_onnx(folder, onnx_file)
        self.runtime = runtime
        if runtime == "openvino":
            self._run, self.dimension, self.precision = _openvino(onnx_file)
            self._rows = 32  # OpenVINO bf16 here: 32 rows 2.49 s, 16 2.68 s, 64 3.17 s (300 abstracts)
        else:
            self._run, self.dimension = _onnxruntime(onnx_file)
            self.precision = "f32"
            # ONNX Runtime on these CPUs is fastest on small batches (bench/RESULTS.md: 73
            # chunks/s at 16 rows, 57 at 64).
            self._rows = 16

    def get_embedding_dimension(self) -> int:
        return self.dimension

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        normalize_embeddings: bool = True,
        show_progress_bar: bool = False,
        output_value: str | None = "sentence_embedding",
    ) -> Any:
        texts = list(texts)
        # The whole call is sorted by length, then run a few rows at a time (the runtime's best).
        results: list[dict[str, np.ndarray]] = [{} for _ in texts]
        batches = run_batches(
            self.tokenizer, self._run, texts, min(batch_size, self._rows), self.max_seq_length
        )
        for idx, mask, tokens, pooled in batches:
            if normalize_embeddings:
                pooled = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            for row, i in enumerate(idx):
                length = int(mask[row].sum())
                results[i] = {"sentence_embedding": pooled[row], "token_embeddings": tokens[row, :length]}
        if output_value is None:
            return results
        return np.stack([r[output_value] for r in results]) if results else np.zeros((0, self.dimension))


def _onnxruntime(onnx_file: Path) -> tuple[Callable[[dict[str, np.ndarray]], np.ndarray], int]:
    """A function running the graph with ONNX Runtime (all graph optimisations), and its width."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
    width = int(session.get_outputs()[0].shape[-1])
    return (lambda feeds: session.run(None, feeds)[0]), width


def _openvino(onnx_file: Path) -> tuple[Callable[[dict[str, np.ndarray]], np.ndarray], int, str]:
    """A function running the graph with OpenVINO on the CPU at its default precision (bf16
    where the CPU has it), its width, and the precision used. The compiled graph is cached in
    `openvino-cache/` beside the file; a cache another process left unreadable is skipped."""
    import openvino as ov

    core = ov.Core()
    config = {"PERFORMANCE_HINT": "LATENCY"}
    try:  # from the path: a cached graph is then found without reading the model
        cache = str(onnx_file.parent / "openvino-cache")
        compiled = core.compile_model(str(onnx_file), "CPU", {**config, "CACHE_DIR": cache})
    except RuntimeError:
        compiled = core.compile_model(str(onnx_file), "CPU", config)
    width = int(compiled.output(0).get_partial_shape()[-1].get_length())
    hint = compiled.get_property("INFERENCE_PRECISION_HINT")
    precision = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)
    lock = threading.Lock()  # one infer request, used by one thread at a time
    request = compiled.create_infer_request()

    def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
        with lock:
            return np.array(request.infer(feeds)[0])  # a copy: the request reuses its buffers

    return run, width, precision


def run_batches(
    tokenizer: Any,
    run: Callable[[dict[str, np.ndarray]], np.ndarray],
    texts: Sequence[str],
    batch_size: int,
    max_length: int,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Texts sorted by length (similar lengths pad less), tokenised and run through a
    transformer graph `batch_size` at a time. Yields, per batch: the texts' indices, the
    attention mask, the token vectors and their mean (not normalised)."""
    order = np.argsort([-len(t) for t in texts], kind="stable")
    for start in range(0, len(texts), batch_size):
        idx = order[start : start + batch_size]
        enc = tokenizer(
            [texts[i] for i in idx], padding=True, truncation=True, max_length=max_length, return_tensors="np"
        )
        feeds = {name: enc[name].astype(np.int64) for name in _INPUTS}
        tokens = run(feeds)
        mask = feeds["attention_mask"]
        weights = mask[..., None].astype(np.float32)
        pooled = (tokens * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        yield idx, mask, tokens, pooled


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def export_onnx(folder: Path, target: Path) -> None:
    """torch.onnx.export of the transformer (token embeddings out), atomically."""
    import warnings

    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    log.info("exporting %s to ONNX (once)", folder)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder), attn_implementation="eager").eval()

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    sample = tokenizer(["an example", "a second, longer example sentence"], padding=True, return_tensors="pt")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.partial")
    # The tracer warns about shape logic it freezes; padding and truncation stay dynamic
    # (tests compare the exported model with torch on padded batches).
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            TokenEmbeddings(model),
            tuple(sample[name] for name in _INPUTS),
            str(partial),
            input_names=list(_INPUTS),
            output_names=["token_embeddings"],
            dynamic_axes={name: {0: "batch", 1: "sequence"} for name in [*_INPUTS, "token_embeddings"]},
            opset_version=17,
            dynamo=False,
        )
    os.replace(partial, target)
