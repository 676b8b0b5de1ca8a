"""Per-node counters (VLM calls, tool calls, search steps), read off the runs langchain-core opens.

One callback handler counts them: an llm run is a VLM call (its messages' image blocks, the images sent), a
tool run a tool call, and a chain run whose
metadata names it under `SEARCH_STEP` (its own id: runs below it inherit the mark, naming their step) a
search step. A node opens `counting()`; langchain-core's configure hook
(the way `get_usage_metadata_callback` works) adds the handler to every run started below it, in threads
with a copied context too, so parallel branches and time-limited tool calls add up. The node returns the
totals as a state update.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.tracers.context import register_configure_hook

from lookcloser.core.types import Stats, is_search_step

__all__ = ["COUNTERS", "RunCounter", "counting"]

COUNTERS = ("vlm_calls", "tool_calls", "search_steps", "images_sent")


class RunCounter(BaseCallbackHandler):
    """Counts the runs it sees into `stats`; thread-safe."""

    def __init__(self) -> None:
        self.stats = Stats()
        self._lock = threading.Lock()

    def _add(self, counter: str, count: int = 1) -> None:
        with self._lock:
            setattr(self.stats, counter, getattr(self.stats, counter) + count)

    def on_chat_model_start(self, serialized: Any, messages: Any, *args: Any, **kwargs: Any) -> None:
        self._add("vlm_calls")
        self._add("images_sent", sum(1 for batch in messages or [] for message in batch
                                     if isinstance(getattr(message, "content", None), list)
                                     for block in message.content
                                     if isinstance(block, dict) and block.get("type") in ("image", "image_url")))

    def on_llm_start(self, *args: Any, **kwargs: Any) -> None:
        self._add("vlm_calls")

    def on_tool_start(self, *args: Any, **kwargs: Any) -> None:
        self._add("tool_calls")

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, metadata: dict[str, Any] | None = None,
                       **kwargs: Any) -> None:
        if is_search_step(run_id, metadata):
            self._add("search_steps")


_current: ContextVar[RunCounter | None] = ContextVar("lookcloser_run_counter", default=None)
register_configure_hook(_current, inheritable=True)


@contextmanager
def counting() -> Iterator[Stats]:
    """Count every run started below this point into a fresh `Stats` (seconds are left to the caller)."""
    counter = RunCounter()
    token = _current.set(counter)
    try:
        yield counter.stats
    finally:
        _current.reset(token)
