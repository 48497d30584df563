"""Shared fixtures: the real model loaded once, a deterministic fake where the model is not the
point, a temp DOSSIER_HOME per test, small corpora."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from devtools.fake_discord import FakeDiscord, serving
from dossier_common.settings import Settings
from tests.openai_stub import openai_stub  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
DEV_SET = SHARED / "eval" / "report-dev.jsonl"


def need_shared(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is not available (../shared sits beside the repository in CI)")
    return path


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings come only from what a test sets: no developer .env, no real tokens."""
    for key in list(os.environ):
        if key.startswith(("DOSSIER_", "DISCORD_", "OPENAI_")):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def embedder():
    """The real all-MiniLM-L6-v2, loaded once per test session."""
    from ingest.embedder import Embedder

    return Embedder()


@pytest.fixture
def fake_embedder():
    """A deterministic hashed bag-of-words embedder: for tests where the model is not the point."""
    from tests.fakes import HashEmbedder

    return HashEmbedder()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", _env_file=None)


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    """A private copy of the report corpus (tests may edit it; the original stays read-only)."""
    target = tmp_path / "docs"
    shutil.copytree(need_shared(CORPUS), target)
    return target


@pytest.fixture(scope="session")
def report_index(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[Settings]:
    """The report corpus ingested once for the whole session (read-only use)."""
    from ingest.pipeline import ingest_paths

    home = tmp_path_factory.mktemp("report-home")
    settings = Settings(home=home, _env_file=None)
    ingest_paths([need_shared(CORPUS)], settings, embedder)
    yield settings


@pytest.fixture
def report_engine(report_index: Settings, embedder):
    from bot.engine import Engine

    engine = Engine(report_index, embedder=embedder)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def fake_report_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The report corpus ingested once with the fake embedder (read-only use): for plumbing
    tests that need a real index but not the model's sense of meaning."""
    from ingest.pipeline import ingest_paths
    from tests.fakes import HashEmbedder

    home = tmp_path_factory.mktemp("fake-report-home")
    settings = Settings(home=home, _env_file=None)
    ingest_paths([need_shared(CORPUS)], settings, HashEmbedder())
    yield settings


@pytest.fixture
def fake_report_engine(fake_report_index: Settings):
    from bot.engine import Engine
    from tests.fakes import HashEmbedder

    engine = Engine(fake_report_index, embedder=HashEmbedder())
    yield engine
    engine.close()


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    """A running fake Discord (devtools/fake_discord.py); discord.py pointed at it for the test,
    restored afterwards. The test fails if the bot called unknown routes or left out its token."""
    async with serving() as server:
        yield server


@pytest.fixture
def dossier_cli(monkeypatch: pytest.MonkeyPatch, embedder):
    """`dossier ARGS` run in this process with the session's model (tests/inprocess.py)."""
    from tests.inprocess import InProcessCli

    return InProcessCli(monkeypatch, embedder)
