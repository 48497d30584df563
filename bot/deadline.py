"""Run a blocking call under a wall-clock deadline.

HTTP clients time out each read, not the whole exchange: a server that sends a byte a
second never trips them. A call that must end in time therefore runs in a worker thread
and the caller stops waiting when the deadline passes. Python cannot kill the thread; it
is a daemon (it never holds the process open) and `work` receives an `expired()` check so
that a loop in it (a token stream) can stop as soon as it next gets control.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class DeadlineExceeded(TimeoutError):
    """The call did not finish within its deadline."""


def run_with_deadline(work: Callable[[Callable[[], bool]], T], seconds: float | None) -> T:
    """`work(expired)`, or DeadlineExceeded once `seconds` have passed (None: no deadline).

    Exceptions raised by `work` reach the caller unchanged.
    """
    if seconds is None:
        return work(lambda: False)
    given_up = threading.Event()
    done = threading.Event()
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = work(given_up.is_set)
        except BaseException as err:  # handed to the caller's thread below
            outcome["error"] = err
        finally:
            done.set()

    threading.Thread(target=target, name="deadline-call", daemon=True).start()
    if not done.wait(seconds):
        given_up.set()
        raise DeadlineExceeded(f"no result within {seconds:g} s")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
