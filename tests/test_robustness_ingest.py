"""Issue 14, ingest side: bad input and faults give one clear line and leave the index intact."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from dossier_common.settings import Settings
from index.layout import Layout
from index.manifest import Manifest
from index.schema import SCHEMA_VERSION
from index.store import VectorStore
from ingest.pipeline import ingest_paths
from tests.conftest import ROOT
from tests.fakes import HashEmbedder


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", _env_file=None)


def recorded(settings: Settings) -> dict[str, str]:
    """source -> path of every file in the manifest."""
    manifest = Manifest(Layout(settings.home).manifest)
    try:
        return {s: r.path for s, r in manifest.files().items()}
    finally:
        manifest.close()


def vector_ids(settings: Settings, emb: HashEmbedder) -> set[str]:
    return VectorStore(settings, model=emb.name, dimension=emb.dimension, create=False).all_ids()


def committed_ids(settings: Settings) -> set[str]:
    manifest = Manifest(Layout(settings.home).manifest)
    try:
        return manifest.all_chunk_ids()
    finally:
        manifest.close()


# -- D2: files with the same relative name ---------------------------------------------------


def test_same_file_name_in_two_folders_keeps_both(settings, tmp_path):
    for year, amount in (("2023", 4), ("2024", 9)):
        (tmp_path / year).mkdir()
        (tmp_path / year / "summary.txt").write_text(f"The {year} summary says revenue was {amount} million.")
    emb = HashEmbedder()
    first = ingest_paths([tmp_path / "2023" / "summary.txt"], settings, emb)
    second = ingest_paths([tmp_path / "2024" / "summary.txt"], settings, emb)
    assert (first.added, second.added, second.updated) == (1, 1, 0)
    files = recorded(settings)
    assert files == {
        "summary.txt": str((tmp_path / "2023" / "summary.txt").resolve()),
        "2024/summary.txt": str((tmp_path / "2024" / "summary.txt").resolve()),
    }
    assert committed_ids(settings) == vector_ids(settings, emb)
    # Both stay stable: nothing to do the second time round.
    again = ingest_paths(
        [tmp_path / "2023" / "summary.txt", tmp_path / "2024" / "summary.txt"], settings, emb
    )
    assert (again.unchanged, again.embedded) == (2, 0)


def test_the_2023_question_is_answered_from_the_2023_file(settings, tmp_path, fake_embedder):
    from bot.engine import Engine

    for year, amount in (("2023", 4), ("2024", 9)):
        (tmp_path / year).mkdir()
        (tmp_path / year / "summary.txt").write_text(
            f"The {year} summary says revenue was {amount} million dollars."
        )
        ingest_paths([tmp_path / year / "summary.txt"], settings, fake_embedder)
    engine = Engine(settings, embedder=fake_embedder)
    try:
        answer = engine.ask("What was revenue in 2023?")
        assert "4 million" in answer.text and answer.citations[0].source == "summary.txt"
        answer = engine.ask("What was revenue in 2024?")
        assert "9 million" in answer.text and answer.citations[0].source == "2024/summary.txt"
    finally:
        engine.close()


def test_same_name_given_twice_in_one_run(settings, tmp_path):
    for year in ("2023", "2024"):
        (tmp_path / year).mkdir()
        (tmp_path / year / "notes.md").write_text(f"# Notes {year}\n\nThe {year} notes.")
    report = ingest_paths(
        [tmp_path / "2023" / "notes.md", tmp_path / "2024" / "notes.md"], settings, HashEmbedder()
    )
    assert (report.added, len(report.failed)) == (2, 0)
    assert set(recorded(settings)) == {"notes.md", "2024/notes.md"}


def test_folder_then_its_parent_indexes_a_file_once(settings, tmp_path):
    sub = tmp_path / "docs" / "sub"
    sub.mkdir(parents=True)
    (sub / "lens.md").write_text("The lens has a focal length of 50 mm.")
    emb = HashEmbedder()
    ingest_paths([sub], settings, emb)
    report = ingest_paths([tmp_path / "docs"], settings, emb)
    assert (report.added, report.unchanged) == (0, 1)
    assert list(recorded(settings)) == ["lens.md"]


def test_version_1_manifest_is_migrated_and_keeps_other_tables(settings, tmp_path):
    sub = tmp_path / "docs" / "sub"
    sub.mkdir(parents=True)
    (sub / "lens.md").write_text("The lens has a focal length of 50 mm.")
    emb = HashEmbedder()
    ingest_paths([sub], settings, emb)
    # Make it what version 1 left after `ingest docs/sub` then `ingest docs`: the same file
    # recorded twice, no version key, no unique index; plus a table some other feature added.
    db = sqlite3.connect(Layout(settings.home).manifest)
    with db:
        db.execute("DELETE FROM meta WHERE key = 'schema_version'")
        db.execute("DROP INDEX files_by_path")
        db.execute(
            "INSERT INTO files SELECT 'sub/lens.md', root, path, content_hash, title, text, n_chunks,"
            " ingested_at - 1, period FROM files"
        )
        db.execute(
            "INSERT INTO chunks SELECT id || 'x', 'sub/lens.md', ord, text, start, \"end\", title, section,"
            " page, tokens, language FROM chunks"
        )
        db.execute("CREATE TABLE extras (source TEXT PRIMARY KEY, note TEXT)")
        db.execute("INSERT INTO extras VALUES ('lens.md', 'A lens.')")
    db.close()

    manifest = Manifest(Layout(settings.home).manifest)
    try:
        assert manifest.schema_version() == SCHEMA_VERSION
        assert list(manifest.files()) == ["lens.md"]  # the most recent record wins
        assert not any(i.endswith("x") for i in manifest.all_chunk_ids())
        assert all(i.endswith("x") for i in manifest.pending())
        assert manifest.db.execute("SELECT note FROM extras").fetchone()[0] == "A lens."
    finally:
        manifest.close()
    # The next ingest settles Chroma on what the manifest holds, with no re-embedding.
    report = ingest_paths([tmp_path / "docs"], settings, emb)
    assert report.unchanged == 1


def test_newer_schema_is_refused_with_a_message(settings, tmp_path):
    Manifest(Layout(settings.home).manifest).close()
    db = sqlite3.connect(Layout(settings.home).manifest)
    with db:
        db.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    db.close()
    from dossier_common.errors import StoreError

    with pytest.raises(StoreError, match="newer Dossier"):
        Manifest(Layout(settings.home).manifest)


# -- D1: files that expand into far more than their size -----------------------------------------


def flat_pdf(pages: int) -> bytes:
    """A PDF whose page tree lists one page object `pages` times: small on disk, slow to read."""
    text = b"BT /F1 12 Tf 72 720 Td (The fuse is 4 metres long.) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + b" ".join([b"3 0 R"] * pages) + b"] /Count %d >>" % pages,
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >>"
        b" /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def docx_bomb(path: Path, inflated_mb: int) -> None:
    """A valid DOCX whose document.xml inflates to `inflated_mb` MB (about 3.5 KB per MB on disk)."""
    import docx

    seed = io.BytesIO()
    docx.Document().save(seed)
    src = zipfile.ZipFile(seed)
    xml = src.read("word/document.xml").decode()
    head, _, tail = xml.partition("<w:body>")
    end = tail[tail.rfind("</w:body>") :]
    para = b"<w:p><w:r><w:t>The cake is a lie and the party is on the moon. </w:t></w:r></w:p>" * 10000
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out:
        for item in src.infolist():
            if item.filename != "word/document.xml":
                out.writestr(item, src.read(item.filename))
                continue
            info = zipfile.ZipInfo("word/document.xml")
            info.compress_type = zipfile.ZIP_DEFLATED
            with out.open(info, "w", force_zip64=True) as w:
                w.write((head + "<w:body>").encode())
                for _ in range(inflated_mb * 1024 * 1024 // len(para)):
                    w.write(para)
                w.write(end.encode())


_LOAD_AND_MEASURE = """
import json, sys
from pathlib import Path
from ingest.loaders import LoadError, load_file
from ingest.pipeline import budget_of
from dossier_common.settings import Settings
path = Path(sys.argv[1])
try:
    load_file(path, path.parent, budget=budget_of(Settings(_env_file=None)))
    reason = None
except LoadError as err:
    reason = err.reason
# VmHWM, not ru_maxrss: the latter also counts the parent's memory at fork, kept across exec.
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
peak_mb = int(hwm.split()[1]) / 1024
print(json.dumps({"reason": reason, "peak_mb": peak_mb}))
"""


def load_in_child(path: Path) -> tuple[str | None, float, float]:
    """Load `path` with the default budgets in a fresh process: (refusal, peak RSS MB, seconds)."""
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", _LOAD_AND_MEASURE, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["reason"], result["peak_mb"], time.monotonic() - started


def test_docx_bomb_is_refused_before_it_inflates(tmp_path):
    bomb = tmp_path / "bomb.docx"
    docx_bomb(bomb, 1100)
    assert bomb.stat().st_size < 5 * 1024 * 1024
    reason, peak_mb, seconds = load_in_child(bomb)
    assert reason is not None and "DOSSIER_MAX_UNZIPPED_MB" in reason and "\n" not in reason
    assert peak_mb < 1024
    assert seconds < 30


def test_pdf_listing_one_page_many_times_is_refused_at_once(tmp_path):
    pdf = tmp_path / "flat.pdf"
    pdf.write_bytes(flat_pdf(20_000))
    reason, _, seconds = load_in_child(pdf)
    assert reason == "20,000 pages, over the 5,000 page limit (DOSSIER_MAX_PDF_PAGES)"
    assert seconds < 30


def test_budgets_refuse_one_file_and_the_run_goes_on(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "flat.pdf").write_bytes(flat_pdf(30))
    (docs / "long.txt").write_text("Word after word after word. " * 400)
    (docs / "short.txt").write_text("The bell weighs 2 tonnes.")
    docx_bomb(docs / "small.docx", 2)
    settings = Settings(
        home=tmp_path / "home", max_pdf_pages=20, max_text_chars=5000, max_unzipped_mb=1, _env_file=None
    )
    report = ingest_paths([docs], settings, HashEmbedder())
    reasons = {Path(f.path).name: f.reason for f in report.failed}
    assert reasons == {
        "flat.pdf": "30 pages, over the 20 page limit (DOSSIER_MAX_PDF_PAGES)",
        "long.txt": "more than 5,000 characters of text (DOSSIER_MAX_TEXT_CHARS)",
        "small.docx": "unpacks to 2 MB, over the 1 MB limit (DOSSIER_MAX_UNZIPPED_MB)",
    }
    assert report.added == 1
    # Within the limits the same files load.
    (docs / "small.docx").unlink()
    roomy = Settings(home=tmp_path / "home2", max_text_chars=10**6, max_chunks_per_file=1000, _env_file=None)
    assert ingest_paths([docs], roomy, HashEmbedder()).added == 3
    tight = Settings(home=tmp_path / "home3", chunk_tokens=16, max_chunks_per_file=5, _env_file=None)
    report = ingest_paths([docs / "long.txt"], tight, HashEmbedder())
    assert report.failed and "(DOSSIER_MAX_CHUNKS_PER_FILE)" in report.failed[0].reason


# -- D1: a large file is embedded in parts that survive a kill ---------------------------------------


class SpanHashEmbedder(HashEmbedder):
    """HashEmbedder that also returns sentence vectors, like the real embedder, and can be
    told to die (as a kill would) at its n-th model call."""

    def __init__(self, die_at_call: int | None = None) -> None:
        super().__init__()
        self.die_at_call = die_at_call

    def embed_with_spans(self, texts, spans):
        import numpy as np

        if self.die_at_call is not None and self.calls + 1 >= self.die_at_call:
            raise KeyboardInterrupt  # what a signal would raise mid-run
        vectors = self.embed_documents(texts)
        rows = [
            np.stack([self._vector(t[a:b]) for a, b in s]).astype(np.float16)
            if s
            else np.zeros((0, self.dimension), np.float16)
            for t, s in zip(texts, spans, strict=True)
        ]
        return vectors, rows


def index_state(settings: Settings, emb: HashEmbedder) -> tuple:
    manifest = Manifest(Layout(settings.home).manifest)
    try:
        chunks = sorted(tuple(r) for r in manifest.db.execute("SELECT id, source, ord, text FROM chunks"))
        sentences = sorted(tuple(r) for r in manifest.db.execute("SELECT * FROM sentences"))
        files = sorted((r.source, r.content_hash, r.n_chunks) for r in manifest.files().values())
        leftovers = (manifest.pending(), manifest.staged())
    finally:
        manifest.close()
    return files, chunks, sentences, vector_ids(settings, emb), leftovers


def big_file(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "small.txt").write_text("The bell weighs 2 tonnes.")
    path = folder / "big.txt"
    path.write_text(
        "\n\n".join(
            f"Paragraph {i}. The harbour crane number {i} lifts {i * 7} tonnes. It is blue."
            for i in range(120)
        )
    )
    return folder


def test_interrupted_large_file_keeps_its_parts_and_finishes_like_a_clean_run(tmp_path):
    docs = big_file(tmp_path / "docs")
    options = {"chunk_tokens": 20, "chunk_overlap": 0, "embed_batch_size": 4, "_env_file": None}
    clean = Settings(home=tmp_path / "clean", **options)
    total = ingest_paths([docs], clean, SpanHashEmbedder()).embedded
    assert total > 50

    settings = Settings(home=tmp_path / "home", **options)
    with pytest.raises(KeyboardInterrupt):
        ingest_paths([docs], settings, SpanHashEmbedder(die_at_call=5))
    manifest = Manifest(Layout(settings.home).manifest)
    kept = len(manifest.staged())
    assert kept >= 16 and manifest.chunk_count() == 0  # parts kept, nothing half-visible
    manifest.close()

    again = SpanHashEmbedder()
    report = ingest_paths([docs], settings, again)
    assert report.added == 2 and report.embedded == total - kept
    assert index_state(settings, again) == index_state(clean, again)
    assert index_state(settings, again)[-1] == (set(), set())


def test_staged_parts_of_a_file_changed_meanwhile_are_dropped(tmp_path):
    docs = big_file(tmp_path / "docs")
    settings = Settings(
        home=tmp_path / "home", chunk_tokens=20, chunk_overlap=0, embed_batch_size=4, _env_file=None
    )
    with pytest.raises(KeyboardInterrupt):
        ingest_paths([docs], settings, SpanHashEmbedder(die_at_call=5))
    (docs / "big.txt").write_text("The file is short now.")
    emb = SpanHashEmbedder()
    ingest_paths([docs], settings, emb)
    _files, chunks, sentences, vectors, leftovers = index_state(settings, emb)
    assert leftovers == (set(), set())
    assert vectors == {c[0] for c in chunks} and {s[0] for s in sentences} <= vectors


_KILLABLE_INGEST = """
import sys, time
from pathlib import Path
from ingest.pipeline import ingest_paths
from dossier_common.settings import Settings
from tests.test_robustness_ingest import SpanHashEmbedder

class Slow(SpanHashEmbedder):
    def embed_with_spans(self, texts, spans):
        time.sleep(0.3)  # one call per part of 16 chunks
        return super().embed_with_spans(texts, spans)

settings = Settings(home=Path(sys.argv[1]), chunk_tokens=20, chunk_overlap=0, embed_batch_size=4, _env_file=None)
print("started", flush=True)
print(ingest_paths([Path(sys.argv[2])], settings, Slow()).summary(), flush=True)
"""


def _done(home: Path) -> int:
    if not Layout(home).manifest.exists():
        return 0
    m = Manifest(Layout(home).manifest, readonly=True)
    try:
        return len(m.staged()) + m.chunk_count()
    except sqlite3.OperationalError:  # the child has not created the tables yet
        return 0
    finally:
        m.close()


def _wait_for_progress(home: Path, proc: subprocess.Popen, timeout: float) -> None:
    """Until the child has staged or committed more chunks than when it started, or ended."""
    before = _done(home)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and _done(home) == before and time.monotonic() < deadline:
        time.sleep(0.02)


def test_kill_9_at_random_points_during_a_large_file(tmp_path):
    import random
    import signal

    docs = big_file(tmp_path / "docs")
    options = {"chunk_tokens": 20, "chunk_overlap": 0, "embed_batch_size": 4, "_env_file": None}
    clean = Settings(home=tmp_path / "clean", **options)
    total = ingest_paths([docs], clean, SpanHashEmbedder()).chunks
    home = tmp_path / "home"
    rng = random.Random(14)
    args = [sys.executable, "-c", _KILLABLE_INGEST, str(home), str(docs)]
    staged_counts = []
    for _ in range(10):
        proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert proc.stdout is not None and proc.stdout.readline() == b"started\n"
        # A random point in the next part, once this run has committed one (timed by the
        # manifest, not the clock: a loaded machine only makes it slower).
        _wait_for_progress(home, proc, timeout=60)
        time.sleep(rng.uniform(0.0, 0.25))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if Layout(home).manifest.exists():
            m = Manifest(Layout(home).manifest)
            staged_counts.append(len(m.staged()) + m.chunk_count())
            m.close()
    # Work done before a kill is kept: what is staged or committed never goes backwards.
    assert staged_counts == sorted(staged_counts)
    assert len([n for n in staged_counts if 0 < n < total]) >= 5  # the kills landed mid-file
    subprocess.run(args, cwd=ROOT, check=True, capture_output=True, timeout=120)
    emb = SpanHashEmbedder()
    assert index_state(Settings(home=home, **options), emb) == index_state(clean, emb)


# -- D8: a damaged manifest --------------------------------------------------------------------------


def three_docs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        body = " ".join(
            f"Volunteers at garden {i} logged {i * 100 + j} hours in week {j}." for j in range(300)
        )
        (folder / f"garden{i}.txt").write_text(body)
    return folder


@pytest.mark.parametrize("damage", ["truncated", "garbage inside"])
def test_damaged_manifest_is_reported_in_one_line_and_full_rebuilds(settings, tmp_path, damage):
    from bot.engine import Engine
    from dossier_common.errors import CorruptIndexError

    docs = three_docs(tmp_path / "docs")
    emb = HashEmbedder()
    ingest_paths([docs], settings, emb)
    path = Layout(settings.home).manifest
    size = path.stat().st_size
    assert size > 64 * 1024
    if damage == "truncated":
        with path.open("r+b") as f:
            f.truncate(size // 2)
    else:
        with path.open("r+b") as f:
            f.seek(size // 2 // 4096 * 4096)
            f.write(bytes(range(256)) * 16)

    with pytest.raises(CorruptIndexError) as err:
        ingest_paths([docs], settings, emb)
    message = str(err.value)
    assert "\n" not in message and "is damaged" in message and "dossier ingest PATH --full" in message
    with pytest.raises(CorruptIndexError):
        Engine(settings, embedder=emb).status()

    report = ingest_paths([docs], settings, emb, full=True)
    assert report.added == 3 and not report.failed
    assert len(list(settings.home.glob("index.sqlite.corrupt-*"))) == 1
    assert Engine(settings, embedder=emb).status().documents == 3
    assert committed_ids(settings) == vector_ids(settings, emb)


def test_cli_says_the_manifest_is_damaged_without_a_traceback(tmp_path):
    home = tmp_path / "home"
    docs = three_docs(tmp_path / "docs")
    ingest_paths([docs], Settings(home=home, _env_file=None), HashEmbedder())
    path = home / "index.sqlite"
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 2)
    from tests.helpers_proc import dossier_args, dossier_env

    done = subprocess.run(
        dossier_args("status"), env=dossier_env(home), cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.strip().startswith("dossier: The index manifest") and "Traceback" not in done.stderr


# -- D13: one over-long path ----------------------------------------------------------------------------


def test_over_long_path_is_skipped_and_the_rest_ingested(settings, tmp_path):
    import os

    root = tmp_path / "root"
    root.mkdir()
    (root / "ok.md").write_text("The bell weighs 2 tonnes.")
    # Built with relative steps: the full path ends up longer than the system's PATH_MAX.
    here = os.getcwd()
    try:
        os.chdir(root)
        for _ in range(40):
            os.mkdir("d" * 120)
            os.chdir("d" * 120)
        Path("x.md").write_text("deep\n")
    finally:
        os.chdir(here)
    report = ingest_paths([root], settings, HashEmbedder())
    assert report.added == 1
    assert any("File name too long" in s.reason for s in report.skipped)
    assert all("\n" not in s.reason for s in report.skipped)


# -- D14: the vector store is lost --------------------------------------------------------------------


def test_lost_vector_store_is_reported_by_status_and_ask_alike(settings, tmp_path):
    import shutil

    from bot.engine import Engine
    from bot.render import format_status
    from dossier_common.errors import StoreError
    from index.store import release_client

    docs = three_docs(tmp_path / "docs")
    emb = HashEmbedder()
    ingest_paths([docs], settings, emb)
    assert Engine(settings, embedder=emb).status().vectors == committed_count(settings)
    release_client(settings)
    shutil.rmtree(settings.home / "chroma")

    status = Engine(settings, embedder=emb).status()
    assert (status.documents, status.vectors) == (3, 0)
    assert "vector store" in status.problem and "problem:" in format_status(status)
    with pytest.raises(
        StoreError, match=r"vector store .* is missing or empty, but the index lists 3 documents"
    ):
        Engine(settings, embedder=emb).ask("How many hours did volunteers log?")
    report = ingest_paths([docs], settings, emb)
    assert report.added == 3  # the next ingest rebuilds what was lost
    assert not Engine(settings, embedder=emb).ask("How many hours did volunteers log at garden 1?").abstained


def test_opening_builds_the_keyword_index_before_chroma_loads_its_vectors(settings, tmp_path, monkeypatch):
    """Chroma loads its whole vector index on its first call (count() included): the keyword
    build's passing peak must come before that, not on top of it (serving RSS at 100k chunks,
    bench/RESULTS.md). An empty store is still reported."""
    from bot.engine import Engine
    from bot.retrieval import HybridRetriever
    from dossier_common.errors import StoreError
    from index.store import VectorStore

    ingest_paths([three_docs(tmp_path / "docs")], settings, HashEmbedder())
    calls: list[str] = []
    refresh, count = HybridRetriever.refresh, VectorStore.count
    monkeypatch.setattr(HybridRetriever, "refresh", lambda self: (calls.append("keywords"), refresh(self))[1])
    monkeypatch.setattr(VectorStore, "count", lambda self: (calls.append("chroma"), count(self))[1])
    Engine(settings, embedder=HashEmbedder()).retriever  # noqa: B018
    assert calls[:2] == ["keywords", "chroma"]

    monkeypatch.setattr(VectorStore, "count", lambda self: 0)
    with pytest.raises(StoreError, match=r"missing or empty, but the index lists 3 documents"):
        Engine(settings, embedder=HashEmbedder()).retriever  # noqa: B018


def committed_count(settings: Settings) -> int:
    return len(committed_ids(settings))


# -- D9: readers during `ingest --full` ---------------------------------------------------------------


def test_readers_keep_answering_during_a_full_rebuild(tmp_path):
    from bot.engine import Engine

    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(12):
        (docs / f"s{i:02d}.md").write_text(f"# Station {i}\n\nThe ranger at station {i} is Ranger{i:03d}.\n")
    settings = Settings(home=tmp_path / "home", embed_batch_size=1, _env_file=None)
    emb = HashEmbedder()
    ingest_paths([docs], settings, emb)
    before = index_state(settings, emb)
    reader = Engine(settings, embedder=HashEmbedder())
    seen: list[tuple[int, bool]] = []

    class Watched(HashEmbedder):
        def embed_documents(self, texts):
            # Mid-rebuild, as a reader in another process would: the whole index, answers.
            manifest = Manifest(Layout(settings.home).manifest)
            documents = len(manifest.files())
            manifest.close()
            answer = reader.ask("Who is the ranger at station 0?")
            seen.append((documents, "Ranger000" in answer.text))
            return super().embed_documents(texts)

    report = ingest_paths([docs], settings, Watched(), full=True)
    reader.close()
    assert report.added == 12 and report.embedded == report.chunks
    assert len(seen) >= 3 and all(s == (12, True) for s in seen), seen
    assert index_state(settings, emb) == before


def test_full_rebuild_drops_what_a_clean_run_would_not_have(settings, tmp_path):
    docs = three_docs(tmp_path / "docs")
    other = tmp_path / "other"
    other.mkdir()
    (other / "extra.txt").write_text("The extra file mentions a lighthouse.")
    emb = SpanHashEmbedder()
    ingest_paths([docs, other], settings, emb)
    clean = Settings(home=tmp_path / "clean", _env_file=None)
    ingest_paths([docs], clean, emb)
    report = ingest_paths([docs], settings, emb, full=True)
    assert report.added == 3
    assert index_state(settings, emb) == index_state(clean, emb)


# -- D10: links out of the folder, and sidecars nobody fetched --------------------------------------------


def test_file_link_leading_outside_the_folder_is_not_followed(settings, tmp_path):
    outside = tmp_path / "app"
    outside.mkdir()
    (outside / "env.txt").write_text("DISCORD_TOKEN=very-secret-token")
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "notice.txt").write_text("All passwords must be emailed to the admin.")
    (docs / "sub" / "inside.txt").write_text("The lighthouse is 30 metres tall.")
    (docs / "passwd.txt").symlink_to("/etc/passwd")
    (docs / "notes.txt").symlink_to(outside / "env.txt")
    (docs / "alias.txt").symlink_to(docs / "sub" / "inside.txt")  # inside: followed (same file, once)
    report = ingest_paths([docs], settings, HashEmbedder())
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert (
        reasons["passwd.txt"]
        == reasons["notes.txt"]
        == "symbolic link to a file outside the folder not followed"
    )
    assert report.added == 2
    manifest = Manifest(Layout(settings.home).manifest)
    try:
        assert not any("very-secret-token" in r["text"] or "root:" in r["text"] for r in manifest.chunks())
    finally:
        manifest.close()


def test_hand_written_sidecar_cannot_make_a_citation_show_a_url(settings, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notice.txt").write_text("All passwords must be emailed to the admin.")
    (docs / "notice.txt.url").write_text("[InternetShortcut]\nURL=https://www.canada.ca/en/official-notice\n")
    ingest_paths([docs], settings, HashEmbedder())
    assert list(recorded(settings)) == ["notice.txt"]


def test_fetched_page_keeps_its_url_until_its_file_is_edited(settings, tmp_path):
    from ingest.fetch import file_name_for
    from ingest.sidecar import sign_sidecar

    web = settings.documents_dir / "web"
    web.mkdir(parents=True)
    url = "https://example.org/news/ferry.html"
    page = web / file_name_for(url, ".html")
    page.write_text("<html><body><p>The ferry costs 4 euros.</p></body></html>")
    (web / (page.name + ".url")).write_text(f"[InternetShortcut]\nURL={url}\n")
    sign_sidecar(page, settings)  # what fetch_to_documents does after the download
    emb = HashEmbedder()
    ingest_paths([settings.documents_dir], settings, emb)
    assert list(recorded(settings)) == [url]
    # A signature does not carry over to other content: an edited page is cited by its name.
    page.write_text("<html><body><p>The ferry is free.</p></body></html>")
    ingest_paths([settings.documents_dir], settings, emb)
    assert list(recorded(settings)) == [f"web/{page.name}"]
    assert committed_ids(settings) == vector_ids(settings, emb)


def test_sidecars_from_before_signing_keep_their_indexed_url(settings, tmp_path):
    web = tmp_path / "docs" / "web"
    web.mkdir(parents=True)
    page = web / "example.org_a.html"
    page.write_text("<html><body><p>The ferry costs 4 euros.</p></body></html>")
    (web / "example.org_a.html.url").write_text("[InternetShortcut]\nURL=https://example.org/a\n")
    emb = HashEmbedder()
    ingest_paths([tmp_path / "docs"], settings, emb)
    db = sqlite3.connect(Layout(settings.home).manifest)
    with db:  # as an earlier version recorded it
        db.execute("UPDATE files SET source = 'https://example.org/a'")
        db.execute("UPDATE chunks SET source = 'https://example.org/a'")
    db.close()
    report = ingest_paths([tmp_path / "docs"], settings, emb)
    assert (report.unchanged, report.embedded) == (1, 0)
    assert list(recorded(settings)) == ["https://example.org/a"]


# -- D12: a read-only DOSSIER_HOME -------------------------------------------------------------------------


@pytest.fixture
def read_only_home(tmp_path, embedder):
    """An index whose folder nobody may write to, not even root (the immutable attribute)."""
    import shutil

    if not shutil.which("chattr"):
        pytest.skip("chattr is not available")
    home = tmp_path / "home"
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(3):
        (docs / f"garden{i}.txt").write_text(f"Volunteers at garden {i} logged {i * 100 + 40} hours.")
    ingest_paths([docs], Settings(home=home, _env_file=None), embedder)
    from tests.onnx_models import seed_models

    seed_models(home)  # the ONNX export a first `dossier ingest` leaves in DOSSIER_HOME/models
    if subprocess.run(["chattr", "-R", "+i", str(home)], capture_output=True).returncode != 0:
        pytest.skip("cannot make a folder immutable here")
    try:
        yield home
    finally:
        subprocess.run(["chattr", "-R", "-i", str(home)], check=True)


def test_read_only_home_answers_and_ingest_says_why_in_one_line(read_only_home, tmp_path):
    from tests.helpers_proc import dossier_args, dossier_env

    def run(*args):
        return subprocess.run(
            dossier_args(*args),
            env=dossier_env(read_only_home),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    status = run("status")
    assert status.returncode == 0 and "documents:  3" in status.stdout, status.stderr
    assert "vectors:    3" in status.stdout and "problem:" not in status.stdout
    ask = run("ask", "How many hours did volunteers log at garden 1?")
    assert ask.returncode == 0 and "140 hours" in ask.stdout and "[1] garden1.txt" in ask.stdout, ask.stderr
    assert ask.stderr == ""
    done = run("ingest", str(tmp_path / "docs"))
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dossier: Cannot write to DOSSIER_HOME"), done.stderr


# -- D3 and D15: names of Discord uploads ------------------------------------------------------------------


def test_upload_names_keep_their_letters_and_type():
    from bot.discord_bot import safe_filename

    names = ["报告.pdf", "年度报告.pdf", "отчёт.pdf", "Über.md", "..md", "a\nfailed: fake.md"]
    assert [safe_filename(n) for n in names] == [
        "报告.pdf",
        "年度报告.pdf",
        "отчёт.pdf",
        "Über.md",
        "upload.md",
        "a_failed_fake.md",
    ]


def test_uploads_never_replace_another_document(settings, tmp_path):
    from bot.discord_bot import save_upload

    folder = tmp_path / "documents"
    first = save_upload(folder, "报告.pdf", b"%PDF-1 first")
    second = save_upload(folder, "年度报告.pdf", b"%PDF-1 second")
    clash = save_upload(folder, "报告.pdf", b"%PDF-1 another report")
    again = save_upload(folder, "报告.pdf", b"%PDF-1 first")
    assert [first.name, second.name, clash.name, again.name] == [
        "报告.pdf",
        "年度报告.pdf",
        "报告 (2).pdf",
        "报告.pdf",
    ]
    assert first.read_bytes() == b"%PDF-1 first" and clash.read_bytes() == b"%PDF-1 another report"
    dotted = save_upload(folder, "..md", b"# Notes\n\nThe kiln runs at 1260 degrees.\n")
    report = ingest_paths([dotted], settings, HashEmbedder())
    assert report.added == 1 and list(recorded(settings)) == ["upload.md"]


# -- D15: small ones ---------------------------------------------------------------------------------------


def test_full_disk_is_one_line_and_the_index_stays_intact(settings, tmp_path, monkeypatch):
    import errno

    from dossier_common.errors import DossierError
    from index.store import VectorStore as Store

    docs = three_docs(tmp_path / "docs")
    emb = HashEmbedder()
    ingest_paths([docs], settings, emb)
    before = index_state(settings, emb)
    (docs / "garden1.txt").write_text("Garden 1 was paved over.")

    def no_space(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Store, "upsert", no_space)
    with pytest.raises(DossierError, match=r"^The disk holding .* is full; free some space"):
        ingest_paths([docs], settings, emb)
    monkeypatch.undo()
    assert index_state(settings, emb)[:3] == before[:3]
    assert ingest_paths([docs], settings, emb).updated == 1


def test_a_watcher_can_stop_between_parts_of_a_large_file(tmp_path):
    class Stop(Exception):
        pass

    def stop_now(_embedded: int) -> None:
        raise Stop  # what the watcher's stop check does

    docs = big_file(tmp_path / "docs")
    settings = Settings(
        home=tmp_path / "home", chunk_tokens=20, chunk_overlap=0, embed_batch_size=4, _env_file=None
    )
    with pytest.raises(Stop):
        ingest_paths([docs], settings, SpanHashEmbedder(), on_group=stop_now)
    manifest = Manifest(Layout(settings.home).manifest)
    try:
        assert (len(manifest.staged()), manifest.chunk_count()) == (16, 0)
    finally:
        manifest.close()
