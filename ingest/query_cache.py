"""The last query vectors an embedder computed: a question asked again (a retry, a follow-up
rephrased back, the Discord bot's warm-up) costs no model call."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable


class QueryCache:
    """At most `size` query vectors, the least recently used dropped first; thread-safe."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._vectors: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str, compute: Callable[[str], list[float]]) -> list[float]:
        """The cached vector of `text`, or `compute(text)` (outside the lock), then cached."""
        with self._lock:
            hit = self._vectors.get(text)
            if hit is not None:
                self._vectors.move_to_end(text)
                return hit
        vector = compute(text)
        with self._lock:
            self._vectors[text] = vector
            if len(self._vectors) > self.size:
                self._vectors.popitem(last=False)
        return vector

    def clear(self) -> None:
        with self._lock:
            self._vectors.clear()
