"""ingest/ is core: importing its pipeline and watcher loads no front end and no network code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHECK = """
import sys
import ingest.pipeline, ingest.watch
loaded = [m for m in sys.modules if m.split(".")[0] in ("bot", "rich", "typer", "httpx", "httpcore")]
print(sorted(loaded + [m for m in ("ingest.fetch",) if m in sys.modules]))
"""


def test_pipeline_and_watcher_load_neither_front_end_nor_fetcher() -> None:
    # From the repository, so `ingest` is this checkout (tests run in a temp folder).
    out = subprocess.run([sys.executable, "-c", CHECK], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
