"""The ONNX export shared by a whole test session: made once (it takes ~15 s), then linked into
each DOSSIER_HOME that will embed with the default backend, as a first ingest leaves it."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

_lock = threading.Lock()
_exported: Path | None = None


def exported_models() -> Path:
    """A models folder holding the default model's export, made on first use in this process."""
    global _exported
    with _lock:
        if _exported is None:
            from ingest.embedder import Embedder

            root = Path(tempfile.mkdtemp(prefix="dossier-test-models-"))
            atexit.register(shutil.rmtree, root, True)
            embedder = Embedder(backend="onnx", cache_dir=root)
            assert embedder.model is not None and embedder.backend == "onnx", embedder.fallback_reason
            _exported = root
    return _exported


_shared: dict[str, Any] = {}


def shared_onnx_embedder(backend: str = "onnx") -> Any:
    """One `Embedder` per graph backend ("onnx", "openvino") on the session's export, for
    in-process commands."""
    folder = exported_models()
    with _lock:
        if backend not in _shared:
            from ingest.embedder import Embedder

            _shared[backend] = Embedder(backend=backend, cache_dir=folder)
    return _shared[backend]


def seed_models(home: Path) -> None:
    """Link the session's export into `home/models` (no-op when `home` cannot hold it)."""
    if home.exists() and not home.is_dir():
        return
    source = exported_models()
    try:
        for path in source.rglob("*"):
            target = home / "models" / path.relative_to(source)
            if path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            elif not target.exists():
                try:
                    os.link(path, target)
                except OSError:
                    shutil.copy2(path, target)
    except OSError:
        pass  # a read-only home: the test is about something else
