"""Ingest invariants: incremental, crash-safe, one writer, bad input reported, model checked."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pypdf import PdfWriter

from dossier_common.errors import LockedError, ModelMismatchError
from dossier_common.settings import Settings
from index.layout import Layout
from index.manifest import Manifest
from index.store import VectorStore
from ingest.pipeline import IngestReport, ingest_paths
from tests.conftest import CORPUS, ROOT, SHARED, need_shared
from tests.fakes import HashEmbedder
from tests.onnx_models import seed_models

PG = SHARED / "datasets" / "pg-essays" / "essays"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Small chunks, so that these small documents make several each."""
    return Settings(home=tmp_path / "home", chunk_tokens=60, chunk_overlap=10, _env_file=None)


def write_docs(folder: Path, n: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        paragraphs = [
            f"Document {i} paragraph {p}. The river town number {i} grows {p} kinds of apples. "
            f"Its market opens at {p + 6} o'clock and sells bread, cheese and cider."
            for p in range(6)
        ]
        (folder / f"doc{i}.txt").write_text(f"Title {i}\n\n" + "\n\n".join(paragraphs), encoding="utf-8")
    return folder


def index_ids(settings: Settings, embedder) -> tuple[set[str], set[str]]:
    """Chunk ids committed in the manifest, and vector ids held by Chroma."""
    manifest = Manifest(Layout(settings.home).manifest)
    try:
        committed = manifest.all_chunk_ids()
    finally:
        manifest.close()
    store = VectorStore(settings, model=embedder.name, dimension=embedder.dimension, create=False)
    return committed, store.all_ids()


def test_reingest_of_unchanged_files_embeds_nothing(settings, tmp_path):
    docs = write_docs(tmp_path / "docs")
    emb = HashEmbedder()
    first = ingest_paths([docs], settings, emb)
    assert (first.added, first.embedded) == (3, first.chunks) and first.chunks > 3
    calls = emb.calls
    second = ingest_paths([docs], settings, emb)
    assert (second.added, second.updated, second.unchanged, second.embedded) == (0, 0, 3, 0)
    assert emb.calls == calls
    assert second.chunks == first.chunks


def test_editing_one_file_changes_only_its_chunks(settings, tmp_path):
    docs = write_docs(tmp_path / "docs")
    emb = HashEmbedder()
    ingest_paths([docs], settings, emb)
    before = Manifest(Layout(settings.home).manifest)
    old = {s: before.chunk_ids(s) for s in ("doc0.txt", "doc1.txt", "doc2.txt")}
    before.close()

    path = docs / "doc1.txt"
    path.write_text(path.read_text() + "\n\nA new closing paragraph about pears and plums.", encoding="utf-8")
    emb.texts.clear()
    report = ingest_paths([docs], settings, emb)
    assert (report.updated, report.unchanged) == (1, 2)
    # Only the new or changed chunks of doc1 were embedded; the unchanged ones kept their vectors.
    assert 0 < report.embedded < len(old["doc1.txt"]) + 2
    assert all("doc 1" in t.lower() or "pears" in t for t in emb.texts)

    after = Manifest(Layout(settings.home).manifest)
    assert after.chunk_ids("doc0.txt") == old["doc0.txt"]
    assert after.chunk_ids("doc2.txt") == old["doc2.txt"]
    assert after.chunk_ids("doc1.txt") != old["doc1.txt"]
    after.close()
    committed, vectors = index_ids(settings, emb)
    assert committed == vectors


def test_deleted_file_is_removed_everywhere(settings, tmp_path):
    docs = write_docs(tmp_path / "docs")
    emb = HashEmbedder()
    ingest_paths([docs], settings, emb)
    (docs / "doc2.txt").unlink()
    report = ingest_paths([docs], settings, emb)
    assert report.deleted == 1
    committed, vectors = index_ids(settings, emb)
    assert committed == vectors
    manifest = Manifest(Layout(settings.home).manifest)
    assert "doc2.txt" not in manifest.files()
    assert manifest.chunk_ids("doc2.txt") == set()
    manifest.close()


def test_full_rebuild_matches_incremental(settings, tmp_path):
    docs = write_docs(tmp_path / "docs")
    emb = HashEmbedder()
    ingest_paths([docs], settings, emb)
    incremental = index_ids(settings, emb)
    report = ingest_paths([docs], settings, emb, full=True)
    assert report.added == 3 and report.embedded == report.chunks
    assert index_ids(settings, emb) == incremental


def test_one_writer_at_a_time(settings, tmp_path):
    docs = write_docs(tmp_path / "docs", 1)
    with Layout(settings.home).writer_lock(), pytest.raises(LockedError, match="writing to the index"):
        ingest_paths([docs], settings, HashEmbedder())


def test_another_model_is_refused_until_full_rebuild(settings, tmp_path):
    docs = write_docs(tmp_path / "docs", 1)
    ingest_paths([docs], settings, HashEmbedder(name="model-a"))
    with pytest.raises(ModelMismatchError, match="--full"):
        ingest_paths([docs], settings, HashEmbedder(name="model-b"))
    report = ingest_paths([docs], settings, HashEmbedder(name="model-b"), full=True)
    assert report.added == 1


def _corrupt_inputs(folder: Path) -> dict[str, str]:
    """Bad files of every kind, with a word of the reason each must report."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "random.pdf").write_bytes(os.urandom(2048))
    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    writer.encrypt("secret")
    with (folder / "locked.pdf").open("wb") as handle:
        writer.write(handle)
    (folder / "empty.txt").write_text("")
    (folder / "binary.txt").write_bytes(b"\x00\x01\x02binary\x00" * 100)
    (folder / "latin1.txt").write_bytes("caf\xe9 cr\xe8me br\xfbl\xe9e".encode("latin-1"))
    (folder / "notes.xlsx").write_bytes(b"PK")
    (folder / ".hidden.txt").write_text("secret")
    return {
        "random.pdf": "pdf",
        "locked.pdf": "encrypted",
        "empty.txt": "empty",
        "binary.txt": "binary",
        "latin1.txt": "utf-8",
    }


def test_bad_input_is_reported_and_the_rest_ingested(settings, tmp_path):
    docs = write_docs(tmp_path / "docs", 2)
    expected = _corrupt_inputs(docs)
    report = ingest_paths([docs], settings, HashEmbedder())
    assert report.added == 2
    reasons = {Path(f.path).name: f.reason.lower() for f in report.failed}
    assert set(reasons) == set(expected)
    for name, word in expected.items():
        assert word in reasons[name], (name, reasons[name])
    skipped = {Path(s.path).name for s in report.skipped}
    assert {"notes.xlsx", ".hidden.txt"} <= skipped
    committed, vectors = index_ids(settings, HashEmbedder())
    assert committed == vectors and len(committed) == report.chunks


def test_file_vanishing_mid_run_is_reported(settings, tmp_path, monkeypatch):
    docs = write_docs(tmp_path / "docs", 3)
    import ingest.pipeline as pipeline

    real_hash = pipeline.file_hash

    def vanish(path: Path) -> str:
        if path.name == "doc1.txt":
            path.unlink()
        return real_hash(path)

    monkeypatch.setattr(pipeline, "file_hash", vanish)
    report = ingest_paths([docs], settings, HashEmbedder())
    assert report.added == 2
    assert [(Path(f.path).name, f.reason) for f in report.failed] == [
        ("doc1.txt", "file vanished while reading")
    ]


def test_unreadable_file_is_reported(settings, tmp_path, monkeypatch):
    docs = write_docs(tmp_path / "docs", 2)
    import ingest.pipeline as pipeline

    real_hash = pipeline.file_hash

    def deny(path: Path) -> str:
        if path.name == "doc0.txt":
            raise PermissionError(13, "Permission denied")
        return real_hash(path)

    monkeypatch.setattr(pipeline, "file_hash", deny)
    report = ingest_paths([docs], settings, HashEmbedder())
    assert report.added == 1
    assert report.failed[0].reason == "permission denied"


def test_no_chunk_exceeds_the_model_window(settings, tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "report.txt").write_text(need_shared(CORPUS / "overseas-police-stations-canada.txt").read_text())
    # Pathological input: one 5,000-character "word", a paragraph without sentence ends, and
    # a run of numbers that tokenises into many word pieces.
    (docs / "weird.md").write_text(
        "# Heading\n\n"
        + "x" * 5000
        + "\n\n"
        + " ".join(["word"] * 900)
        + "\n\n"
        + " ".join(str(12345678 + i) for i in range(400)),
        encoding="utf-8",
    )
    ingest_paths([docs], settings, embedder)
    manifest = Manifest(Layout(settings.home).manifest)
    rows = manifest.chunks()
    manifest.close()
    from index.chunks import embed_text

    limit = embedder.max_tokens
    assert limit == 254  # all-MiniLM-L6-v2 reads 256 positions, two of them special tokens
    texts = [embed_text(r["title"], r["section"], r["text"]) for r in rows]
    counts = embedder.count_tokens(texts)
    assert max(counts) <= limit
    assert all(r["tokens"] == n for r, n in zip(rows, counts, strict=True))
    # Nothing was lost: every visible character of the weird file is in some chunk.
    manifest = Manifest(Layout(settings.home).manifest)
    text = manifest.file_text("weird.md")
    manifest.close()
    covered = bytearray(len(text))
    for r in rows:
        if r["source"] == "weird.md":
            covered[r["start"] : r["end"]] = b"\x01" * (r["end"] - r["start"])
    assert all(covered[i] or ch.isspace() for i, ch in enumerate(text))


def test_corpus_chunks_keep_metadata(fake_report_index):
    manifest = Manifest(Layout(fake_report_index.home).manifest)
    rows = manifest.chunks()
    text = manifest.file_text("overseas-police-stations-canada.txt")
    manifest.close()
    assert rows and text
    for r in rows:
        assert r["source"] == "overseas-police-stations-canada.txt"
        assert text[r["start"] : r["end"]] == r["text"]
        assert r["title"].startswith("There are likely three or more")
    assert "Other places" in {r["section"] for r in rows}


def _dossier(*args: str, home: Path, **kw) -> subprocess.Popen:
    seed_models(home)  # the session's ONNX export: no export per run
    env = {
        **os.environ,
        "DOSSIER_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "False",
        "DOSSIER_EMBED_BATCH_SIZE": "8",  # small commit groups, so there is a middle to kill in
    }
    return subprocess.Popen(
        [sys.executable, "-c", "from bot.cli import main; main()", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def test_kill_mid_ingest_then_reingest_equals_clean_run(tmp_path, embedder):
    essays = sorted(need_shared(PG).glob("*.txt"), key=lambda p: p.stat().st_size)[:16]
    docs = tmp_path / "docs"
    docs.mkdir()
    for essay in essays:
        (docs / essay.name).write_bytes(essay.read_bytes())
    home = tmp_path / "killed"
    proc = _dossier("ingest", str(docs), home=home)
    db = home / "index.sqlite"
    deadline = time.monotonic() + 120
    # Kill after at least one group is committed and before the run can finish.
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with sqlite3.connect(db) as conn:
                if conn.execute("SELECT COUNT(*) FROM files").fetchone()[0] > 0:
                    break
        except sqlite3.Error:
            pass
        time.sleep(0.05)
    assert proc.poll() is None, "ingest finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    killed = Settings(home=home, embed_batch_size=8, _env_file=None)
    partial = Manifest(Layout(killed.home).manifest)
    assert 0 < len(partial.files()) < len(essays)
    partial.close()

    ingest_paths([docs], killed, embedder)
    clean = Settings(home=tmp_path / "clean", embed_batch_size=8, _env_file=None)
    ingest_paths([docs], clean, embedder)
    recovered_ids = index_ids(killed, embedder)
    clean_ids = index_ids(clean, embedder)
    assert recovered_ids[0] == recovered_ids[1]  # Chroma holds exactly the committed chunks
    assert recovered_ids == clean_ids


def test_cli_ingest_json_and_exit_codes(tmp_path, dossier_cli):
    docs = write_docs(tmp_path / "docs", 1)
    _corrupt_inputs(docs)
    proc = dossier_cli("ingest", str(docs), "--json", home=tmp_path / "home")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert set(summary) >= {
        "added",
        "updated",
        "deleted",
        "unchanged",
        "failed",
        "chunks",
        "embedded",
        "seconds",
    }
    assert summary["added"] == 1 and len(summary["failed"]) == 5
    assert all(set(f) == {"path", "reason"} for f in summary["failed"])
    # Each file read is reported with what reading it found (plain text: no tables, no OCR).
    [read] = summary["files"]
    assert read["path"].endswith(".txt") and read["tables"] == 0 and read["skipped_pages"] == []
    assert IngestReport.from_dict(summary).files[0].path == read["path"]

    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "empty.txt").write_text("")
    proc = dossier_cli("ingest", str(only_bad), home=tmp_path / "home2")
    assert proc.returncode == 1
    assert "empty" in proc.stderr


@pytest.mark.slow
def test_real_sec_pdfs_ingest_with_pages(tmp_path):
    pdfs = need_shared(SHARED / "datasets" / "sec-10q" / "docs")
    settings = Settings(home=tmp_path / "home", _env_file=None)
    report = ingest_paths([pdfs], settings, HashEmbedder())
    assert report.added == 20 and not report.failed
    manifest = Manifest(Layout(settings.home).manifest)
    pages = manifest.db.execute("SELECT MIN(page), MAX(page), COUNT(*) FROM chunks").fetchone()
    manifest.close()
    assert pages[0] == 1 and pages[1] > 20 and pages[2] == report.chunks
