"""LangSmith-format run records, written as JSON lines beside saved images.

`trace_run(...)` is a context manager used by the graph nodes, VLM calls, tool calls and search
steps. It nests through a context variable, so a child run finds its parent without anyone
passing it around (LangGraph copies the context into the threads that run parallel branches).
With no active trace it costs almost nothing and writes nothing.

Layout of one trace: `<root>/<trace_id>/runs.jsonl` (one finished run per line, appended with a
single `write` as each run ends, so a crash leaves every finished run readable),
`<root>/<trace_id>/meta.json` (trace name, times, status; replaced atomically at start and end)
and `<root>/<trace_id>/images/*.png` referenced from runs by relative path.

Sinks: the local directory (optional) and a live LangSmith sink (optional, see `live.py`),
switched on by LangSmith's own environment variables (LANGSMITH_TRACING=true ...).
"""

from __future__ import annotations

import contextvars
import functools
import io
import json
import os
import tempfile
import threading
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
from PIL import Image

if TYPE_CHECKING:  # pragma: no cover
    from lookcloser.tracing.live import LiveSink

RUNS_FILE = "runs.jsonl"
META_FILE = "meta.json"
IMAGES_DIR = "images"
TRACE_FORMAT = "lookcloser-trace/1"
_ONE_MICROSECOND = timedelta(microseconds=1)


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
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "model_dump"):
        return _jsonable(value.model_dump())
    return repr(value)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write via a temp file in the same folder + rename: readers never see a half-written file."""
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise


class TraceWriter:
    """Owns one trace: its run clock, its directory (optional) and its live sink (optional).

    Thread-safe: parallel graph branches append to the same writer.
    """

    def __init__(self, directory: str | os.PathLike | None, *, live_sink: "LiveSink | None" = None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.live_sink = live_sink
        self._lock = threading.Lock()
        self._image_count = 0
        self._run_count = 0
        self._last_start: datetime | None = None
        self.path = self.directory / RUNS_FILE if self.directory is not None else None
        if self.directory is not None:
            (self.directory / IMAGES_DIR).mkdir(parents=True, exist_ok=True)

    def next_start(self, earliest: datetime | None = None) -> datetime:
        """A start time strictly after every earlier run of this trace (so dotted_order never ties)."""
        moment = _now()
        if earliest is not None and moment < earliest:
            moment = earliest
        with self._lock:
            if self._last_start is not None and moment <= self._last_start:
                moment = self._last_start + _ONE_MICROSECOND
            self._last_start = moment
        return moment

    def started(self, run: "Run") -> None:
        if self.live_sink is not None:
            self.live_sink.start(run)

    def write(self, record: dict[str, Any]) -> None:
        """Append one finished run as one line, with a single write() on an O_APPEND descriptor."""
        if self.path is not None:
            data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
            with self._lock:
                self._run_count += 1
                descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    view = memoryview(data)
                    while view:
                        written = os.write(descriptor, view)
                        view = view[written:]
                finally:
                    os.close(descriptor)
        if self.live_sink is not None:
            self.live_sink.end(record)

    def sync(self) -> None:
        """fsync the log (called when the root run ends: durable against power loss, not only crashes)."""
        if self.path is None or not self.path.exists():
            return
        descriptor = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def write_meta(self, meta: dict[str, Any]) -> None:
        if self.directory is None:
            return
        meta = {**meta, "runs": self._run_count, "images": self._image_count}
        _write_atomic(self.directory / META_FILE, (json.dumps(_jsonable(meta), indent=2) + "\n").encode("utf-8"))

    def save_image(self, image: Image.Image | np.ndarray, label: str, *, format: str = "png") -> str | None:
        """Write an image beside the log (temp file + rename); return its path relative to the trace dir.

        `format="jpeg"` (quality 90) suits large photos: a full-size PNG of one is slow to write and big.
        Returns None when this trace keeps no local files.
        """
        if self.directory is None:
            return None
        kind = format.lower()
        if kind not in ("png", "jpeg", "jpg"):
            raise ValueError(f"save_image format must be 'png' or 'jpeg', got {format!r} for '{label}'")
        with self._lock:
            self._image_count += 1
            index = self._image_count
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in label)[:40] or "image"
        suffix = "png" if kind == "png" else "jpg"
        relative = f"{IMAGES_DIR}/{index:04d}_{safe}.{suffix}"
        if isinstance(image, np.ndarray):
            array = image
            if array.dtype == np.bool_:
                array = array.astype(np.uint8) * 255
            elif array.dtype != np.uint8:
                raise ValueError(f"save_image needs a bool or uint8 array, got dtype {array.dtype} for '{label}'")
            image = Image.fromarray(array)
        if not isinstance(image, Image.Image):
            raise TypeError(f"save_image needs a PIL image or numpy array, got {type(image).__name__} for '{label}'")
        buffer = io.BytesIO()
        if suffix == "png":
            image.save(buffer, format="PNG")
        else:
            image.convert("RGB").save(buffer, format="JPEG", quality=90)
        _write_atomic(self.directory / relative, buffer.getvalue())
        return relative


def _usage_from(run_type: str, outputs: dict[str, Any], metadata: dict[str, Any]) -> dict[str, int] | None:
    """Token counts where LangSmith looks for them (extra.metadata.usage_metadata) for llm runs."""
    if run_type != "llm" or "usage_metadata" in metadata:
        return None
    if isinstance(outputs.get("usage_metadata"), dict):  # langchain's place; mirror it for LangSmith's
        return dict(outputs["usage_metadata"])
    found: dict[str, int] = {}
    for source in (metadata, outputs):
        for key, alias in (("input_tokens", "prompt_tokens"), ("output_tokens", "completion_tokens")):
            value = source.get(key, source.get(alias))
            if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and key not in found:
                found[key] = int(value)
    if not found:
        return None
    if "input_tokens" in found and "output_tokens" in found:
        found["total_tokens"] = found["input_tokens"] + found["output_tokens"]
    return found


class Run:
    """One run (span). Set `outputs`, call `add_event`, `save_image`; it is written when it ends."""

    def __init__(self, writer: TraceWriter | None, name: str, run_type: str, inputs: dict[str, Any],
                 parent: "Run | None", tags: list[str] | None, metadata: dict[str, Any] | None,
                 run_id: str | None = None) -> None:
        self.writer = writer
        self.id = run_id or str(uuid.uuid4())
        self.name = name
        self.run_type = run_type
        self.inputs = inputs
        self.outputs: dict[str, Any] = {}
        self.error: str | None = None
        self.tags = list(tags or [])
        self.metadata = dict(metadata or {})
        self.events: list[dict[str, Any]] = []
        self.parent = parent
        earliest = parent.start_time if parent is not None else None
        if writer is not None:
            self.start_time = writer.next_start(earliest)
        else:
            self.start_time = max(_now(), earliest) if earliest is not None else _now()
        self.end_time: datetime | None = None
        self._children_end: datetime | None = None
        self.trace_id = parent.trace_id if parent else self.id
        stamp = f"{_order_stamp(self.start_time)}{self.id}"
        self.dotted_order = f"{parent.dotted_order}.{stamp}" if parent else stamp

    def add_event(self, name: str, **kwargs: Any) -> None:
        self.events.append({"name": name, "time": _now().isoformat(), "kwargs": _jsonable(kwargs)})

    def save_image(self, image: Image.Image | np.ndarray, label: str, *, format: str = "png") -> str | None:
        """Save an image into this trace; its relative path, or None when the trace keeps no files."""
        return self.writer.save_image(image, label, format=format) if self.writer else None

    def set_usage(self, input_tokens: int | None = None, output_tokens: int | None = None) -> None:
        """Record token counts in LangSmith's place for them (extra.metadata.usage_metadata)."""
        usage: dict[str, int] = {}
        if input_tokens is not None:
            usage["input_tokens"] = int(input_tokens)
        if output_tokens is not None:
            usage["output_tokens"] = int(output_tokens)
        if input_tokens is not None and output_tokens is not None:
            usage["total_tokens"] = int(input_tokens) + int(output_tokens)
        if usage:
            self.metadata["usage_metadata"] = usage

    def record(self) -> dict[str, Any]:
        """The run as a LangSmith run dict (what goes on one line of runs.jsonl)."""
        metadata = dict(self.metadata)
        usage = _usage_from(self.run_type, self.outputs if isinstance(self.outputs, dict) else {}, metadata)
        if usage:
            metadata["usage_metadata"] = usage
        return {
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
            "end_time": self.end_time.isoformat() if self.end_time else None,
            "tags": self.tags,
            "extra": {"metadata": _jsonable(metadata)},
            "events": self.events,
        }

    def finish(self) -> dict[str, Any]:
        # never before its start or before a child's end, even when clocks tie or step back
        end = max(_now(), self.start_time, self._children_end or self.start_time)
        self.end_time = end
        parent = self.parent
        if parent is not None:
            lock = self.writer._lock if self.writer is not None else _children_lock
            with lock:
                if parent._children_end is None or end > parent._children_end:
                    parent._children_end = end
        record = self.record()
        if self.writer:
            self.writer.write(record)
        return record


_children_lock = threading.Lock()
_current_run: contextvars.ContextVar[Run | None] = contextvars.ContextVar("lookcloser_run", default=None)
_pending_writer: contextvars.ContextVar[TraceWriter | None] = contextvars.ContextVar(
    "lookcloser_pending_writer", default=None
)
_pending_run_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("lookcloser_pending_id", default=None)


def current_run() -> Run | None:
    """The innermost open run in this context, or None outside any trace."""
    return _current_run.get()


@contextmanager
def trace_run(name: str, run_type: str = "chain", inputs: dict[str, Any] | None = None, *,
              tags: list[str] | None = None, metadata: dict[str, Any] | None = None) -> Iterator[Run]:
    """Open a run as a child of the current one; record an exception as its error and re-raise."""
    parent = _current_run.get()
    writer = parent.writer if parent else _pending_writer.get()
    run_id = None if parent else _pending_run_id.get()
    run = Run(writer, name, run_type, dict(inputs or {}), parent, tags, metadata, run_id=run_id)
    if writer is not None:
        writer.started(run)
    token = _current_run.set(run)
    try:
        yield run
    except BaseException as exc:
        run.error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        _current_run.reset(token)
        run.finish()


@functools.lru_cache(maxsize=1)
def _package_version() -> str | None:
    try:
        from importlib.metadata import version  # noqa: PLC0415

        return version("lookcloser")
    except Exception:  # noqa: BLE001  (not installed as a distribution: leave it out)
        return None


def _meta(run: Run, status: str) -> dict[str, Any]:
    return {
        "format": TRACE_FORMAT,
        "trace_id": run.trace_id,
        "name": run.name,
        "status": status,
        "error": run.error,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "lookcloser_version": _package_version(),
    }


@contextmanager
def start_trace(root_directory: str | os.PathLike | None, name: str, inputs: dict[str, Any] | None = None,
                *, tags: list[str] | None = None, metadata: dict[str, Any] | None = None,
                live: "LiveSink | bool | None" = None) -> Iterator[Run]:
    """Begin a new trace (a root run) written to `<root_directory>/<trace_id>/`.

    `root_directory=None` writes nothing locally. `live=None` sends runs to LangSmith when its
    environment variables enable tracing; `False` never does; a `LiveSink` uses that sink.
    """
    from lookcloser.tracing.live import live_sink_from_env  # noqa: PLC0415

    sink = live_sink_from_env() if live is None or live is True else (live or None)
    if live is True and sink is None:
        raise ValueError("start_trace(live=True) but LangSmith tracing is not enabled by the environment")
    run_id = str(uuid.uuid4())
    writer = None
    if root_directory is not None or sink is not None:
        directory = Path(root_directory) / run_id if root_directory is not None else None
        writer = TraceWriter(directory, live_sink=sink)
    token = _pending_writer.set(writer)
    id_token = _pending_run_id.set(run_id)
    previous = _current_run.set(None)  # a new trace never nests under an outer one
    root: Run | None = None
    try:
        with trace_run(name, "chain", inputs, tags=tags, metadata=metadata) as root:
            _pending_run_id.reset(id_token)
            id_token = None
            if writer is not None:
                writer.write_meta(_meta(root, "running"))
            yield root
    finally:
        if id_token is not None:
            _pending_run_id.reset(id_token)
        _current_run.reset(previous)
        _pending_writer.reset(token)
        if writer is not None and root is not None:
            writer.sync()
            writer.write_meta(_meta(root, "error" if root.error else "success"))
