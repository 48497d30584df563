"""DOSSIER_EMBEDDING_BACKEND=onnx: exported from the local weights, same vectors as torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.engine import Engine
from dossier_common.settings import Settings
from ingest.embedder import Embedder
from ingest.pipeline import ingest_paths


@pytest.fixture(scope="module")
def onnx_embedder(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    return Embedder(backend="onnx", cache_dir=tmp_path_factory.mktemp("models"))


def test_onnx_vectors_match_torch(onnx_embedder: Embedder, embedder: Embedder) -> None:
    texts = ["Fox Hunt was launched as part of an anti-corruption campaign.", "short", "x " * 400]
    ours = np.asarray(onnx_embedder.embed_documents(texts))
    reference = np.asarray(embedder.embed_documents(texts))
    assert ours.shape == reference.shape == (3, 384)
    assert np.min(np.sum(ours * reference, axis=1)) > 0.999
    assert onnx_embedder.max_tokens == embedder.max_tokens == 254
    assert onnx_embedder.count_tokens(texts) == embedder.count_tokens(texts)
    exported = list(Path(onnx_embedder.cache_dir).rglob("model.onnx"))
    assert len(exported) == 1  # built once, locally


def test_ingest_and_answer_with_the_onnx_backend(
    tmp_path: Path, onnx_embedder: Embedder, corpus_dir: Path
) -> None:
    settings = Settings(home=tmp_path / "home", embedding_backend="onnx", _env_file=None)
    report = ingest_paths([corpus_dir], settings, onnx_embedder)
    assert report.added == 1 and report.embedded == report.chunks
    engine = Engine(settings, embedder=onnx_embedder)
    answer = engine.ask("Operation Fox Hunt was launched as part of which campaign?")
    assert "anti-corruption" in answer.text and answer.citations
    # Sentence vectors were stored from the ONNX token embeddings: no sentence was re-embedded.
    assert engine._retriever.sentence_vectors(answer.retrieved) is not None
    engine.close()
