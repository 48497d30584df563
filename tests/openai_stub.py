"""A tiny OpenAI-compatible chat server on 127.0.0.1 that plays back scripted replies.

Tests talk to it through the real LangChain/OpenAI client, so the HTTP, streaming and
timeout paths are the ones production uses:

    stub.enqueue("Answer [1].")      # next request gets this reply
    stub.enqueue_delay(5)            # next request waits 5 s first (for timeouts)
    stub.enqueue_error(500)          # next request fails with HTTP 500
    stub.requests                    # JSON bodies received, in order
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

log = logging.getLogger(__name__)


@dataclass
class Reply:
    text: str = ""
    status: int = 200
    delay: float = 0.0
    chunks: list[str] | None = None  # streaming pieces; default: split at word boundaries
    chunk_delay: float = 0.0  # seconds between streamed pieces (a slow model)


@dataclass
class OpenAIStub:
    host: str = "127.0.0.1"
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)  # lower-case names

    def __post_init__(self) -> None:
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting ---------------------------------------------------------------------------
    def enqueue(self, text: str, *, chunks: list[str] | None = None, chunk_delay: float = 0.0) -> None:
        """The next request gets `text` (streamed as `chunks` when given, `chunk_delay` s apart)."""
        with self._lock:
            self._queue.append(Reply(text=text, chunks=chunks, chunk_delay=chunk_delay))

    def enqueue_delay(self, seconds: float, text: str = "") -> None:
        """The next request waits `seconds` before answering `text`."""
        with self._lock:
            self._queue.append(Reply(text=text, delay=seconds))

    def enqueue_error(self, status: int = 500, message: str = "stub error") -> None:
        with self._lock:
            self._queue.append(Reply(text=message, status=status))

    def _next(self) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        # An empty queue is a test bug; fail loudly rather than invent a reply.
        return Reply(text="openai stub: no scripted reply left", status=500)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._server is not None, "stub not started"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> OpenAIStub:
        stub = self

        class Handler(_Handler):
            owner = stub

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False  # type: ignore[attr-defined]
        # A short poll interval keeps shutdown (once per test) from costing half a second.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="openai-stub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        # Wakes handlers still sleeping in a delay, so no thread outlives the test for long.
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def split_words(text: str) -> list[str]:
    return re.findall(r"\s*\S+", text) or [text]


class _Handler(BaseHTTPRequestHandler):
    owner: OpenAIStub

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("openai stub: " + format, *args)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        self.owner.requests.append(body)
        self.owner.headers.append({k.lower(): v for k, v in self.headers.items()})
        reply = self.owner._next()
        if reply.delay and self.owner._stopping.wait(reply.delay):
            return
        try:
            if reply.status != 200:
                error = {"message": reply.text, "type": "server_error", "param": None, "code": None}
                self._send_json(reply.status, {"error": error})
            elif body.get("stream"):
                self._send_stream(body, reply)
            else:
                self._send_json(200, _completion(body, reply.text))
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a timeout test); nothing left to answer.
            pass

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_stream(self, body: dict[str, Any], reply: Reply) -> None:
        # HTTP/1.0 without Content-Length: the body ends when the connection closes.
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        pieces = reply.chunks if reply.chunks is not None else split_words(reply.text)
        model = body.get("model", "stub")
        self._event(_chunk(model, {"role": "assistant", "content": ""}, None))
        for n, piece in enumerate(pieces):
            if n and reply.chunk_delay and self.owner._stopping.wait(reply.chunk_delay):
                return
            self._event(_chunk(model, {"content": piece}, None))
        self._event(_chunk(model, {}, "stop"))
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def _event(self, payload: dict[str, Any]) -> None:
        self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
        self.wfile.flush()


def _completion(body: dict[str, Any], text: str) -> dict[str, Any]:
    words = len(text.split())
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "stub"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": words, "total_tokens": 10 + words},
    }


def _chunk(model: str, delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
    }


@pytest.fixture
def openai_stub() -> Iterator[OpenAIStub]:
    """A running stub; point OPENAI_BASE_URL at `openai_stub.base_url`."""
    with OpenAIStub() as stub:
        yield stub
