"""Which files on disk are documents to load: folders walked (no links out of them), the rest
passed over with a reason; and the hash that tells an unchanged file."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SUPPORTED_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"})


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


def file_hash(path: Path) -> str:
    """sha256 hex digest of the file's bytes, read in blocks so large files stay cheap."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bytes_if_unchanged(path: Path, content_hash: str) -> bytes | None:
    """The file's bytes when it is still the one indexed (its SHA-256 is `content_hash`); None
    when it is gone, unreadable or changed since."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    return data if hashlib.sha256(data).hexdigest() == content_hash else None


def _skip_reason(path: Path) -> str | None:
    name = path.name
    if name.startswith("."):
        return "hidden file"
    # Office writes "~$name.docx" lock files next to open documents; they are not documents.
    if name.startswith("~$"):
        return "temporary office file"
    suffix = path.suffix.lower()
    if not suffix:
        return "unsupported type (no extension)"
    if suffix not in SUPPORTED_SUFFIXES:
        return f"unsupported type {suffix}"
    if not path.exists():
        return "broken symbolic link" if path.is_symlink() else "does not exist"
    if not path.is_file():
        return "not a regular file"
    return None


def _outside(file: Path, root: Path) -> str | None:
    """Why a walked file that is a link leading outside the folder is not followed."""
    if not file.is_symlink():
        return None
    target = file.resolve()
    if target.is_relative_to(root.resolve()):
        return None
    # e.g. notes.txt -> /etc/passwd or ../app/.env dropped into a watched folder.
    return "symbolic link to a file outside the folder not followed"


def _os_skip_reason(err: OSError) -> str:
    if isinstance(err, PermissionError):
        return "permission denied"
    return f"unreadable ({err.strerror or err})"


def _walk(root: Path, found: list[tuple[Path, Path]], skipped: list[Skipped]) -> None:
    def on_error(err: OSError) -> None:
        reason = "permission denied" if isinstance(err, PermissionError) else f"unreadable ({err.strerror})"
        skipped.append(Skipped(Path(err.filename or root), reason))

    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=False):
        here = Path(dirpath)
        kept = []
        for name in sorted(dirnames):
            sub = here / name
            try:
                linked = sub.is_symlink()
            except OSError as err:  # e.g. a path longer than the system allows
                skipped.append(Skipped(sub, _os_skip_reason(err)))
                continue
            if name.startswith("."):
                skipped.append(Skipped(sub, "hidden directory"))
            elif linked:
                # Following links could loop forever or pull in files from far outside the root.
                skipped.append(Skipped(sub, "symlinked directory not followed"))
            else:
                kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            file = here / name
            if name.endswith(".url") and name[: -len(".url")] in filenames:
                continue  # the sidecar recording where a fetched page came from (ingest.fetch)
            try:
                reason = _skip_reason(file) or _outside(file, root)
            except OSError as err:
                reason = _os_skip_reason(err)
            if reason is None:
                found.append((file, root))
            else:
                skipped.append(Skipped(file, reason))


def discover(paths: Sequence[Path]) -> tuple[list[tuple[Path, Path]], list[Skipped]]:
    """Expand files and folders into `(file, root)` pairs to load, plus what was passed over and why.

    `root` is the folder a file's `source` name is relative to: the folder argument itself,
    or the file's parent for a file argument.
    """
    found: list[tuple[Path, Path]] = []
    skipped: list[Skipped] = []
    for raw in paths:
        path = Path(raw)
        try:
            if path.is_dir():
                _walk(path, found, skipped)
            elif path.exists() or path.is_symlink():
                # Named files get the same checks as walked ones: a watcher passes single paths,
                # and editor lock files such as ".#notes.md" must still be ignored.
                reason = _skip_reason(path)
                if reason is None:
                    found.append((path, path.parent))
                else:
                    skipped.append(Skipped(path, reason))
            else:
                skipped.append(Skipped(path, "does not exist"))
        except OSError as err:
            skipped.append(Skipped(path, _os_skip_reason(err)))

    unique: list[tuple[Path, Path]] = []
    seen: set[Path] = set()
    for file, root in found:
        try:
            key = file.resolve()
        except OSError as err:
            skipped.append(Skipped(file, _os_skip_reason(err)))
            continue
        if key not in seen:
            seen.add(key)
            unique.append((file, root))
    unique.sort(key=lambda pair: pair[0])
    skipped.sort(key=lambda item: item.path)
    return unique, skipped
