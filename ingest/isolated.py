"""Ingest in a child process with a memory limit and a deadline.

The Discord bot ingests uploads it cannot vet. Budgets (ingest.loaders.Budget) stop the
crafted files we know of, but a parser bug could still eat all memory or loop; in the bot's
own process that would take the bot down with it. In a child whose data segment is capped
(RLIMIT_DATA: Python then raises MemoryError, and the file fails with a reason) and which is
killed at a deadline, the worst case is one failed ingest. What the child committed before
it stopped stays: the pipeline is crash-safe.

Run as `python -m ingest.isolated MEMORY_MB LOCK_WAIT --full|-- PATH...` with the settings
as JSON on stdin; it prints the report as JSON on stdout.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from dossier_common.errors import DossierError, LockedError
from dossier_common.settings import Settings
from ingest.pipeline import IngestReport

log = logging.getLogger(__name__)

# What the child must not inherit: secrets it has no use for.
_PRIVATE_FIELDS = {"discord_token"}


def _limit_memory(megabytes: int) -> None:
    import resource

    limit = megabytes * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def ingest_in_child(
    paths: Sequence[Path], settings: Settings, *, lock_wait: float = 0, full: bool = False
) -> IngestReport:
    """`ingest_paths` in a bounded child process; raises DossierError with a one-line reason
    when the child runs out of memory or time, or fails."""
    memory_mb = settings.ingest_memory_mb
    config = settings.model_dump_json(exclude=_PRIVATE_FIELDS)
    args = [
        sys.executable,
        "-m",
        "ingest.isolated",
        str(memory_mb),
        str(lock_wait),
        "--full" if full else "--",
        *map(str, paths),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "DOSSIER_"))}
    # The child imports this checkout's code, wherever the bot was started from.
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    try:
        done = subprocess.run(
            args,
            input=config,
            capture_output=True,
            text=True,
            env=env,
            timeout=settings.ingest_timeout + lock_wait,
        )
    except subprocess.TimeoutExpired:
        raise DossierError(
            f"Ingest stopped after {settings.ingest_timeout:g} s (DOSSIER_INGEST_TIMEOUT); "
            "files committed before that stay in the index."
        ) from None
    if done.returncode == 0 and done.stdout.strip():
        return IngestReport.from_dict(json.loads(done.stdout.strip().splitlines()[-1]))
    last = (done.stderr.strip().splitlines() or [""])[-1]
    log.warning("ingest child exited with %s: %s", done.returncode, done.stderr[-2000:])
    if done.returncode == LockedError.exit_code and last:
        raise LockedError(last)
    if "MemoryError" in done.stderr or done.returncode in (-9, 137):
        raise DossierError(
            f"Ingest ran out of memory (DOSSIER_INGEST_MEMORY_MB={memory_mb}); "
            "files committed before that stay in the index."
        )
    raise DossierError(f"Ingest failed: {last or f'exit code {done.returncode}'}")


def _main(argv: Sequence[str]) -> int:
    from ingest.embedder import Embedder
    from ingest.pipeline import ingest_paths

    memory_mb, lock_wait, mode, *paths = argv
    # Set here rather than in a preexec_fn, which is unsafe in a parent that runs threads.
    if int(memory_mb):
        _limit_memory(int(memory_mb))
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    settings = Settings(_env_file=None, **json.loads(sys.stdin.read()))
    try:
        report = ingest_paths(
            [Path(p) for p in paths],
            settings,
            Embedder.from_settings(settings),
            full=mode == "--full",
            lock_wait=float(lock_wait),
        )
    except DossierError as err:
        print(str(err), file=sys.stderr)
        return err.exit_code
    print(json.dumps(report.to_dict(), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
