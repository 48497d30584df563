"""Issue 14, ingest side: bad input and faults give one clear line and leave the index intact."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ingest.manifest import SCHEMA_VERSION, Manifest
from ingest.pipeline import ingest_paths, manifest_path
from ingest.settings import Settings
from ingest.store import VectorStore
from tests.fakes import HashEmbedder


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", _env_file=None)


def recorded(settings: Settings) -> dict[str, str]:
    """source -> path of every file in the manifest."""
    manifest = Manifest(manifest_path(settings))
    try:
        return {s: r.path for s, r in manifest.files().items()}
    finally:
        manifest.close()


def vector_ids(settings: Settings, emb: HashEmbedder) -> set[str]:
    return VectorStore(settings, model=emb.name, dimension=emb.dimension, create=False).all_ids()


def committed_ids(settings: Settings) -> set[str]:
    manifest = Manifest(manifest_path(settings))
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


def test_a_newline_in_a_file_name_cannot_forge_lines(settings, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a\nfailed: fake.md").write_text("The orchard has 77 pear trees.")
    ingest_paths([docs], settings, HashEmbedder())
    assert list(recorded(settings)) == ["a?failed: fake.md"]


# -- the manifest schema -----------------------------------------------------------------------


def test_version_1_manifest_is_migrated_and_keeps_other_tables(settings, tmp_path):
    sub = tmp_path / "docs" / "sub"
    sub.mkdir(parents=True)
    (sub / "lens.md").write_text("The lens has a focal length of 50 mm.")
    emb = HashEmbedder()
    ingest_paths([sub], settings, emb)
    # Make it what version 1 left after `ingest docs/sub` then `ingest docs`: the same file
    # recorded twice, no version key, no unique index; plus a table some other feature added.
    db = sqlite3.connect(manifest_path(settings))
    with db:
        db.execute("DELETE FROM meta WHERE key = 'schema_version'")
        db.execute("DROP INDEX files_by_path")
        db.execute(
            "INSERT INTO files SELECT 'sub/lens.md', root, path, content_hash, title, text, n_chunks,"
            " ingested_at - 1 FROM files"
        )
        db.execute(
            "INSERT INTO chunks SELECT id || 'x', 'sub/lens.md', ord, text, start, \"end\", title, section,"
            " page, tokens FROM chunks"
        )
        db.execute("CREATE TABLE briefs (source TEXT PRIMARY KEY, brief TEXT)")
        db.execute("INSERT INTO briefs VALUES ('lens.md', 'A lens.')")
    db.close()

    manifest = Manifest(manifest_path(settings))
    try:
        assert manifest.schema_version() == SCHEMA_VERSION
        assert list(manifest.files()) == ["lens.md"]  # the most recent record wins
        assert not any(i.endswith("x") for i in manifest.all_chunk_ids())
        assert all(i.endswith("x") for i in manifest.pending())
        assert manifest.db.execute("SELECT brief FROM briefs").fetchone()[0] == "A lens."
    finally:
        manifest.close()
    # The next ingest settles Chroma on what the manifest holds, with no re-embedding.
    report = ingest_paths([tmp_path / "docs"], settings, emb)
    assert report.unchanged == 1


def test_newer_schema_is_refused_with_a_message(settings, tmp_path):
    Manifest(manifest_path(settings)).close()
    db = sqlite3.connect(manifest_path(settings))
    with db:
        db.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    db.close()
    from ingest.errors import StoreError

    with pytest.raises(StoreError, match="newer Dossier"):
        Manifest(manifest_path(settings))
