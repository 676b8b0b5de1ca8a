"""The local trace log: a langchain-core tracer that writes LangGraph's own run tree to disk.

It is one more callback handler beside LangSmith's: it sees exactly the runs LangSmith sees (the graph, its
nodes, and the VLM calls, tool calls and search steps langchain-core opens under them) and appends each
finished run as one JSON line in LangSmith's run format.

Layout of one trace: `<root>/<trace_id>/runs.jsonl` (one finished run per line, one `write` each, so a crash
leaves every finished run readable), `meta.json` (name, times, status; replaced atomically) and `images/`:
an image-store marker becomes `<content hash>.png|jpg`, an inline data URL (what a LangChain chat model is
sent) its own bytes, `<hash of the bytes>.<type>`. One file per distinct picture, however often it is used.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np
import xxhash
from langchain_core.tracers.base import BaseTracer
from langchain_core.tracers.schemas import Run

from lookcloser import __version__
from lookcloser.imaging.files import write_atomic
from lookcloser.imaging.store import IMAGE_REF_PREFIX, store
from lookcloser.tracing.store import IMAGES_DIR, META_FILE, RUNS_FILE, TRACE_FORMAT

__all__ = ["JsonlTracer"]

logger = logging.getLogger("lookcloser.tracing")

#: Photos above this many pixels are saved as JPEG (quality 90): a full-size PNG of a 12-Mpx photo is slow and big.
JPEG_ABOVE_PIXELS = 1_000_000
#: Long inline strings (base64 images sent to a served graph, say) are not copied into the log.
MAX_INLINE_CHARS = 20_000
#: Inline images (data URLs) written as files, by their media type.
DATA_URL_TYPES = {"data:image/png;base64,": "png", "data:image/jpeg;base64,": "jpg", "data:image/webp;base64,": "webp",
                  "data:image/gif;base64,": "gif"}


class JsonlTracer(BaseTracer):
    """Writes every trace it sees under `root` (one folder per root run). Thread-safe."""

    name: str = "lookcloser_jsonl"

    def __init__(self, root: str | os.PathLike, **kwargs: Any) -> None:
        # "original+chat": chat model runs keep their messages (LangSmith's "llm" runs; see _record)
        super().__init__(_schema_format="original+chat", **kwargs)
        self.root = Path(root)
        self._lock = threading.Lock()
        self._saved: dict[str, set[str]] = {}  # trace id -> image files written (or being written)
        self._pending: dict[str, list[Future]] = {}  # trace id -> image writes not yet waited for
        self._writer: ThreadPoolExecutor | None = None
        self._counts: dict[str, int] = {}

    def trace_dir(self, trace_id: UUID | str) -> Path:
        return self.root / str(trace_id)

    def _persist_run(self, run: Run) -> None:  # root finished: everything is on disk already
        pass

    def _on_run_create(self, run: Run) -> None:
        if run.parent_run_id is None:
            (self.trace_dir(run.trace_id) / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
            with self._lock:
                self._saved[str(run.trace_id)], self._counts[str(run.trace_id)] = set(), 0
            self._write_meta(run, "running")

    def _on_run_update(self, run: Run) -> None:
        trace_id, root = str(run.trace_id), run.parent_run_id is None
        if trace_id not in self._saved:  # a run of a trace that started before this tracer was attached
            return
        data = (json.dumps(self._record(run), ensure_ascii=False) + "\n").encode("utf-8")
        if root:
            self._finish_images(trace_id)  # images first: a finished trace's log names only written files
        with self._lock:
            self._counts[trace_id] += 1
            descriptor = os.open(self.trace_dir(trace_id) / RUNS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(descriptor, view):]
                if root:
                    os.fsync(descriptor)
            finally:
                os.close(descriptor)
        if root:
            self._write_meta(run, "error" if run.error else "success")
            with self._lock:
                self._saved.pop(trace_id, None)
                self._counts.pop(trace_id, None)
                if not self._pending and self._writer is not None:  # no trace open: let the worker thread go
                    self._writer.shutdown(wait=False)
                    self._writer = None

    def _record(self, run: Run) -> dict[str, Any]:
        """The run as LangSmith stores it: a chat model run is an "llm" run with its token counts in metadata."""
        trace_id, extra = str(run.trace_id), dict(run.extra or {})
        llm = run.run_type in ("llm", "chat_model")
        usage = _usage(run.outputs) if llm else None
        metadata = {**(extra.get("metadata") or {}), **({"usage_metadata": usage} if usage else {})}
        params = {"invocation_params": extra["invocation_params"]} if extra.get("invocation_params") else {}
        return {
            "id": str(run.id), "trace_id": trace_id, "dotted_order": run.dotted_order,
            "parent_run_id": str(run.parent_run_id) if run.parent_run_id else None,
            "name": run.name, "run_type": "llm" if llm else run.run_type,
            "inputs": self._jsonable(run.inputs or {}, trace_id),
            "outputs": self._jsonable(run.outputs, trace_id) if run.outputs is not None else None,
            "error": run.error, "start_time": run.start_time.isoformat(),
            "end_time": run.end_time.isoformat() if run.end_time else None, "tags": list(run.tags or []),
            "extra": self._jsonable({**params, "metadata": metadata}, trace_id),
            "events": self._jsonable(list(run.events or []), trace_id),
        }

    def _jsonable(self, value: Any, trace_id: str) -> Any:
        if value is None or isinstance(value, (bool, int)):
            return value
        if isinstance(value, str):
            if value.startswith(IMAGE_REF_PREFIX):
                return self._image_file(value[len(IMAGE_REF_PREFIX):], trace_id)
            if value.startswith("data:image/") and value[:value.find(",") + 1] in DATA_URL_TYPES:
                return self._data_url_file(value, trace_id)
            return value if len(value) <= MAX_INLINE_CHARS else f"{value[:200]}... <{len(value):,} characters, cut in the local trace>"
        if isinstance(value, float):
            return value if np.isfinite(value) else None
        if isinstance(value, dict):
            return {str(k): self._jsonable(v, trace_id) for k, v in value.items()}
        if isinstance(value, (list, tuple, set)):
            return [self._jsonable(v, trace_id) for v in value]
        if isinstance(value, np.generic):
            return self._jsonable(value.item(), trace_id)
        if isinstance(value, (datetime, UUID, Path)):
            return value.isoformat() if isinstance(value, datetime) else str(value)
        if hasattr(value, "model_dump"):
            return self._jsonable(value.model_dump(mode="json"), trace_id)
        if type(value).__name__ == "Overwrite" and hasattr(value, "value"):  # LangGraph's reducer bypass
            return self._jsonable(value.value, trace_id)
        if type(value).__name__ == "Send" and hasattr(value, "node"):  # LangGraph's fan-out packet
            return {"send": value.node, "arg": self._jsonable(value.arg, trace_id)}
        if callable(getattr(value, "to_json", None)):
            return self._jsonable(value.to_json(), trace_id)
        return repr(value)

    def _image_file(self, key: str, trace_id: str) -> str:
        """Relative path of the image `key` in this trace, written on first sight (by content hash)."""
        image = store.get(key)
        if image is None:
            return f"{IMAGE_REF_PREFIX}{key} (not in the image store)"
        suffix = "jpg" if image.width * image.height > JPEG_ABOVE_PIXELS else "png"
        relative = f"{IMAGES_DIR}/{key}.{suffix}"
        self._write_once(trace_id, relative, _write_image, image, self.trace_dir(trace_id) / relative, suffix)
        return relative

    def _data_url_file(self, url: str, trace_id: str) -> str:
        """Relative path of an inline image in this trace: its own bytes, named by their hash."""
        head, _, data = url.partition(",")
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return f"{url[:60]}... <not valid base64: {len(url):,} characters, cut in the local trace>"
        relative = f"{IMAGES_DIR}/{xxhash.xxh3_128_hexdigest(raw)}.{DATA_URL_TYPES[head + ',']}"
        self._write_once(trace_id, relative, write_atomic, self.trace_dir(trace_id) / relative, raw)
        return relative

    def _write_once(self, trace_id: str, relative: str, write: Any, *args: Any) -> None:
        """Run `write(*args)` on the image worker thread, once per file of the trace: encoding a 12-Mpx photo
        takes ~50 ms, done beside the run (VLM calls take far longer)."""
        with self._lock:
            saved = self._saved.setdefault(trace_id, set())
            if relative not in saved:
                saved.add(relative)
                if self._writer is None:
                    self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lookcloser-trace-images")
                self._pending.setdefault(trace_id, []).append(self._writer.submit(write, *args))

    def _finish_images(self, trace_id: str) -> None:
        """Wait for this trace's image files; a failed write is logged, never raised into the run."""
        with self._lock:
            pending = self._pending.pop(trace_id, [])
        for future in pending:
            try:
                future.result()
            except Exception as exc:  # noqa: BLE001 - a trace image must never break the answer
                logger.warning("lookcloser trace %s: an image could not be written: %s", trace_id, exc)

    def _write_meta(self, run: Run, status: str) -> None:
        trace_id = str(run.trace_id)
        meta = {"format": TRACE_FORMAT, "trace_id": trace_id, "name": run.name, "status": status, "error": run.error,
                "start_time": run.start_time.isoformat(), "end_time": run.end_time.isoformat() if run.end_time else None,
                "runs": self._counts.get(trace_id, 0), "lookcloser_version": __version__}
        write_atomic(self.trace_dir(trace_id) / META_FILE, (json.dumps(meta, indent=2) + "\n").encode("utf-8"))


def _write_image(image: Any, path: Path, suffix: str) -> None:
    buffer = io.BytesIO()
    if suffix == "png":
        image.save(buffer, format="PNG", compress_level=1)  # fast: crops of noisy photos compress poorly anyway
    else:
        image.convert("RGB").save(buffer, format="JPEG", quality=90)
    write_atomic(path, buffer.getvalue())


def _usage(outputs: dict[str, Any] | None) -> dict[str, int] | None:
    """Token counts of a chat run (its serialised AI message's usage_metadata), where LangSmith keeps them."""
    for batch in (outputs or {}).get("generations") or []:
        for generation in batch or []:
            usage = ((generation.get("message") or {}).get("kwargs") or {}).get("usage_metadata")
            if usage:
                return dict(usage)
    return None
