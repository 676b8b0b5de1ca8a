"""Per-node counters (VLM calls, tool calls, search steps) that any code inside a node can bump.

A node opens `counting()`; code below it (VLM wrapper, tool wrapper, V* search) calls `count(...)`.
Threads started with a copied context (parallel search, time-limited tool calls) share the same
`Stats` object, so every branch's counts add up. The node returns the totals as a state update.
"""

from __future__ import annotations

import contextvars
import threading
from contextlib import contextmanager
from typing import Iterator

from lookcloser.types import Stats

COUNTERS = ("vlm_calls", "tool_calls", "search_steps")

_current: contextvars.ContextVar[Stats | None] = contextvars.ContextVar("lookcloser_stats", default=None)
_lock = threading.Lock()


def count(counter: str, amount: int = 1) -> None:
    """Add to a counter of the current node ('vlm_calls', 'tool_calls' or 'search_steps'); no-op outside one."""
    if counter not in COUNTERS:
        raise ValueError(f"unknown counter '{counter}'; counters are: {', '.join(COUNTERS)}")
    stats = _current.get()
    if stats is not None:
        with _lock:
            setattr(stats, counter, getattr(stats, counter) + amount)


@contextmanager
def counting() -> Iterator[Stats]:
    """Count everything below this point into a fresh `Stats` (seconds are left to the caller)."""
    stats = Stats()
    token = _current.set(stats)
    try:
        yield stats
    finally:
        _current.reset(token)
