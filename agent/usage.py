"""Per-run counters (VLM calls, tool calls, search steps) that any code inside a run can bump.

The agent opens a `Usage` for each run; LangGraph copies the context into the threads running
parallel branches and the counter object is shared, so counts from every branch add up.
"""

from __future__ import annotations

import contextvars
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator


@dataclass
class Usage:
    vlm_calls: int = 0
    tool_calls: int = 0
    search_steps: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, counter: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, counter, getattr(self, counter) + amount)


_current: contextvars.ContextVar[Usage | None] = contextvars.ContextVar("lookcloser_usage", default=None)


def count(counter: str, amount: int = 1) -> None:
    """Add to a counter of the current run ('vlm_calls', 'tool_calls' or 'search_steps'); no-op outside a run."""
    if counter not in ("vlm_calls", "tool_calls", "search_steps"):
        raise ValueError(f"unknown usage counter '{counter}'")
    usage = _current.get()
    if usage is not None:
        usage.add(counter, amount)


@contextmanager
def track_usage() -> Iterator[Usage]:
    usage = Usage()
    token = _current.set(usage)
    try:
        yield usage
    finally:
        _current.reset(token)
