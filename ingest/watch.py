"""Keep the index in step with folders: new, changed, renamed and deleted files, within seconds.

A batch is not the list of changed paths: every batch re-runs the incremental pipeline over
the watched folders. Unchanged files cost a hash, renames and deletes fall out of the rescan,
and a file that failed to load is simply tried again by the next batch. File events only
decide *when* to run; the pipeline decides *what* to do, so a missed or duplicated event can
never leave the index out of step for longer than the next batch.

The file watcher starts before the first ingest, so files that land while that ingest runs
are caught. Stopping (`stop()`; `dossier watch` calls it on Ctrl-C or SIGTERM) takes effect
after the group being committed: the pipeline commits a file's chunks atomically, so a stop,
or even a kill, leaves whole files and the next run picks up the rest.

Nothing here prints or handles signals: events reach the caller through `on_batch`, the
watcher's attributes and the log. The `dossier watch` command is `bot.watch_command`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dossier_common.errors import ConfigError, DossierError, LockedError, ModelMismatchError
from dossier_common.settings import Settings
from ingest.loaders import SUPPORTED_SUFFIXES
from ingest.opening import DocumentEmbedder
from ingest.pipeline import Failure, IngestReport, ingest_paths

log = logging.getLogger(__name__)

# How often watchfiles looks for new events and for a stop request.
_STEP_MS = 50
# A burst that never goes quiet is still ingested after this long (or 10 quiet times).
_MIN_MAX_WAIT_S = 10.0
_LOCK_RETRY_SECONDS = 2.0
_MISSING_POLL_SECONDS = 2.0
_ERROR_RETRY_SECONDS = (5.0, 10.0, 20.0, 40.0, 60.0)

BatchCallback = Callable[[IngestReport], None]


class _Stopped(Exception):
    """Raised between the pipeline's commits to end a batch early when a stop is requested."""


class WatchFilter:
    """Which file events can change the index: supported, visible files, and folders.

    Hidden names count relative to the watched folder, because the folder itself may sit
    under a hidden one (DOSSIER_HOME defaults to `.dossier`). Events under DOSSIER_HOME are
    ignored: the index's own writes must not wake the watcher.
    """

    def __init__(self, roots: Sequence[Path], ignore: Sequence[Path] = ()) -> None:
        # Longest first, so a nested watched folder is matched before its parent.
        self.roots = sorted({Path(r).resolve() for r in roots}, key=lambda p: len(p.parts), reverse=True)
        self.ignore = [Path(p).resolve() for p in ignore]

    def __call__(self, change: Any, path: str) -> bool:
        p = Path(path)
        if any(p == i or i in p.parents for i in self.ignore):
            return False
        root = next((r for r in self.roots if p == r or r in p.parents), None)
        parts = p.relative_to(root).parts if root is not None else (p.name,)
        if any(part.startswith((".", "~$")) for part in parts):
            return False
        if p.suffix.lower() in SUPPORTED_SUFFIXES:
            return True
        # A folder moved in, out or deleted changes which files exist; only a folder that still
        # exists can be recognised as one, so an extensionless vanished path counts too.
        import watchfiles

        return p.is_dir() or (change == watchfiles.Change.deleted and not p.suffix)


class Watcher:
    """Watches folders and re-runs the incremental ingest after each burst of changes.

    `run()` blocks until `stop()` (or a fatal error: the embedding model is missing or does
    not match the index). `on_batch` is called from the watching thread after every batch,
    the first one included.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        settings: Settings,
        embedder: DocumentEmbedder,
        *,
        on_batch: BatchCallback | None = None,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.settings = settings
        self.embedder = embedder
        self.on_batch = on_batch
        self.stop_event = threading.Event()
        self.ready = threading.Event()  # set once the folders have been ingested a first time
        self.batches = 0
        self.last_report: IngestReport | None = None
        # Failures of the last batch that the batch before did not have (to report each once).
        self.new_failures: tuple[Failure, ...] = ()
        self._dirty = True
        self._retry_at = 0.0
        self._errors = 0
        self._waiting_for_lock = False

    @property
    def quiet_ms(self) -> int:
        """How long the folders must be quiet before a batch starts."""
        return max(50, self.settings.watch_debounce_ms)

    @property
    def max_wait_s(self) -> float:
        """Changes that keep coming are ingested after this long all the same."""
        return max(10 * self.quiet_ms / 1000, _MIN_MAX_WAIT_S)

    def stop(self) -> None:
        """Ask `run()` to return after the commit in progress (safe from any thread or a signal handler)."""
        self.stop_event.set()

    def run(self) -> None:
        missing_logged = False
        while not self.stop_event.is_set():
            missing = [p for p in self.paths if not p.is_dir()]
            if not missing:
                missing_logged = False
                self._watch()
                continue
            # An unmounted drive or a folder moved away: keep its documents rather than drop
            # them from the index, and start again when it is back.
            if not missing_logged:
                log.warning(
                    "watched folder %s is gone; its documents stay in the index until it is back",
                    ", ".join(map(str, missing)),
                )
                missing_logged = True
            self.stop_event.wait(_MISSING_POLL_SECONDS)
        log.info("watcher stopped")

    def _watch(self) -> None:
        """Watch until a stop request or a watched folder disappears, ingesting after each burst."""
        import watchfiles

        roots = [p.resolve() for p in self.paths]
        log.info("watching %s", ", ".join(map(str, roots)))
        quiet = self.quiet_ms / 1000
        # watchfiles reports each change within a few steps; the quiet time is kept here, so a
        # batch starts `quiet` after the last change rather than up to twice that.
        changes_seen = watchfiles.watch(
            *roots,
            watch_filter=WatchFilter(roots, ignore=[self.settings.home]),
            step=_STEP_MS,
            debounce=self.quiet_ms,
            rust_timeout=self.quiet_ms,
            yield_on_timeout=True,
            stop_event=self.stop_event,
        )
        first_change = last_change = 0.0
        n_changes = 0
        self._dirty = True  # the folders may have changed while they were not watched
        # The first (empty) yield arrives once the OS watches are in place: ingesting only then
        # means a file landing during the first ingest is still seen.
        for changes in changes_seen:
            if self.stop_event.is_set() or not all(r.is_dir() for r in roots):
                return
            now = time.monotonic()
            if changes:
                log.debug("changes: %s", sorted(path for _, path in changes))
                self._dirty = True
                n_changes += len(changes)
                first_change = first_change or now
                last_change = now
            if not self._dirty or now < self._retry_at:
                continue
            settled = now - last_change >= quiet or now - first_change >= self.max_wait_s
            if settled or not n_changes:  # a retry, or the first ingest
                first_change = last_change = 0.0
                self.run_batch(n_changes)
                n_changes = 0

    def run_batch(self, n_changes: int = 0) -> IngestReport | None:
        """Ingest the watched folders once; None when the batch did not complete."""
        self._dirty = False
        if n_changes:
            log.info("ingesting after %d file changes", n_changes)
        else:
            log.info("ingesting %s", ", ".join(map(str, self.paths)))
        try:
            report = ingest_paths(self.paths, self.settings, self.embedder, on_group=self._check_stop)
        except _Stopped:
            log.info("stopping after a commit; files not yet ingested are picked up at the next start")
            self._dirty = True
            return None
        except LockedError as err:
            # Another writer (e.g. a `dossier ingest`); our changes wait, and the rescan catches up.
            if not self._waiting_for_lock:
                log.warning("%s Waiting for it.", err)
                self._waiting_for_lock = True
            self._retry_later(_LOCK_RETRY_SECONDS)
            return None
        except (ConfigError, ModelMismatchError):
            raise  # retrying cannot help: the settings must change
        except DossierError as err:
            self._errors += 1
            log.error("ingest failed: %s", err)
            self._retry_later(self._backoff())
            return None
        except Exception:
            self._errors += 1
            log.exception("ingest failed unexpectedly; retrying")
            self._retry_later(self._backoff())
            return None
        if self._waiting_for_lock:
            log.info("writer lock acquired")
        self._waiting_for_lock = False
        self._errors = 0
        before = {(f.path, f.reason) for f in self.last_report.failed} if self.last_report else set()
        self.new_failures = tuple(f for f in report.failed if (f.path, f.reason) not in before)
        for failure in self.new_failures:
            log.warning("failed: %s: %s", failure.path, failure.reason)
        self.last_report = report
        self.batches += 1
        log.info("batch %d: %s", self.batches, report.summary())
        self.ready.set()
        if self.on_batch is not None:
            try:
                self.on_batch(report)
            except Exception:
                log.exception("on_batch callback failed")
        return report

    def _check_stop(self, _embedded: int) -> None:
        if self.stop_event.is_set():
            raise _Stopped

    def _retry_later(self, seconds: float) -> None:
        self._dirty = True
        self._retry_at = time.monotonic() + seconds

    def _backoff(self) -> float:
        return _ERROR_RETRY_SECONDS[min(self._errors, len(_ERROR_RETRY_SECONDS)) - 1]


# -- checks shared by `dossier watch` and the background watcher ---------------------------------


def check_folders(paths: Sequence[Path]) -> str | None:
    """A message for the user when `paths` are not all existing folders, else None."""
    if not paths:
        return "name at least one folder to watch"
    for path in paths:
        if not path.exists():
            return f"no such folder: {path}"
        if not path.is_dir():
            return f"{path} is not a folder; `dossier watch` takes folders (use `dossier ingest FILE` for one file)"
    return None


# -- in another process's background ----------------------------------------------------------


class WatcherHandle:
    """A watcher running in a daemon thread; see `start_background_watcher`."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="dossier-watch", daemon=True)

    def _run(self) -> None:
        try:
            self.watcher.run()
        except BaseException as err:
            self.error = err
            log.error("the folder watcher stopped: %s", err, exc_info=not isinstance(err, DossierError))

    @property
    def ready(self) -> threading.Event:
        """Set once the first ingest of the watched folders has completed."""
        return self.watcher.ready

    def is_alive(self) -> bool:
        return self.thread.is_alive()

    def stop(self, timeout: float | None = 60.0) -> bool:
        """Stop after the commit in progress and wait for the thread; True when it has ended."""
        self.watcher.stop()
        if self.thread.is_alive():
            self.thread.join(timeout)
        return not self.thread.is_alive()


def start_background_watcher(
    paths: Sequence[Path],
    settings: Settings,
    embedder: DocumentEmbedder,
    on_batch: BatchCallback | None = None,
) -> WatcherHandle:
    """Run a `Watcher` over `paths` in a daemon thread and return its handle (call `.stop()`).

    Raises ConfigError at once when a path is not an existing folder. `on_batch(report)` runs
    in the watcher's thread. Engines see each batch at their next question.
    """
    paths = [Path(p) for p in paths]
    problem = check_folders(paths)
    if problem:
        raise ConfigError(f"Cannot watch: {problem}")
    handle = WatcherHandle(Watcher(paths, settings, embedder, on_batch=on_batch))
    handle.thread.start()
    return handle


__all__ = [
    "WatchFilter",
    "Watcher",
    "WatcherHandle",
    "check_folders",
    "start_background_watcher",
]
