"""`dossier backup PATH` and `dossier restore PATH`: a consistent copy of an index.

A backup holds the manifest, the embedded Chroma folder, the keyword cache, the feedback
database and the key that signs fetched pages' sidecars, plus `backup.json` describing
them. It is taken under the writer lock, so no ingest changes the index meanwhile; readers
(the bot, chat) never write to it and keep answering. The SQLite files are copied with
SQLite's online backup API, which gives a consistent snapshot even while another process
has them open (the bot records feedback at any time).

The documents themselves are not part of it: the manifest holds their text, which is all
answering needs; re-ingesting needs the documents where the manifest says they are.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

from dossier_common.errors import DossierError
from dossier_common.settings import Settings
from index.layout import Layout
from index.manifest import Manifest
from index.schema import SCHEMA_VERSION

log = logging.getLogger(__name__)

DESCRIPTION = "backup.json"
FORMAT = 1
# How long a backup waits for a running ingest to finish before giving up.
LOCK_WAIT = 600.0


class BackupError(DossierError):
    """A backup could not be written or restored."""

    exit_code = 2


def _copy_sqlite(source: Path, target: Path) -> None:
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        with dst:
            src.backup(dst)
    finally:
        src.close()
        dst.close()


def backup(settings: Settings, target: Path, *, lock_wait: float = LOCK_WAIT) -> dict[str, Any]:
    """Write a snapshot of the index in `settings.home` to the new folder `target`."""
    if settings.chroma_url:
        raise BackupError(
            "The vectors live on a Chroma server (DOSSIER_CHROMA_URL): back up the server's data folder "
            "together with DOSSIER_HOME instead."
        )
    here, there = Layout(settings.home), Layout(target)
    if not here.manifest.exists():
        raise BackupError(f"There is no index to back up in {settings.home}.")
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty; give a new folder for the backup.")
    target.mkdir(parents=True, exist_ok=True)
    with here.writer_lock(lock_wait):
        manifest = Manifest(here.manifest)
        try:
            stats = manifest.stats()
            generation = manifest.generation()
        finally:
            manifest.close()
        for ours, theirs in zip(here.sqlite_files, there.sqlite_files, strict=True):
            if ours.exists():
                _copy_sqlite(ours, theirs)
        for ours, theirs in zip(here.folders, there.folders, strict=True):
            if ours.is_dir():
                # Chroma's own SQLite file goes through the backup API like ours: a reader's
                # Chroma client may checkpoint its WAL while we copy.
                shutil.copytree(ours, theirs, ignore=shutil.ignore_patterns(f"{here.chroma_db.name}*"))
        if here.chroma_db.exists():
            _copy_sqlite(here.chroma_db, there.chroma_db)
        for ours, theirs in zip(here.other_files, there.other_files, strict=True):
            if ours.exists():
                shutil.copy2(ours, theirs)
    description = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "created": time.time(),
        "home": str(settings.home.resolve()),
        "collection": settings.collection,
        "generation": generation,
        **{k: stats[k] for k in ("documents", "chunks", "model")},
    }
    (target / DESCRIPTION).write_text(json.dumps(description, indent=2), encoding="utf-8")
    log.info("backed up %s to %s", settings.home, target)
    return description


def restore(settings: Settings, source: Path) -> dict[str, Any]:
    """Bring the backup in `source` into `settings.home`, which must hold no index yet."""
    try:
        description = json.loads((source / DESCRIPTION).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise BackupError(f"{source} is not a Dossier backup (no readable {DESCRIPTION}).") from None
    if description.get("format") != FORMAT or int(description.get("schema_version", 0)) > SCHEMA_VERSION:
        raise BackupError(f"{source} was written by a newer Dossier; upgrade Dossier to restore it.")
    if settings.chroma_url:
        raise BackupError("Restore writes an embedded index: unset DOSSIER_CHROMA_URL.")
    if description.get("collection") != settings.collection:
        raise BackupError(
            f"The backup's Chroma collection is {description.get('collection')!r}; "
            f"set DOSSIER_COLLECTION to it to restore."
        )
    here, there = Layout(settings.home), Layout(source)
    if here.manifest.exists():
        raise BackupError(f"{settings.home} already holds an index; restore into an empty DOSSIER_HOME.")
    settings.home.mkdir(parents=True, exist_ok=True)
    with here.writer_lock():
        for theirs, ours in zip(there.folders, here.folders, strict=True):
            if theirs.is_dir():
                shutil.copytree(theirs, ours, dirs_exist_ok=True)
        for theirs, ours in zip(there.other_files, here.other_files, strict=True):
            if theirs.exists():
                shutil.copy2(theirs, ours)
        # The manifest last: until it exists, nothing reads the rest.
        for theirs, ours in reversed(list(zip(there.sqlite_files, here.sqlite_files, strict=True))):
            if theirs.exists():
                partial = ours.with_name(f".{ours.name}.restoring")
                partial.unlink(missing_ok=True)
                _copy_sqlite(theirs, partial)
                partial.replace(ours)
    # Opening it brings an older manifest's schema up to date (no re-embedding).
    Manifest(here.manifest).close()
    log.info("restored %s into %s", source, settings.home)
    return description
