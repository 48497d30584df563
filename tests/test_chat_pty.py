"""The interactive chat in a real pseudo-terminal: prompt, answer, Ctrl-C, Ctrl-D."""

from __future__ import annotations

import os
import re
import select
import signal
import struct
import sys
import time
from pathlib import Path

import pytest

from dossier_common.settings import Settings

pty = pytest.importorskip("pty")
fcntl = pytest.importorskip("fcntl")
termios = pytest.importorskip("termios")

ROOT = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[@-_]|\r")
PROMPT = "dossier> "


class Terminal:
    """A child process on a pty (its controlling terminal, so Ctrl-C sends SIGINT)."""

    def __init__(
        self, argv: list[str], env: dict[str, str], cwd: Path, rows: int = 40, cols: int = 120
    ) -> None:
        self.started = time.monotonic()
        pid, fd = pty.fork()
        if pid == 0:  # the child: nothing but exec
            try:
                os.chdir(cwd)
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.raw = b""
        self.seen = 0  # text before this offset has been matched already
        self.status: int | None = None

    @property
    def text(self) -> str:
        return ANSI.sub("", self.raw.decode("utf-8", "replace"))

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            return False
        self.raw += data
        return bool(data)

    def expect(self, pattern: str, timeout: float = 120) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            match = re.compile(pattern).search(self.text, self.seen)
            if match:
                self.seen = match.end()
                return match
            if time.monotonic() > deadline or not self._read(0.1):
                tail = self.text[self.seen :][-2000:]
                raise AssertionError(f"no {pattern!r} in the terminal; after the last match:\n{tail}")

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def wait(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._read(0.05)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
        raise AssertionError(f"the chat did not exit; its screen:\n{self.text[-2000:]}")

    def close(self) -> None:
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        os.close(self.fd)


def chat_terminal(home: Path) -> Terminal:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(home)),
        "LANG": "C.UTF-8",
        "TERM": "xterm-256color",
        "DOSSIER_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "False",
        "PROMPT_TOOLKIT_NO_CPR": "1",  # no cursor-position query for the test to answer
    }
    argv = [sys.executable, "-c", "from bot.cli import main; main()", "chat"]
    return Terminal(argv, env, ROOT)


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty")
def test_interactive_chat_in_a_terminal(report_index: Settings, tmp_path: Path) -> None:
    term = chat_terminal(report_index.home)
    try:
        term.expect(re.escape(PROMPT), timeout=60)
        term.send("Who founded Safeguard Defenders?\r")
        term.expect(r"Peter Dahlin, founder and director")
        term.expect(r"Sources\s*\n\s*\[1\] overseas-police-stations-canada\.txt · ")
        term.expect(re.escape(PROMPT))

        term.send("/open 1\r")
        term.expect(r"Spain-based Safeguard Defenders")  # context before the passage
        term.expect(re.escape(PROMPT))

        # Ctrl-C while an answer is being computed cancels it; the session carries on.
        term.send("How many overseas police stations were identified?\r")
        term.expect(r"Searching the documents")
        term.send("\x03")
        cancelled = term.expect(r"cancelled").end()
        term.expect(re.escape(PROMPT))

        # Ctrl-C at the prompt drops the line and prompts again.
        term.send("half a questi\x03")
        term.expect(re.escape(PROMPT))
        term.send("/help\r")
        term.expect(r"/open N\s+passage N of the last answer")
        term.expect(re.escape(PROMPT))

        term.send("\x04")  # Ctrl-D
        assert term.wait() == 0
    finally:
        term.close()
    assert "\x1b[" in term.raw.decode("utf-8", "replace")  # colour on a terminal
    assert "Searching the documents" not in term.text[cancelled:]  # the spinner went with the answer
    history = (report_index.home / "chat_history").read_text(encoding="utf-8")
    assert "+Who founded Safeguard Defenders?" in history
