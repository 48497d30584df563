"""Document scopes: a few folders or globs that name the documents a question may be answered from.

A pattern is matched against each document's source (its path as ingested, e.g.
`policy/leave.md`) and, for a file under the documents folder, against its path relative to
that folder. `policy/` (or `policy`) takes everything under that folder; a pattern with
`*`, `?` or `[...]` is a glob (`*` also crosses folders: `policy/*` takes `policy/old/a.md`);
anything else names one document.
"""

from __future__ import annotations

import contextlib
import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

_GLOB = frozenset("*?[")


def _clean(pattern: str) -> str:
    return pattern.strip().replace("\\", "/").removeprefix("./")


def matches(pattern: str, name: str) -> bool:
    """Whether one document name (a source or a relative path) falls under `pattern`."""
    pattern = _clean(pattern)
    if not pattern:
        return False
    if _GLOB & set(pattern):
        return fnmatch.fnmatchcase(name, pattern)
    folder = pattern.rstrip("/")
    return name == folder or name.startswith(folder + "/")


def names_of(source: str, path: Path | None, documents_dir: Path | None) -> list[str]:
    """The names a document answers to: its source and, under the documents folder, its path there."""
    names = [source]
    if path is not None and documents_dir is not None:
        with contextlib.suppress(ValueError, OSError):  # not under the documents folder
            names.append(path.resolve().relative_to(documents_dir.resolve()).as_posix())
    return names


def in_scope(
    patterns: Sequence[str], paths: Mapping[str, Path | None], documents_dir: Path | None = None
) -> list[str]:
    """The sources (keys of `paths`: source -> file on disk) that any pattern takes, sorted."""
    return sorted(
        source
        for source, path in paths.items()
        if any(matches(p, name) for p in patterns for name in names_of(source, path, documents_dir))
    )


def describe(patterns: Iterable[str]) -> str:
    """The scope in one line, for a user: `policy/*, faq/`."""
    return ", ".join(_clean(p) for p in patterns if _clean(p)) or "(nothing)"
