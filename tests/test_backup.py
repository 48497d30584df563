"""`dossier backup` and `dossier restore`: a consistent copy taken while readers answer."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from bot.engine import Engine
from bot.feedback import FeedbackStore
from dossier_common.settings import Settings
from index.layout import Layout
from index.manifest import Manifest
from index.schema import SCHEMA_VERSION
from ingest.backup import BackupError, backup, restore
from ingest.pipeline import ingest_paths
from tests.conftest import ROOT
from tests.fakes import HashEmbedder
from tests.helpers_proc import dossier_args, dossier_env

QUESTIONS = [f"How many hours did volunteers log at garden {i}?" for i in range(5)] + [
    "Which garden grows pumpkins?",
    "What does the tool shed hold?",
]


def build_index(tmp_path: Path) -> Settings:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(5):
        (docs / f"garden{i}.md").write_text(
            f"# Garden {i}\n\nVolunteers at garden {i} logged {i * 100 + 40} hours this year. "
            f"Garden {i} grows {['beans', 'pumpkins', 'leeks', 'kale', 'corn'][i]}.\n"
        )
    (docs / "shed.txt").write_text("The tool shed holds twelve rakes and four wheelbarrows.")
    settings = Settings(home=tmp_path / "home", _env_file=None)
    ingest_paths([docs], settings, HashEmbedder())
    store = FeedbackStore.for_settings(settings)
    store.save_answer("a1", question="q?", answer="an answer")
    store.record("a1", 1, 42)
    return settings


def answers(settings: Settings) -> list[tuple]:
    engine = Engine(settings, embedder=HashEmbedder())
    try:
        out = []
        for q in QUESTIONS:
            a = engine.ask(q)
            out.append((a.text, a.abstained, [(c.source, c.location, c.quote) for c in a.citations]))
        return out
    finally:
        engine.close()


def test_backup_while_a_reader_asks_then_restore_answers_identically(tmp_path):
    settings = build_index(tmp_path)
    expected = answers(settings)
    errors: list[BaseException] = []
    asked = [0]
    stop = threading.Event()

    def reader() -> None:
        engine = Engine(settings, embedder=HashEmbedder())
        try:
            while not stop.is_set() or asked[0] < 100:
                try:
                    engine.ask(QUESTIONS[asked[0] % len(QUESTIONS)])
                except BaseException as err:  # any failure fails the test
                    errors.append(err)
                asked[0] += 1
        finally:
            engine.close()

    thread = threading.Thread(target=reader)
    thread.start()
    info = backup(settings, tmp_path / "backup")
    stop.set()
    thread.join(timeout=120)
    assert asked[0] >= 100 and errors == []
    assert (info["documents"], info["schema_version"]) == (6, SCHEMA_VERSION)

    fresh = Settings(home=tmp_path / "elsewhere" / "home", _env_file=None)
    restore(fresh, tmp_path / "backup")
    assert answers(fresh) == expected
    assert [r["vote"] for r in FeedbackStore.for_settings(fresh).rows()] == [1]
    # The restored index is a working one: an ingest there finds nothing to embed again.
    emb = HashEmbedder()
    report = ingest_paths([tmp_path / "docs"], fresh, emb)
    assert (report.unchanged, emb.embedded) == (6, 0)


def test_restore_refuses_a_home_with_an_index_and_a_folder_that_is_no_backup(tmp_path):
    settings = build_index(tmp_path)
    backup(settings, tmp_path / "backup")
    with pytest.raises(BackupError, match="already holds an index"):
        restore(settings, tmp_path / "backup")
    with pytest.raises(BackupError, match="not a Dossier backup"):
        restore(Settings(home=tmp_path / "new", _env_file=None), tmp_path / "docs")
    with pytest.raises(BackupError, match="not empty"):
        backup(settings, tmp_path / "backup")


def test_restore_of_an_older_schema_migrates_without_re_embedding(tmp_path):
    settings = build_index(tmp_path)
    backup(settings, tmp_path / "backup")
    old = tmp_path / "backup" / "index.sqlite"
    m = Manifest(old)
    with m.transaction() as db:
        db.execute("DELETE FROM meta WHERE key = 'schema_version'")
        db.execute("DROP INDEX files_by_path")
    m.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    m.close()
    fresh = Settings(home=tmp_path / "fresh", _env_file=None)
    restore(fresh, tmp_path / "backup")
    m = Manifest(Layout(fresh.home).manifest)
    assert m.schema_version() == SCHEMA_VERSION
    m.close()
    assert answers(fresh) == answers(settings)


def test_cli_backup_and_restore(tmp_path):
    settings = build_index(tmp_path)

    def run(home: Path, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            dossier_args(*args), env=dossier_env(home), cwd=ROOT, capture_output=True, text=True, timeout=120
        )

    done = run(settings.home, "backup", str(tmp_path / "b"))
    assert done.returncode == 0 and "backed up 6 documents" in done.stdout, done.stderr
    done = run(tmp_path / "restored", "restore", str(tmp_path / "b"))
    assert done.returncode == 0 and "restored 6 documents" in done.stdout, done.stderr
    done = run(tmp_path / "restored", "restore", str(tmp_path / "b"))
    assert done.returncode == 2 and done.stderr.strip().startswith("dossier: ") and "already" in done.stderr
    assert answers(Settings(home=tmp_path / "restored", _env_file=None)) == answers(settings)


def test_restored_report_index_scores_the_dev_set_identically(fake_report_index, tmp_path):
    from bot.evaluate import load_questions, run_eval
    from tests.conftest import DEV_SET, need_shared

    questions = load_questions(need_shared(DEV_SET))
    backup(fake_report_index, tmp_path / "backup")
    fresh = Settings(home=tmp_path / "fresh", _env_file=None)
    restore(fresh, tmp_path / "backup")
    figures = []
    for settings in (fake_report_index, fresh):
        engine = Engine(settings, embedder=HashEmbedder())
        try:
            summary = run_eval(engine, questions)["summary"]
        finally:
            engine.close()
        figures.append(without_timings(summary))
    assert figures[0] == figures[1] and figures[0]["n"] == len(questions)


def without_timings(value):
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if not k.endswith("_ms")}
    return value
