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

from ingest.errors import DossierError
from ingest.manifest import SCHEMA_VERSION, Manifest
from ingest.pipeline import manifest_path, writer_lock
from ingest.settings import Settings

log = logging.getLogger(__name__)

DESCRIPTION = "backup.json"
FORMAT = 1
# How long a backup waits for a running ingest to finish before giving up.
LOCK_WAIT = 600.0
_SQLITE_FILES = ("index.sqlite", "feedback.sqlite")
_FOLDERS = ("chroma", "keyword")
_OTHER_FILES = ("fetch.key",)


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
    if not manifest_path(settings).exists():
        raise BackupError(f"There is no index to back up in {settings.home}.")
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty; give a new folder for the backup.")
    target.mkdir(parents=True, exist_ok=True)
    with writer_lock(settings, lock_wait):
        manifest = Manifest(manifest_path(settings))
        try:
            stats = manifest.stats()
            generation = manifest.generation()
        finally:
            manifest.close()
        for name in _SQLITE_FILES:
            if (settings.home / name).exists():
                _copy_sqlite(settings.home / name, target / name)
        for name in _FOLDERS:
            if (settings.home / name).is_dir():
                # Chroma's own SQLite file goes through the backup API like ours: a reader's
                # Chroma client may checkpoint its WAL while we copy.
                shutil.copytree(
                    settings.home / name, target / name, ignore=shutil.ignore_patterns("chroma.sqlite3*")
                )
        chroma_db = settings.home / "chroma" / "chroma.sqlite3"
        if chroma_db.exists():
            _copy_sqlite(chroma_db, target / "chroma" / "chroma.sqlite3")
        for name in _OTHER_FILES:
            if (settings.home / name).exists():
                shutil.copy2(settings.home / name, target / name)
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
    if manifest_path(settings).exists():
        raise BackupError(f"{settings.home} already holds an index; restore into an empty DOSSIER_HOME.")
    settings.home.mkdir(parents=True, exist_ok=True)
    with writer_lock(settings):
        for name in _FOLDERS:
            if (source / name).is_dir():
                shutil.copytree(source / name, settings.home / name, dirs_exist_ok=True)
        for name in _OTHER_FILES:
            if (source / name).exists():
                shutil.copy2(source / name, settings.home / name)
        # The manifest last: until it exists, nothing reads the rest.
        for name in reversed(_SQLITE_FILES):
            if (source / name).exists():
                partial = settings.home / f".{name}.restoring"
                partial.unlink(missing_ok=True)
                _copy_sqlite(source / name, partial)
                partial.replace(settings.home / name)
    # Opening it brings an older manifest's schema up to date (no re-embedding).
    Manifest(manifest_path(settings)).close()
    log.info("restored %s into %s", source, settings.home)
    return description
