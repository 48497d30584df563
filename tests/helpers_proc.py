"""Run `dossier` in a subprocess and wait on what it prints, with deadlines instead of sleeps."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from tests.onnx_models import seed_models

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent


def dossier_args(*args: str) -> list[str]:
    """The `dossier` command, run by this interpreter from this checkout."""
    return [sys.executable, "-c", "from bot.cli import main; main()", *args]


def dossier_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a `dossier` run on `home`, whose models folder holds the session's
    ONNX export (the default backend), so no run pays for exporting again."""
    if extra.get("DOSSIER_EMBEDDING_BACKEND", "openvino") in ("onnx", "openvino"):
        seed_models(home)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOSSIER_", "DISCORD_", "OPENAI_"))}
    env.update(
        DOSSIER_HOME=str(home),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        ANONYMIZED_TELEMETRY="False",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def wait_until(check: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Call `check` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


class Proc:
    """A subprocess whose stdout and stderr lines are collected as they arrive."""

    def __init__(self, args: Sequence[str], env: dict[str, str], cwd: Path) -> None:
        self.args = list(args)
        self.popen = subprocess.Popen(
            self.args,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [
            threading.Thread(target=self._collect, args=(self.popen.stdout, self.out), daemon=True),
            threading.Thread(target=self._collect, args=(self.popen.stderr, self.err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _collect(stream, into: list[str]) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            into.append(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        return self.popen.pid

    def lines(self, pattern: str, stream: str = "out") -> list[str]:
        return [line for line in list(getattr(self, stream)) if re.search(pattern, line)]

    def wait_for(
        self, pattern: str, *, count: int = 1, stream: str = "out", timeout: float = 60
    ) -> list[str]:
        """Wait until `count` lines of `stream` match `pattern`; fail early if the process exits."""

        def check() -> list[str]:
            found = self.lines(pattern, stream)
            if len(found) >= count:
                return found
            if self.popen.poll() is not None:
                time.sleep(0.2)  # let the readers drain the pipes
                found = self.lines(pattern, stream)
                if len(found) < count:
                    raise AssertionError(f"process exited with {self.popen.returncode}\n{self.transcript()}")
            return found if len(found) >= count else []

        try:
            return wait_until(check, timeout, f"{count} x {pattern!r} on {stream}")
        except AssertionError as err:
            raise AssertionError(f"{err}\n{self.transcript()}") from None

    def signal(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def wait(self, timeout: float = 30) -> int:
        code = self.popen.wait(timeout)
        for reader in self._readers:
            reader.join(5)
        return code

    def stop(self) -> None:
        """Make sure the process is gone (for teardown)."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)

    def transcript(self) -> str:
        return "--- stdout\n" + "\n".join(self.out[-40:]) + "\n--- stderr\n" + "\n".join(self.err[-40:])


def manifest_query(home: Path, sql: str, params: Sequence[object] = ()) -> list[tuple]:
    """Read the manifest as another process would: a fresh connection per call."""
    path = home / "index.sqlite"
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute(sql, params).fetchall()
    except sqlite3.OperationalError:  # the schema is not there yet
        return []
    finally:
        db.close()


def generation(home: Path) -> int:
    rows = manifest_query(home, "SELECT value FROM meta WHERE key = 'generation'")
    return int(rows[0][0]) if rows else 0


def drip(wfile: Any, count: int = 100, pause: float = 0.2) -> None:
    """Write one byte every `pause` seconds (never slow enough to trip a per-read timeout),
    until `count` bytes or the client hangs up."""
    try:
        for _ in range(count):
            wfile.write(b" ")
            wfile.flush()
            time.sleep(pause)
    except OSError:
        pass  # the client gave up, as it should
