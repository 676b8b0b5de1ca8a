"""LangSmith-format run records, written as JSON lines beside saved images.

`trace_run(...)` is a context manager used by the graph nodes, VLM calls, tool calls and search
steps. It nests through a context variable, so a child run finds its parent without anyone
passing it around (LangGraph copies the context into the threads that run parallel branches).
With no active trace it costs almost nothing and writes nothing.

Layout of one trace: `<root>/<trace_id>/runs.jsonl` (one finished run per line, appended and
flushed as each run ends, so a crash leaves every finished run readable) and
`<root>/<trace_id>/images/*.png` referenced from runs by relative path.
"""

from __future__ import annotations

import contextvars
import json
import os
import threading
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from PIL import Image

RUNS_FILE = "runs.jsonl"
IMAGES_DIR = "images"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _order_stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S%fZ")


def _jsonable(value: Any) -> Any:
    """Make inputs/outputs JSON-safe without inlining images."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, np.ndarray):
        return f"<array shape={list(value.shape)} dtype={value.dtype}>"
    if isinstance(value, Image.Image):
        return f"<image {value.width}x{value.height}>"
    if hasattr(value, "model_dump"):
        return _jsonable(value.model_dump())
    return repr(value)


class TraceWriter:
    """Owns one trace directory; appends finished runs under a lock (safe across threads)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        (self.directory / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._image_count = 0
        self.path = self.directory / RUNS_FILE

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())

    def save_image(self, image: Image.Image | np.ndarray, label: str) -> str:
        """Write an image beside the log; return its path relative to the trace directory."""
        with self._lock:
            self._image_count += 1
            index = self._image_count
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in label)[:40] or "image"
        relative = f"{IMAGES_DIR}/{index:04d}_{safe}.png"
        if isinstance(image, np.ndarray):
            array = image
            if array.dtype == np.bool_:
                array = array.astype(np.uint8) * 255
            image = Image.fromarray(array)
        image.save(self.directory / relative)
        return relative


class Run:
    """One run (span). Set `outputs`, call `add_event`, `save_image`; it is written when it ends."""

    def __init__(self, writer: TraceWriter | None, name: str, run_type: str, inputs: dict[str, Any],
                 parent: "Run | None", tags: list[str] | None, metadata: dict[str, Any] | None) -> None:
        self.writer = writer
        self.id = str(uuid.uuid4())
        self.name = name
        self.run_type = run_type
        self.inputs = inputs
        self.outputs: dict[str, Any] = {}
        self.error: str | None = None
        self.tags = list(tags or [])
        self.metadata = dict(metadata or {})
        self.events: list[dict[str, Any]] = []
        self.parent = parent
        self.start_time = _now()
        if parent is not None and self.start_time < parent.start_time:
            self.start_time = parent.start_time
        self.trace_id = parent.trace_id if parent else self.id
        stamp = f"{_order_stamp(self.start_time)}{self.id}"
        self.dotted_order = f"{parent.dotted_order}.{stamp}" if parent else stamp

    def add_event(self, name: str, **kwargs: Any) -> None:
        self.events.append({"name": name, "time": _now().isoformat(), "kwargs": _jsonable(kwargs)})

    def save_image(self, image: Image.Image | np.ndarray, label: str) -> str | None:
        return self.writer.save_image(image, label) if self.writer else None

    def finish(self) -> dict[str, Any]:
        end = _now()
        record = {
            "id": self.id,
            "trace_id": self.trace_id,
            "parent_run_id": self.parent.id if self.parent else None,
            "dotted_order": self.dotted_order,
            "name": self.name,
            "run_type": self.run_type,
            "inputs": _jsonable(self.inputs),
            "outputs": _jsonable(self.outputs),
            "error": self.error,
            "start_time": self.start_time.isoformat(),
            "end_time": end.isoformat(),
            "tags": self.tags,
            "extra": {"metadata": _jsonable(self.metadata)},
            "events": self.events,
        }
        if self.writer:
            self.writer.write(record)
        return record


_current_run: contextvars.ContextVar[Run | None] = contextvars.ContextVar("lookcloser_run", default=None)
_pending_writer: contextvars.ContextVar[TraceWriter | None] = contextvars.ContextVar(
    "lookcloser_pending_writer", default=None
)


def current_run() -> Run | None:
    """The innermost open run in this context, or None outside any trace."""
    return _current_run.get()


@contextmanager
def trace_run(name: str, run_type: str = "chain", inputs: dict[str, Any] | None = None, *,
              tags: list[str] | None = None, metadata: dict[str, Any] | None = None) -> Iterator[Run]:
    """Open a run as a child of the current one; record an exception as its error and re-raise."""
    parent = _current_run.get()
    writer = parent.writer if parent else _pending_writer.get()
    run = Run(writer, name, run_type, dict(inputs or {}), parent, tags, metadata)
    token = _current_run.set(run)
    try:
        yield run
    except BaseException as exc:
        run.error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        _current_run.reset(token)
        run.finish()


@contextmanager
def start_trace(root_directory: str | os.PathLike | None, name: str, inputs: dict[str, Any] | None = None,
                *, tags: list[str] | None = None, metadata: dict[str, Any] | None = None) -> Iterator[Run]:
    """Begin a new trace (a root run). With `root_directory=None` runs nest but nothing is written."""
    run_id = str(uuid.uuid4())
    writer = TraceWriter(Path(root_directory) / run_id) if root_directory is not None else None
    token = _pending_writer.set(writer)
    previous = _current_run.set(None)  # a new trace never nests under an outer one
    try:
        with trace_run(name, "chain", inputs, tags=tags, metadata=metadata) as run:
            run.id = run_id
            run.trace_id = run_id
            run.dotted_order = f"{_order_stamp(run.start_time)}{run_id}"
            yield run
    finally:
        _current_run.reset(previous)
        _pending_writer.reset(token)
