"""Display names of indexed files.

A file is *identified* by where it really is (its resolved path, recorded in the manifest's
`path` column); its `source` is only the short name citations show. Two files may want the
same short name (`2023/summary.txt` and `2024/summary.txt` each ingested on its own are
both `summary.txt`), so a name already used by another file is lengthened with parent
folders until it is unique.
"""

from __future__ import annotations

from collections.abc import Container
from pathlib import Path


def unique_name(wanted: str, path: Path, taken: Container[str]) -> str:
    """`wanted` if no other file uses it, else the shortest tail of `path` that is free.

    `path` is the file as given (absolute or not); its folders supply the extra components.
    """
    if wanted not in taken:
        return wanted
    parts = Path(path).absolute().parts
    wanted_depth = len(Path(wanted).parts)
    for depth in range(wanted_depth + 1, len(parts) + 1):
        candidate = Path(*parts[-depth:]).as_posix()
        if candidate not in taken:
            return candidate
    # Every tail is taken (only possible with hand-made names): fall back on numbering.
    n = 2
    while f"{wanted} ({n})" in taken:
        n += 1
    return f"{wanted} ({n})"
