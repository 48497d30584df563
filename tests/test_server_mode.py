"""Server mode: the same ingest and answers against a real `chroma run` on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.engine import Engine
from dossier_common.errors import StoreError
from dossier_common.settings import Settings
from index.store import VectorStore
from ingest.pipeline import ingest_paths


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    if not Path(exe).exists():
        pytest.fail("the chroma command (from the chromadb package) is not installed")
    port = _free_port()
    data = tmp_path_factory.mktemp("chroma-server")
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    proc = subprocess.Popen(
        [exe, "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("chroma run did not start within 60 s")
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def test_ingest_and_answer_through_a_chroma_server(chroma_server, tmp_path, fake_embedder, corpus_dir):
    settings = Settings(
        home=tmp_path / "home", chroma_url=chroma_server, collection="server-test", _env_file=None
    )
    report = ingest_paths([corpus_dir], settings, fake_embedder)
    assert report.added == 1 and report.chunks > 5

    store = VectorStore(settings, model=fake_embedder.name, create=False)
    assert store.count() == report.chunks  # the vectors live on the server

    engine = Engine(settings, embedder=fake_embedder)
    answer = engine.ask("Operation Fox Hunt was launched as part of which campaign?")
    assert "anti-corruption" in answer.text and answer.citations
    assert engine.status().store == chroma_server

    # Incremental against the server too: delete the file, its vectors go.
    (corpus_dir / "overseas-police-stations-canada.txt").unlink()
    (corpus_dir / "note.txt").write_text("The garden committee meets every second Tuesday.", encoding="utf-8")
    report = ingest_paths([corpus_dir], settings, fake_embedder)
    assert (report.added, report.deleted) == (1, 1)
    assert store.count() == report.chunks
    engine.close()


def test_unreachable_server_is_a_clear_error(tmp_path, corpus_dir):
    from tests.fakes import HashEmbedder

    settings = Settings(home=tmp_path / "home", chroma_url=f"http://127.0.0.1:{_free_port()}", _env_file=None)
    with pytest.raises(StoreError, match="Chroma"):
        ingest_paths([corpus_dir], settings, HashEmbedder())
