"""Run the `dossier` command in this process: the real entry point (`bot.cli.main`, its exit
codes and its one-line errors) without paying a fresh interpreter, torch import and model load
per call. Tests whose point is another process (kill -9, signals, a terminal, a reader beside a
writer) keep using helpers_proc.py."""

from __future__ import annotations

import contextlib
import io
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.onnx_models import shared_onnx_embedder

# What bot.cli quietens: restored after each run, so one command's levels do not leak into tests.
_QUIETENED = ("httpx", "chromadb", "sentence_transformers", "discord", "bm25s")


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


class InProcessCli:
    """`dossier ARGS` with DOSSIER_HOME and environment set for the call only. The session's
    models stand in for a fresh load when the settings ask for the default model (on ONNX
    Runtime, the default backend, or on torch)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, embedder: Any) -> None:
        self.monkeypatch = monkeypatch
        self.embedder = embedder

    def __call__(self, *args: str, home: Path, stdin: str = "", **env: str) -> CliResult:
        from bot.cli import main
        from ingest.embedder import Embedder

        shared = self.embedder
        load = Embedder.from_settings

        def from_settings(settings: Any) -> Any:
            default = settings.embedding_model == shared.model_name and settings.device is None
            if default and settings.embedding_backend == "torch":
                return shared
            if default and settings.embedding_backend in ("onnx", "openvino"):
                return shared_onnx_embedder(settings.embedding_backend)  # the session's one export
            return load(settings)

        out, err = io.StringIO(), io.StringIO()
        root = logging.getLogger()
        saved_handlers, saved_level = root.handlers[:], root.level
        saved_levels = {name: logging.getLogger(name).level for name in _QUIETENED}
        code = 0
        with self.monkeypatch.context() as m:
            m.setenv("DOSSIER_HOME", str(home))
            for key, value in env.items():
                m.setenv(key, value)
            m.setattr(sys, "argv", ["dossier", *args])
            m.setattr(sys, "stdin", io.StringIO(stdin))
            m.setattr(Embedder, "from_settings", staticmethod(from_settings))
            # As in a fresh process: no handlers yet, so the command's logging goes to its stderr.
            root.handlers = []
            try:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    try:
                        main()
                    except SystemExit as exit_:
                        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
            finally:
                for handler in root.handlers:
                    handler.close()
                root.handlers = saved_handlers
                root.setLevel(saved_level)
                for name, level in saved_levels.items():
                    logging.getLogger(name).setLevel(level)
        return CliResult(code, out.getvalue(), err.getvalue())
