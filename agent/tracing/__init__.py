"""Tracing: LangSmith-format run records written locally (core.py), read back and validated
(store.py), sent live (live.py) or uploaded (upload.py) to LangSmith, shown and reported (cli.py,
report.py)."""

from lookcloser.tracing.core import (
    IMAGES_DIR,
    META_FILE,
    RUNS_FILE,
    Run,
    TraceWriter,
    current_run,
    start_trace,
    trace_run,
)
from lookcloser.tracing.live import LiveSink, langsmith_tracing_enabled
from lookcloser.tracing.store import TraceError, build_tree, list_traces, load_trace, validate_trace
from lookcloser.tracing.upload import UploadError, UploadResult, upload_trace

__all__ = [
    "IMAGES_DIR",
    "META_FILE",
    "RUNS_FILE",
    "LiveSink",
    "Run",
    "TraceError",
    "TraceWriter",
    "UploadError",
    "UploadResult",
    "build_tree",
    "current_run",
    "langsmith_tracing_enabled",
    "list_traces",
    "load_trace",
    "start_trace",
    "trace_run",
    "upload_trace",
    "validate_trace",
]
