"""The embedding backends, all on one ONNX export made once from the local weights: openvino
(the default: OpenVINO embeds documents, ONNX Runtime questions), onnx (ONNX Runtime for both)
and torch (used for the export, and the last fallback). Each falls back with one warning. Same
vectors (cosine > 0.999), same answers, and an index built on one backend is read and updated
on another without `--full`."""

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


@pytest.fixture(scope="module")
def openvino_embedder() -> Embedder:
    return Embedder(backend="openvino", cache_dir=exported_models())


def test_openvino_is_the_default_backend() -> None:
    assert Settings(_env_file=None).embedding_backend == "openvino"


def test_openvino_embeds_documents_and_onnxruntime_questions(
    openvino_embedder: Embedder, onnx_embedder: Embedder, embedder: Embedder
) -> None:
    texts = ["Fox Hunt was launched as part of an anti-corruption campaign.", "short", "x " * 400]
    fresh = Embedder(backend="openvino", cache_dir=exported_models())
    question = np.asarray(fresh.embed_query("Which campaign launched Fox Hunt?"))
    assert fresh._documents is None  # a question alone never loads OpenVINO (a serving process)
    assert np.allclose(question, onnx_embedder.embed_query("Which campaign launched Fox Hunt?"), atol=1e-6)
    ours = np.asarray(openvino_embedder.embed_documents(texts))
    reference = np.asarray(embedder.embed_documents(texts))
    assert openvino_embedder.backend == "openvino" and openvino_embedder.fallback_reason is None
    assert openvino_embedder.documents.runtime == "openvino"
    assert openvino_embedder.documents.precision in ("bf16", "f32", "f16")
    assert ours.shape == reference.shape == (3, 384)
    assert np.min(np.sum(ours * reference, axis=1)) > 0.999
    assert openvino_embedder.max_tokens == embedder.max_tokens == 254
    assert openvino_embedder.count_tokens(texts) == embedder.count_tokens(texts)
    # Sentence vectors come from the same OpenVINO pass, close to torch's.
    spans = [[(0, 8), (9, 60)], [(0, 5)], [(0, 20)]]
    _, ours_spans = openvino_embedder.embed_with_spans(texts, spans)
    _, torch_spans = embedder.embed_with_spans(texts, spans)
    for a, b in zip(ours_spans, torch_spans, strict=True):
        cos = np.sum(a.astype(np.float32) * b.astype(np.float32), axis=1)
        assert a.shape == b.shape and np.min(cos) > 0.995


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


@pytest.mark.parametrize("backend", ["openvino", "onnx", "torch"])
def test_ingest_and_answer_on_each_backend(
    backend: str, tmp_path: Path, gardens: Path, monkeypatch: pytest.MonkeyPatch, embedder: Embedder
) -> None:
    """The product path: the embedder comes from the settings (DOSSIER_EMBEDDING_BACKEND)."""
    home = tmp_path / "home"
    if backend != "torch":
        seed_models(home)  # as a first ingest would have exported it
    else:  # the session's torch model (loaded first: its own load must not be patched)
        model = embedder.model
        monkeypatch.setattr("ingest.embedder._load", lambda name, device: model)
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
    assert (home / "models").exists() == (backend != "torch")  # torch never exports
    if backend == "openvino":  # a serving process embeds questions only: OpenVINO stays unloaded
        serving = Embedder.from_settings(settings)
        engine = Engine(settings, embedder=serving)
        engine.warm()
        again = engine.ask("How many hours did volunteers at the Elm Street garden log?")
        assert again.text == answer.text and serving._documents is None
        engine.close()


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


@pytest.mark.parametrize(("first", "second"), [("torch", "onnx"), ("onnx", "torch"), ("openvino", "torch")])
def test_switching_backends_keeps_the_index(
    first: str,
    second: str,
    tmp_path: Path,
    gardens: Path,
    embedder: Embedder,
    onnx_embedder: Embedder,
    openvino_embedder: Embedder,
) -> None:
    """Same model, same vectors (cosine > 0.999): the model guard must not ask for `--full`."""
    by_name = {"torch": embedder, "onnx": onnx_embedder, "openvino": openvino_embedder}
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
    model = embedder.model  # loaded before `_load` is patched

    def fake_load(name: str, device: str | None) -> object:
        loaded.append(name)
        return model  # the session's torch model stands for a fresh load

    monkeypatch.setattr("ingest.embedder._load", fake_load)
    caplog.set_level(logging.WARNING, logger="ingest.embedder")
    return loaded


def test_without_openvino_onnxruntime_embeds_documents_with_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ingest.embedder")
    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` fails
    chosen = Embedder(backend="openvino", cache_dir=exported_models())
    vectors = np.asarray(chosen.embed_documents(["The kiln runs at 1260 degrees."]))
    assert chosen.backend == "onnx" and chosen.documents is chosen.model
    assert chosen.documents.runtime == "onnxruntime" and vectors.shape == (1, 384)
    [record] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    message = record.getMessage()
    assert "\n" not in message and "openvino is not installed" in message
    assert "pip install -e '.[openvino]'" in message and "DOSSIER_EMBEDDING_BACKEND=onnx" in message
    assert chosen.fallback_reason and "openvino" in chosen.fallback_reason


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
