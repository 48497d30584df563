"""Ingest memory stays bounded whatever the corpus size: a run of large files is committed
file by file, not held until the end of the run."""

from __future__ import annotations

from pathlib import Path

from dossier_common.settings import Settings
from index.layout import Layout
from index.manifest import Manifest
from ingest.pipeline import ingest_paths


class _CommittedWhenNext:
    """A progress listener that notes, as each file is looked at, how many files are
    already committed to the index."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.committed: list[int] = []

    def start(self, total: int) -> None:
        pass

    def advance(self, name: str) -> None:
        path = Layout(self.home).manifest
        if not path.exists():
            self.committed.append(0)
            return
        manifest = Manifest(path, readonly=True)
        try:
            self.committed.append(len(manifest.files()))
        finally:
            manifest.close()

    def finish(self) -> None:
        pass


def test_large_files_are_committed_one_by_one(tmp_path: Path, fake_embedder) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(4):
        # Each file makes far more chunks than one commit group holds (4 batches of 2).
        paragraphs = [f"Report {n}, paragraph {p}: the harbour had {p} ships in port." for p in range(60)]
        (docs / f"report{n}.txt").write_text("\n\n".join(paragraphs))
    settings = Settings(
        home=tmp_path / "home", embed_batch_size=2, chunk_tokens=24, chunk_overlap=0, _env_file=None
    )
    progress = _CommittedWhenNext(settings.home)
    report = ingest_paths([docs], settings, fake_embedder, progress=progress)
    assert report.added == 4 and report.chunks > 4 * 8
    # Each file's text and chunks are let go (committed) before the next file is read.
    assert progress.committed == [0, 1, 2, 3]
