"""The layers: dossier_common at the bottom, index/ above it, ingest/ and bot/ on top.

    bot ──> index <── ingest        (bot -> ingest only to drive an ingest)
      \\       |       /
       └─> dossier_common <─┘

Read from the source (every import, including those inside functions), so a new arrow
fails here before anyone notices it at run time; and, at run time, importing the ingest
pipeline loads no front end and no network code.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("dossier_common", "index", "ingest", "bot")
# The packages each may import (besides itself and third-party code).
ALLOWED = {
    "dossier_common": set(),
    "index": {"dossier_common"},
    "ingest": {"dossier_common", "index"},
    "bot": {"dossier_common", "index", "ingest"},
}
# The bot modules that drive an ingest (the engine, and the front ends that start one, watch
# folders, take uploads or back up): the only ones in bot/ that may import ingest/.
BOT_DRIVES_INGEST = {
    "bot.engine",
    "bot.cli",
    "bot.watch_command",
    "bot.discord_bot",
    "bot.discord_admin",
    "bot.evaluate",  # `dossier eval` matches answers the way the loaders normalise text
    "bot.thread_documents",  # a saved Discord thread carries its link in a signed sidecar, as fetched pages do
}


def imports(source: str) -> list[tuple[str, list[str]]]:
    """(module, names imported from it) for every absolute import in `source`."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def violations(module: str, source: str) -> list[str]:
    """What `module` (e.g. "bot.engine") imports against the layering rules above."""
    package = module.split(".")[0]
    problems = []
    for target, names in imports(source):
        top = target.split(".")[0]
        if top not in PACKAGES or top == package:
            continue
        if top not in ALLOWED[package]:
            problems.append(f"{module} imports {target}")
        elif package == "bot" and top == "ingest" and module not in BOT_DRIVES_INGEST:
            problems.append(f"{module} imports {target} (only modules driving an ingest may)")
        problems.extend(
            f"{module} imports the private name {target}.{name}" for name in names if name.startswith("_")
        )
    return problems


def modules(*folders: str) -> dict[str, str]:
    out = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            out[name] = path.read_text(encoding="utf-8")
    return out


def test_packages_import_only_the_layers_below_them() -> None:
    found = modules(*PACKAGES)
    assert {"index.manifest", "index.layout", "index.keywords", "bot.engine"} <= set(found)
    problems = [p for name, source in found.items() for p in violations(name, source)]
    assert problems == []


def test_bench_imports_no_private_name_of_the_project() -> None:
    problems = []
    for name, source in modules("bench").items():
        for target, names in imports(source):
            if target.split(".")[0] in PACKAGES:
                problems += [f"{name} imports {target}.{n}" for n in names if n.startswith("_")]
    assert problems == []


def test_the_check_catches_each_kind_of_wrong_arrow() -> None:
    assert violations("index.store", "from ingest.urls import display_url") == [
        "index.store imports ingest.urls"
    ]
    assert violations("index.keywords", "def f():\n    import bot.types\n") == [
        "index.keywords imports bot.types"
    ]
    assert violations("ingest.pipeline", "from bot.types import Passage") == [
        "ingest.pipeline imports bot.types"
    ]
    assert violations("dossier_common.errors", "import index.layout") == [
        "dossier_common.errors imports index.layout"
    ]
    assert violations("bot.retrieval", "from ingest.pipeline import ingest_paths") == [
        "bot.retrieval imports ingest.pipeline (only modules driving an ingest may)"
    ]
    assert violations("bot.engine", "from index.keywords import _stemmer") == [
        "bot.engine imports the private name index.keywords._stemmer"
    ]
    assert violations("bot.engine", "from ingest.pipeline import ingest_paths\nimport numpy") == []
    assert violations("ingest.pipeline", "from index.manifest import Manifest") == []


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


INDEX_ALONE = """
import pkgutil, importlib, sys
import index
for info in pkgutil.iter_modules(index.__path__):
    importlib.import_module(f"index.{info.name}")
print(sorted(m for m in sys.modules if m.split(".")[0] in ("bot", "ingest")))
"""


def test_the_index_loads_neither_bot_nor_ingest() -> None:
    out = subprocess.run(
        [sys.executable, "-c", INDEX_ALONE], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
