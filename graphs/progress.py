"""Live progress: every V* search step and every finding as a LangGraph custom stream event.

A search takes 5-60 s; a client should see it move. The search node opens `step_events()`: a callback handler,
added by langchain-core's configure hook to every run started below the node (worker threads too, as the
counters are), turns each finished `vstar.step` run into one event on LangGraph's custom stream
(`graph.stream(..., stream_mode="custom")`, the SDK's `stream_mode="custom"`, `Agent.stream`). Tools stay
unaware: they open their step runs as any runnable does. Events are plain JSON:

    {"event": "search_step", "target": "the sign", "order": 3, "box": [x1, y1, x2, y2], "level": 2,
     "peak": 0.83, "strong": true, "detections": 1, "children": 4}
    {"event": "finding", **Finding.to_json()}   (name, kind, status, box, score, text, tool, error, mask_area)
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Iterator
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.tracers.context import register_configure_hook
from langgraph.config import get_stream_writer

from lookcloser.core.types import Finding, is_search_step

__all__ = ["finding_event", "step_events"]


class _StepEvents(BaseCallbackHandler):
    """Writes one `search_step` event per finished search-step run."""

    def __init__(self, write: Callable[[Any], None]) -> None:
        self.write = write
        self._started: dict[UUID, dict[str, Any]] = {}
        self._order = 0
        self._lock = threading.Lock()

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, metadata: dict[str, Any] | None = None,
                       **kwargs: Any) -> None:
        if is_search_step(run_id, metadata) and isinstance(inputs, dict):
            with self._lock:
                self._started[run_id] = inputs

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            inputs = self._started.pop(run_id, None)
            if inputs is None:
                return
            self._order += 1
            order = self._order
        outputs = outputs if isinstance(outputs, dict) else {}
        self.write({"event": "search_step", "target": inputs.get("phrase"), "order": order, "box": inputs.get("box"),
                    "level": inputs.get("level"), "peak": outputs.get("peak"), "strong": outputs.get("strong"),
                    "detections": len(outputs.get("detections") or []), "children": outputs.get("children")})


_current: ContextVar[_StepEvents | None] = ContextVar("lookcloser_step_events", default=None)
register_configure_hook(_current, inheritable=True)


@contextmanager
def step_events() -> Iterator[Callable[[Any], None]]:
    """Stream the search steps of the runs started below this point; yields the node's stream writer."""
    write = get_stream_writer()
    token = _current.set(_StepEvents(write))
    try:
        yield write
    finally:
        _current.reset(token)


def finding_event(finding: Finding) -> dict[str, Any]:
    """A finding as a stream event: the same JSON as `ask --json` and the LangChain tools give."""
    return {"event": "finding", **finding.to_json()}
