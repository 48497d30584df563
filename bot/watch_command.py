"""`dossier watch` for a person at a terminal: a line per batch, Ctrl-C and SIGTERM, exit codes.

The watching itself is `ingest.watch.Watcher`; this module only starts it, turns signals
into a clean stop and prints what each batch did.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from bot.printable import one_line, printable
from dossier_common.settings import Settings
from ingest.pipeline import IngestReport
from ingest.watch import Watcher, check_folders

# A shell's convention for "ended by Ctrl-C" (128 + SIGINT); 2 for a usage error.
EXIT_INTERRUPTED = 130
EXIT_USAGE = 2


def _say(text: str, *, err: bool = True) -> None:
    print(text, file=sys.stderr if err else sys.stdout, flush=True)


@contextmanager
def _stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """The first Ctrl-C or SIGTERM asks for a clean stop; a second Ctrl-C interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    asked = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        if asked.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        asked.set()
        _say(f"{signal.Signals(signum).name}: stopping after the commit in progress")
        stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_watch(paths: Sequence[Path], settings: Settings) -> int:
    """Watch `paths` until Ctrl-C or SIGTERM, printing one summary line per batch; the exit code."""
    paths = [Path(p) for p in paths]
    problem = check_folders(paths)
    if problem:
        _say(printable(f"dossier: {problem}"))
        return EXIT_USAGE
    from ingest.embedder import Embedder

    watcher: Watcher

    def show(report: IngestReport) -> None:
        for failure in watcher.new_failures:
            # File names come from whoever can write to the folder: no escape codes, one line.
            _say(f"failed: {one_line(failure.path)}: {one_line(failure.reason)}")
        _say(f"{time.strftime('%H:%M:%S')} {report.summary()}", err=False)

    watcher = Watcher(paths, settings, Embedder.from_settings(settings), on_batch=show)
    _say(printable(f"watching {', '.join(map(str, paths))} (Ctrl-C to stop)"))
    with _stop_on_signals(watcher.stop):
        try:
            watcher.run()
        except KeyboardInterrupt:
            _say("interrupted: the next run completes the unfinished batch")
            return EXIT_INTERRUPTED
    return 0


__all__ = ["run_watch"]
