"""The question's deadline, in one place: set once, passed down as a context variable, checked by
whoever waits.

`time_limit(seconds)` bounds the code below it; an outer, earlier deadline is kept. It is a context
variable, so LangGraph's node threads and the search worker (run in a copy of the node's context) see
it. `time_left()` is what remains: VLM backends shorten each call's timeout to it, the search node
caps max_search_seconds with it, and the V* search checks it between steps, so a search that ran out
of time stops by itself instead of running on in a worker nobody waits for. A call that cannot be
interrupted (one model forward, one OCR read) finishes first; docs/architecture.md says so.
Imports nothing of the project: tools use it too.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

__all__ = ["cancellable", "expired", "time_left", "time_limit", "time_limit_seconds"]

#: (deadline on time.monotonic(), the limit in seconds) of the running question, or None.
_DEADLINE: ContextVar[tuple[float, float] | None] = ContextVar("lookcloser_deadline", default=None)
#: Set when whoever asked the question is gone (an MCP client that disconnected): its time is up at once.
_CANCELLED: ContextVar[threading.Event | None] = ContextVar("lookcloser_cancelled", default=None)


@contextmanager
def cancellable(event: threading.Event) -> Iterator[None]:
    """Below this, `event.set()` (from any thread) ends the question's time at once: the code below stops where it
    checks the time (before each VLM call, between search steps), as when a time limit runs out, so an abandoned
    question sends no more VLM calls."""
    token = _CANCELLED.set(event)
    try:
        yield
    finally:
        _CANCELLED.reset(token)


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Bound the code below to `seconds` (None: no limit). An outer, earlier deadline is kept."""
    if seconds is None:
        yield
        return
    deadline = (time.monotonic() + float(seconds), float(seconds))
    outer = _DEADLINE.get()
    token = _DEADLINE.set(deadline if outer is None or deadline[0] < outer[0] else outer)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def time_left() -> float | None:
    """Seconds left before the question's deadline (may be <= 0; 0 once it was cancelled), or None without a limit."""
    cancelled = _CANCELLED.get()
    if cancelled is not None and cancelled.is_set():
        return 0.0
    deadline = _DEADLINE.get()
    return None if deadline is None else deadline[0] - time.monotonic()


def time_limit_seconds() -> float | None:
    """The running question's limit in seconds (for messages; 0 when it was cancelled without one), or None."""
    deadline = _DEADLINE.get()
    if deadline is None:
        cancelled = _CANCELLED.get()
        return 0.0 if cancelled is not None and cancelled.is_set() else None
    return deadline[1]


def expired() -> bool:
    """True once the running question's deadline has passed (never without one)."""
    left = time_left()
    return left is not None and left <= 0
