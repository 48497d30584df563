"""The ingest progress bar of the CLI: a rich bar on stderr, only when stderr is a terminal.

The pipeline only reports files as it reaches them (`ingest.pipeline.Progress`); drawing
them is the front end's business, so piped or logged output never carries a bar.
"""

from __future__ import annotations

import sys
from typing import Any


class ProgressBar:
    """`ingest.pipeline.Progress` drawn as a transient rich bar; a no-op off a terminal or for
    a single file. `enabled=None` means "when stderr is a terminal"."""

    def __init__(self, enabled: bool | None = None) -> None:
        self._enabled = enabled
        self._bar: Any = None
        self._task: Any = None

    def start(self, total: int) -> None:
        enabled = sys.stderr.isatty() if self._enabled is None else self._enabled
        if not enabled or total <= 1:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("ingesting"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.description}"),
            console=Console(stderr=True),
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task("", total=total)

    def advance(self, name: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=1, description=name[:40])

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


__all__ = ["ProgressBar"]
