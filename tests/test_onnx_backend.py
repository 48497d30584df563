"""The embedding backends: ONNX Runtime (the default, exported once from the local weights) and
torch (used for the export, and as the fallback with one warning). Same vectors, same answers,
and an index built on one backend is read and updated on the other without `--full`."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.engine import Engine
from dossier_common.settings import Settings
from ingest.embedder import Embedder
from ingest.pipeline import ingest_paths
from tests.onnx_models import exported_models, seed_models

GARDENS = {
    "gardens.md": "# Community gardens\n\nVolunteers at the Elm Street garden logged 1,240 hours in 2025.\n\n"
    "The Riverside garden grows pumpkins and squash for the food bank.\n",
    "kiln.txt": "The kiln at Tarnby runs at 1260 degrees. It was rebuilt in 2019 by the pottery guild.\n",
}


@pytest.fixture(scope="module")
def onnx_embedder() -> Embedder:
    """The ONNX model of the session's one export (tests/onnx_models.py)."""
    return Embedder(backend="onnx", cache_dir=exported_models())


@pytest.fixture
def gardens(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in GARDENS.items():
        (docs / name).write_text(text, encoding="utf-8")
    return docs


def test_onnx_is_the_default_backend() -> None:
    assert Settings(_env_file=None).embedding_backend == "onnx"


def test_onnx_vectors_match_torch(onnx_embedder: Embedder, embedder: Embedder) -> None:
    texts = ["Fox Hunt was launched as part of an anti-corruption campaign.", "short", "x " * 400]
    ours = np.asarray(onnx_embedder.embed_documents(texts))
    reference = np.asarray(embedder.embed_documents(texts))
    assert onnx_embedder.backend == "onnx"
    assert ours.shape == reference.shape == (3, 384)
    assert np.min(np.sum(ours * reference, axis=1)) > 0.999
    assert onnx_embedder.max_tokens == embedder.max_tokens == 254
    assert onnx_embedder.count_tokens(texts) == embedder.count_tokens(texts)
    exported = list(exported_models().rglob("model.onnx"))
    assert len(exported) == 1  # built once, locally


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_ingest_and_answer_on_each_backend(
    backend: str, tmp_path: Path, gardens: Path, monkeypatch: pytest.MonkeyPatch, embedder: Embedder
) -> None:
    """The product path: the embedder comes from the settings (DOSSIER_EMBEDDING_BACKEND)."""
    home = tmp_path / "home"
    if backend == "onnx":
        seed_models(home)  # as a first ingest would have exported it
    else:  # the session's torch model, instead of loading another copy
        monkeypatch.setattr("ingest.embedder._load", lambda name, device: embedder.model)
    monkeypatch.setenv("DOSSIER_EMBEDDING_BACKEND", backend)
    settings = Settings(home=home, _env_file=None)
    assert settings.embedding_backend == backend
    chosen = Embedder.from_settings(settings)
    report = ingest_paths([gardens], settings, chosen)
    assert report.added == 2 and report.embedded == report.chunks
    assert chosen.backend == backend and chosen.fallback_reason is None
    engine = Engine(settings, embedder=chosen)
    answer = engine.ask("How many hours did volunteers at the Elm Street garden log?")
    assert "1,240 hours" in answer.text and answer.citations
    assert engine._retriever.sentence_vectors(answer.retrieved) is not None  # from the ingest's tokens
    engine.close()
    assert (home / "models").exists() == (backend == "onnx")  # torch never exports


def test_ingest_and_answer_the_report_with_the_onnx_backend(
    tmp_path: Path, onnx_embedder: Embedder, corpus_dir: Path
) -> None:
    settings = Settings(home=tmp_path / "home", _env_file=None)
    report = ingest_paths([corpus_dir], settings, onnx_embedder)
    assert report.added == 1 and report.embedded == report.chunks
    engine = Engine(settings, embedder=onnx_embedder)
    answer = engine.ask("Operation Fox Hunt was launched as part of which campaign?")
    assert "anti-corruption" in answer.text and answer.citations
    # Sentence vectors were stored from the ONNX token embeddings: no sentence was re-embedded.
    assert engine._retriever.sentence_vectors(answer.retrieved) is not None
    engine.close()


@pytest.mark.parametrize("first", ["torch", "onnx"])
def test_switching_backends_keeps_the_index(
    first: str, tmp_path: Path, gardens: Path, embedder: Embedder, onnx_embedder: Embedder
) -> None:
    """Same model, same vectors (cosine > 0.999): the model guard must not ask for `--full`."""
    by_name = {"torch": embedder, "onnx": onnx_embedder}
    second = "onnx" if first == "torch" else "torch"
    settings = Settings(home=tmp_path / "home", _env_file=None)
    ingest_paths([gardens], settings, by_name[first])
    again = ingest_paths([gardens], settings, by_name[second])
    assert (again.unchanged, again.embedded) == (2, 0)  # nothing re-embedded, no error
    (gardens / "kiln.txt").write_text(
        GARDENS["kiln.txt"] + "\nThe guild's annual fair is held in Ystad every May.\n"
    )
    changed = ingest_paths([gardens], settings, by_name[second])
    assert changed.updated == 1 and changed.embedded >= 1
    engine = Engine(settings, embedder=by_name[second])
    assert "1260 degrees" in engine.ask("What temperature does the kiln at Tarnby run at?").text
    assert "Ystad" in engine.ask("Where is the pottery guild's annual fair held?").text
    engine.close()


def _fallback(
    embedder: Embedder, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> list[str]:
    """torch loads stand in for by the session's model; returns the names it was asked for."""
    loaded: list[str] = []

    def fake_load(name: str, device: str | None) -> object:
        loaded.append(name)
        return embedder.model  # the session's torch model stands for a fresh load

    monkeypatch.setattr("ingest.embedder._load", fake_load)
    caplog.set_level(logging.WARNING, logger="ingest.embedder")
    return loaded


def test_without_onnxruntime_torch_is_used_with_one_warning(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    loaded = _fallback(embedder, monkeypatch, caplog)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` fails
    settings = Settings(home=tmp_path / "home", _env_file=None)
    chosen = Embedder.from_settings(settings)
    assert chosen.model is embedder.model and loaded and chosen.backend == "torch"
    assert chosen.embed_query("kiln temperature") == embedder.embed_query("kiln temperature")
    assert not (tmp_path / "home" / "models").exists()  # no export for a backend that cannot run
    [record] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    message = record.getMessage()
    assert "\n" not in message and "onnxruntime is not installed" in message
    assert "pip install -e '.[onnx]'" in message and "DOSSIER_EMBEDDING_BACKEND=torch" in message


def test_a_failed_export_falls_back_to_torch_with_one_warning(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _fallback(embedder, monkeypatch, caplog)

    def broken_export(folder: Path, target: Path) -> None:
        raise RuntimeError("tracer\nexploded")

    monkeypatch.setattr("ingest.onnx_backend.export_onnx", broken_export)
    chosen = Embedder(backend="onnx", cache_dir=tmp_path / "models")
    assert chosen.model is embedder.model and chosen.backend == "torch"
    [record] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    message = record.getMessage()
    assert "\n" not in message and "export" in message and "RuntimeError: tracer exploded" in message
    assert "DOSSIER_EMBEDDING_BACKEND=torch" in message
    assert chosen.fallback_reason and "failed" in chosen.fallback_reason


def test_a_missing_model_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    from dossier_common.errors import ModelNotFoundError

    chosen = Embedder(str(tmp_path / "no-such-model"), backend="onnx", cache_dir=tmp_path / "models")
    with pytest.raises(ModelNotFoundError, match="DOSSIER_EMBEDDING_MODEL"):
        _ = chosen.model
