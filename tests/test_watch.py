"""The folder watcher: in-process through `start_background_watcher`, and as `dossier watch` in a
subprocess (adds, edits, renames, deletes, bursts, a reader during re-ingests, SIGTERM, kill -9).

Real model throughout; every wait has a deadline instead of a fixed sleep.
"""

from __future__ import annotations

import hashlib
import logging
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from watchfiles import Change

from bot.engine import Engine
from bot.watch_command import run_watch
from dossier_common.settings import Settings
from index.layout import Layout
from index.store import VectorStore
from ingest.chunking import chunk_document
from ingest.loaders import load_file
from ingest.pipeline import ingest_paths
from ingest.watch import WatchFilter, start_background_watcher
from tests.helpers_proc import Proc, dossier_args, dossier_env, generation, manifest_query, wait_until

QUIET_MS = "300"
SUMMARY = r"\d+ added, \d+ updated, \d+ deleted"
FACT = "The Zorblat festival takes place in Quillport every March.\n"
QUESTION = "Where does the Zorblat festival take place?"
FILLER = {
    "garden.md": "# Garden notes\n\nTomatoes need six hours of sun a day. Water the beans in the morning.\n\n"
    "Compost turns faster when it is kept damp and turned every week.\n",
    "kitchen.txt": "Kitchen rules\n\nThe copper kettle is descaled every month with vinegar.\n"
    "Knives are sharpened on Sundays and never go in the dishwasher.\n",
}


def _write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _sources(home: Path) -> set[str]:
    return {row[0] for row in manifest_query(home, "SELECT source FROM files")}


def _file_hash(home: Path, source: str) -> str | None:
    rows = manifest_query(home, "SELECT content_hash FROM files WHERE source = ?", (source,))
    return rows[0][0] if rows else None


def _file_text(home: Path, source: str) -> str:
    rows = manifest_query(home, "SELECT text FROM files WHERE source = ?", (source,))
    return rows[0][0] if rows else ""


def _chunk_ids(home: Path) -> set[str]:
    return {row[0] for row in manifest_query(home, "SELECT id FROM chunks")}


def _chroma_ids(home: Path, embedder) -> set[str]:
    store = VectorStore(Settings(home=home, _env_file=None), model=embedder.name, create=False)
    return store.all_ids()


def _added(lines: list[str]) -> int:
    return sum(int(re.search(r"(\d+) added", line).group(1)) for line in lines)  # type: ignore[union-attr]


# -- in-process --------------------------------------------------------------------------------


def test_filter_ignores_hidden_unsupported_and_the_index_itself(tmp_path: Path) -> None:
    root = tmp_path / ".dossier" / "documents"  # under a hidden folder, as the default docs dir is
    (root / "sub").mkdir(parents=True)
    keep = WatchFilter([root], ignore=[root / "state"])
    assert keep(Change.added, str(root / "report.pdf"))
    assert keep(Change.modified, str(root / "sub" / "Notes.MD"))
    assert keep(Change.added, str(root / "sub"))  # a folder moved in
    assert keep(Change.deleted, str(root / "old-folder"))  # a folder moved out or deleted
    assert not keep(Change.added, str(root / ".draft.txt"))
    assert not keep(Change.added, str(root / ".git" / "notes.txt"))
    assert not keep(Change.added, str(root / "~$report.docx"))
    assert not keep(Change.added, str(root / "photo.jpg"))
    assert not keep(Change.deleted, str(root / "download.pdf.part"))
    assert not keep(Change.modified, str(root / "state" / "notes.txt"))


def _filler_folder(tmp_path: Path) -> tuple[Path, Settings]:
    """A folder of filler documents and settings for an in-process watcher with a short debounce."""
    docs = tmp_path / "docs"
    _write(docs, FILLER)
    return docs, Settings(home=tmp_path / "home", watch_debounce_ms=100, _env_file=None)


def test_background_watcher_ingests_survives_a_bad_file_and_stops(tmp_path: Path, fake_embedder) -> None:
    docs, settings = _filler_folder(tmp_path)
    reports: list = []
    handle = start_background_watcher([docs], settings, fake_embedder, on_batch=reports.append)
    try:
        assert handle.ready.wait(60), "the first ingest did not finish"
        assert reports[0].added == 2
        (docs / "broken.md").write_bytes(b"\x00\x01\x02 binary junk" * 10)
        wait_until(
            lambda: any(f.path.endswith("broken.md") for r in reports for f in r.failed), 30, "a failure"
        )
        assert handle.is_alive()
        # Retried when it changes: now it is a good file.
        (docs / "broken.md").write_text("# Mended\n\nThe mended file is about brass lamps.\n")
        wait_until(lambda: "broken.md" in _sources(settings.home), 30, "the mended file")
        assert reports[-1].failed == ()
    finally:
        assert handle.stop(30)
    assert not handle.is_alive() and handle.error is None


def test_a_vanished_folder_keeps_its_documents_and_is_watched_again(
    tmp_path: Path, fake_embedder, caplog: pytest.LogCaptureFixture
) -> None:
    docs, settings = _filler_folder(tmp_path)
    caplog.set_level(logging.INFO, logger="ingest.watch")
    handle = start_background_watcher([docs], settings, fake_embedder)
    try:
        assert handle.ready.wait(60)
        docs.rename(tmp_path / "away")  # e.g. a drive unmounted
        wait_until(lambda: "is gone" in caplog.text, 30, "the watcher to notice")
        time.sleep(0.5)
        assert _sources(settings.home) == set(FILLER)
        (tmp_path / "away").rename(docs)
        (docs / "back.txt").write_text("The folder came back with a note about herons.\n")
        wait_until(lambda: "back.txt" in _sources(settings.home), 30, "the folder to be watched again")
        assert handle.is_alive()
    finally:
        assert handle.stop(30)


def test_watcher_waits_for_the_writer_lock(
    tmp_path: Path, fake_embedder, caplog: pytest.LogCaptureFixture
) -> None:
    docs, settings = _filler_folder(tmp_path)
    caplog.set_level(logging.INFO, logger="ingest.watch")
    with Layout(settings.home).writer_lock():  # another writer, e.g. a `dossier ingest` in progress
        handle = start_background_watcher([docs], settings, fake_embedder)
        try:
            wait_until(lambda: "Waiting for it" in caplog.text, 30, "the watcher to notice the lock")
            assert handle.is_alive() and not handle.ready.is_set()
        except BaseException:
            handle.stop(30)
            raise
    try:
        assert handle.ready.wait(60), "the watcher did not ingest once the lock was free"
        assert _sources(settings.home) == set(FILLER)
    finally:
        assert handle.stop(30)


def test_run_watch_refuses_missing_folders_and_files(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    settings = Settings(home=tmp_path / "home", _env_file=None)
    assert run_watch([tmp_path / "nowhere"], settings) == 2
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "one.txt").write_text("x")
    assert run_watch([tmp_path / "one.txt"], settings) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert not (tmp_path / "home" / "index.sqlite").exists()


# -- `dossier watch` in a subprocess ----------------------------------------------------------------


@dataclass
class Live:
    proc: Proc
    docs: Path
    home: Path

    @property
    def settings(self) -> Settings:
        return Settings(home=self.home, _env_file=None)

    def summaries(self) -> list[str]:
        return self.proc.lines(SUMMARY)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """One `dossier watch` process shared by the tests that only add their own files."""
    base = tmp_path_factory.mktemp("live")
    docs, home = base / "docs", base / "home"
    _write(docs, FILLER)
    env = dossier_env(home, DOSSIER_WATCH_DEBOUNCE_MS=QUIET_MS)
    proc = Proc(dossier_args("-v", "watch", str(docs)), env, cwd=base)
    try:
        proc.wait_for(SUMMARY, timeout=120)
        yield Live(proc, docs, home)
    finally:
        proc.stop()


def test_watcher_applies_add_edit_rename_and_delete(live: Live, embedder) -> None:
    engine = Engine(live.settings, embedder=embedder)
    try:
        before = engine.ask(QUESTION)
        assert "Quillport" not in before.text

        (live.docs / "zorblat.txt").write_text(FACT)
        wait_until(lambda: "zorblat.txt" in _sources(live.home), 60, "the added file")
        added = engine.ask(QUESTION)
        assert "Quillport" in added.text and not added.abstained
        assert {c.source for c in added.citations} == {"zorblat.txt"}

        (live.docs / "zorblat.txt").write_text("The Zorblat festival takes place in Varnholt every June.\n")
        wait_until(lambda: "Varnholt" in _file_text(live.home, "zorblat.txt"), 60, "the edit")
        edited = engine.ask(QUESTION)
        assert "Varnholt" in edited.text and "Quillport" not in edited.text

        (live.docs / "zorblat.txt").rename(live.docs / "festivals.txt")
        wait_until(lambda: "festivals.txt" in _sources(live.home) - {"zorblat.txt"}, 60, "the rename")
        assert "zorblat.txt" not in _sources(live.home)
        renamed = engine.ask(QUESTION)
        assert {c.source for c in renamed.citations} == {"festivals.txt"} and "Varnholt" in renamed.text

        (live.docs / "festivals.txt").unlink()
        wait_until(lambda: "festivals.txt" not in _sources(live.home), 60, "the delete")
        deleted = engine.ask(QUESTION)
        assert "Varnholt" not in deleted.text
        assert all(c.source in FILLER for c in deleted.citations)
        assert _sources(live.home) == set(FILLER)
    finally:
        engine.close()

    # Hidden files and unsupported types never start a batch.
    batches = len(live.summaries())
    (live.docs / ".zorblat-draft.txt").write_text(FACT)
    (live.docs / "zorblat.xyz").write_text(FACT)
    time.sleep(1.5)  # several quiet periods: a batch would have run by now
    assert len(live.summaries()) == batches


def test_a_burst_of_files_is_ingested_in_few_batches(live: Live) -> None:
    before = len(live.summaries())
    burst = live.docs / "burst"
    burst.mkdir()
    for i in range(30):
        (burst / f"note-{i:02d}.txt").write_text(f"Burst note {i}: crate {i} holds {i * 7} tin soldiers.\n")
    wait_until(lambda: _added(live.summaries()[before:]) >= 30, 60, "30 files added")
    new = live.summaries()[before:]
    assert 1 <= len(new) <= 3, new
    assert {s for s in _sources(live.home) if s.startswith("burst/")} == {
        f"burst/note-{i:02d}.txt" for i in range(30)
    }


def test_reader_process_sees_new_vectors(live: Live, embedder) -> None:
    # Embedded Chroma keeps its vector index in memory: without a real reopen, a reader process
    # would find new files by keyword search only.
    store = VectorStore(live.settings, model=embedder.name, create=False)
    question = embedder.embed_query("Who counts gannets on Skarra island?")
    store.query(question, 5)  # the reader has used the index before the change
    (live.docs / "gannets.txt").write_text("Lighthouse keepers on Skarra island count gannets at dawn.\n")
    wait_until(lambda: "gannets.txt" in _sources(live.home), 60, "the new file")
    new_ids = {r[0] for r in manifest_query(live.home, "SELECT id FROM chunks WHERE source = 'gannets.txt'")}
    store.reopen()  # what the retriever does when the manifest's generation changes
    assert new_ids <= {chunk_id for chunk_id, _ in store.query(question, 10)}


EDITIONS = ["amber", "cobalt", "crimson", "jade"]
LEDGER_QUESTION = "How many ships did the harbour master of Quellmoor log?"


def _ledger(edition: str) -> str:
    lines = [f"Harbour ledger, {edition} edition"]
    for k in range(1, 9):
        lines.append(
            f"In the {edition} edition, entry {k} says the harbour master of Quellmoor logged "
            f"{k * 11} {edition} ships from the northern isles, and the {edition} tide tables "
            f"for week {k} were pinned beside the {edition} lighthouse door."
        )
    return "\n\n".join(lines) + "\n"


def test_reader_during_reingests_only_sees_whole_versions(live: Live, embedder, tmp_path: Path) -> None:
    settings = live.settings
    # Every version's text and chunk ids, as the pipeline computes them.
    versions: dict[str, tuple[str, set[str]]] = {}
    for edition in EDITIONS:
        copy = tmp_path / edition / "ledger.txt"
        copy.parent.mkdir()
        copy.write_text(_ledger(edition))
        doc = load_file(copy, copy.parent)
        chunks = chunk_document(
            doc,
            embedder.count_tokens,
            max_tokens=min(settings.chunk_tokens, embedder.max_tokens),
            overlap=settings.chunk_overlap,
        )
        versions[edition] = (doc.text, {c.id for c in chunks})
    others_before = _chunk_ids(live.home)

    (live.docs / "ledger.txt").write_text(_ledger(EDITIONS[0]))
    first_hash = hashlib.sha256(_ledger(EDITIONS[0]).encode()).hexdigest()
    wait_until(lambda: _file_hash(live.home, "ledger.txt") == first_hash, 60, "the first edition")

    answers: list = []
    retrieved: list = []  # retrieval alone is cheap: many more looks at the index per commit
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        engine = Engine(settings, embedder=embedder)
        try:
            for i in range(10**9):
                if done.is_set():
                    break
                if i % 4 == 0:
                    answers.append(engine.ask(LEDGER_QUESTION))
                    retrieved.append(answers[-1].retrieved)
                else:
                    retrieved.append(engine.retrieve(LEDGER_QUESTION))
        except BaseException as err:
            errors.append(err)
        finally:
            engine.close()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        # The first edition is seen before the next one replaces it, however slow the start.
        wait_until(lambda: len(retrieved) >= 2 or errors, 60, "the reader's first looks")
        for edition in EDITIONS[1:]:
            text = _ledger(edition)
            (live.docs / "ledger.txt").write_text(text)
            digest = hashlib.sha256(text.encode()).hexdigest()
            wait_until(
                lambda d=digest: _file_hash(live.home, "ledger.txt") == d, 60, f"the {edition} edition"
            )
            n = len(retrieved)
            wait_until(lambda n=n: len(retrieved) >= n + 2 or errors, 30, "reads after the commit")
    finally:
        done.set()
        reader.join(60)
    assert not errors, errors
    assert answers and len(retrieved) >= 6

    allowed = others_before | set().union(*(ids for _, ids in versions.values()))
    seen_editions = set()
    for passages in retrieved:
        for passage in passages:
            assert set(passage.chunk_ids) <= allowed, "a passage from a chunk that was never committed"
            if passage.source == "ledger.txt":
                whole = [e for e, (text, _) in versions.items() if passage.text in text]
                assert whole, f"passage mixes editions or is not a committed version: {passage.text[:200]!r}"
                seen_editions.update(whole)
    for answer in answers:
        for citation in answer.citations:
            assert citation.passage_id in allowed
            if citation.source == "ledger.txt":
                named = {e for e in EDITIONS if e in citation.quote}
                assert len(named) <= 1, citation.quote
    assert seen_editions >= {EDITIONS[0], EDITIONS[-1]}
    final = _chunk_ids(live.home)
    assert versions[EDITIONS[-1]][1] <= final
    assert not final & (allowed - others_before - versions[EDITIONS[-1]][1])


# -- stopping and crashing ------------------------------------------------------------------------


def test_sigterm_lets_the_batch_finish_and_releases_the_lock(tmp_path: Path, embedder) -> None:
    docs, home = tmp_path / "docs", tmp_path / "home"
    _write(docs, FILLER)
    # Indexed beforehand, so the watcher starts without loading the model.
    ingest_paths([docs], Settings(home=home, _env_file=None), embedder)
    env = dossier_env(home, DOSSIER_WATCH_DEBOUNCE_MS=QUIET_MS)
    proc = Proc(dossier_args("-v", "watch", str(docs)), env, cwd=tmp_path)
    try:
        proc.wait_for(SUMMARY, timeout=60)
        (docs / "zorblat.txt").write_text(FACT)
        proc.wait_for(r"ingesting after [1-9]", stream="err", timeout=120)
        proc.signal(signal.SIGTERM)
        assert proc.wait(60) == 0, proc.transcript()
    finally:
        proc.stop()
    assert "zorblat.txt" in _sources(home), "the batch in progress was not finished"
    assert _chunk_ids(home) == _chroma_ids(home, embedder)
    started = time.monotonic()
    again = subprocess.run(
        dossier_args("ingest", str(docs)), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stderr
    assert "0 added, 0 updated, 0 deleted, 3 unchanged" in again.stdout
    assert time.monotonic() - started < 60


def _essay(i: int) -> str:
    words = [
        "barley",
        "cobble",
        "dormouse",
        "ember",
        "fennel",
        "gannet",
        "heron",
        "indigo",
        "juniper",
        "kelp",
    ]
    paragraphs = [
        f"Essay {i}, part {p}: the {words[(i + p) % 10]} cooperative of village {i} met on day {p * 3 + i} "
        f"to count {words[(i * p) % 10]} barrels, mend {i + p} nets and argue about the {words[p % 10]} mill. "
        "Everyone agreed the ledgers should be copied twice and kept in separate houses."
        for p in range(3)
    ]
    return "\n\n".join(paragraphs) + "\n"


def test_kill_9_mid_batch_then_restart_converges(tmp_path: Path, embedder) -> None:
    docs, home, clean = tmp_path / "docs", tmp_path / "home", tmp_path / "clean"
    docs.mkdir()
    env = dossier_env(home, DOSSIER_WATCH_DEBOUNCE_MS=QUIET_MS)
    args = dossier_args("watch", str(docs))
    # One chunk per model call makes commit groups of a few chunks (one file each here): the
    # batch of 12 files is committed in several steps, and the kill lands between two of them.
    first = Proc(args, {**env, "DOSSIER_EMBED_BATCH_SIZE": "1"}, cwd=tmp_path)
    try:
        first.wait_for(SUMMARY, timeout=120)
        start = generation(home)
        _write(docs, {f"essay-{i:02d}.txt": _essay(i) for i in range(12)})
        wait_until(lambda: generation(home) > start, 60, "a first commit of the batch")
        first.popen.kill()
        first.wait(30)
    finally:
        first.stop()
    assert 0 < len(_sources(home)) < 12, "the kill did not land in the middle of the batch"

    second = Proc(args, env, cwd=tmp_path)
    try:
        second.wait_for(SUMMARY, timeout=120)
        second.signal(signal.SIGTERM)
        assert second.wait(60) == 0, second.transcript()
    finally:
        second.stop()

    ingest_paths([docs], Settings(home=clean, _env_file=None), embedder)
    assert len(_sources(home)) == 12
    assert _chunk_ids(home) == _chunk_ids(clean)
    assert _chroma_ids(home, embedder) == _chunk_ids(home)
    assert _chroma_ids(clean, embedder) == _chunk_ids(clean)
    assert not manifest_query(home, "SELECT id FROM pending")
