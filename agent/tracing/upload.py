"""Send a saved trace to LangSmith with `langsmith.Client.batch_ingest_runs`.

For a trace written without LangSmith tracing on (LANGSMITH_TRACING=true sends the same tree live). The
trace is validated first (LangSmith needs trace_id and dotted_order; a broken tree shows up badly there).
Images are not uploaded: runs name them by their path in the trace folder, which stays a plain string.
The client reports send failures through a warning and a callback, not an exception: both are captured
here and become an UploadError.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lookcloser.core.errors import LookCloserError
from lookcloser.tracing.store import load_trace, validate_trace

__all__ = ["UploadError", "UploadResult", "upload_trace"]


class UploadError(LookCloserError, RuntimeError):
    """LangSmith did not accept the trace; the message carries the client's error."""


@dataclass
class UploadResult:
    trace_id: str
    runs: int
    project_name: str


class _FailureLog(logging.Handler):
    """Collects the langsmith client's 'Failed to ... ingest' warnings during one upload."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "Failed to" in record.getMessage():
            self.messages.append(record.getMessage())


def upload_trace(trace_dir: str | os.PathLike, client: Any = None, project_name: str | None = None) -> UploadResult:
    """Validate the trace in `trace_dir` and batch-ingest all its runs into `project_name`. `client=None`: a
    `langsmith.Client()` from the environment (LANGSMITH_API_KEY, LANGSMITH_ENDPOINT); `project_name=None`:
    LANGSMITH_PROJECT (or "default")."""
    import langsmith  # noqa: PLC0415
    from langsmith.utils import get_tracer_project  # noqa: PLC0415

    runs = load_trace(trace_dir)
    validate_trace(runs)
    project_name = project_name or get_tracer_project()
    callback_errors: list[BaseException] = []
    if client is None:
        client = langsmith.Client(auto_batch_tracing=False, tracing_error_callback=callback_errors.append)
    failures, client_logger = _FailureLog(), logging.getLogger("langsmith.client")
    client_logger.addHandler(failures)
    try:
        client.batch_ingest_runs(create=[{**{k: v for k, v in r.items() if v is not None}, "session_name": project_name}
                                         for r in runs])
    except Exception as exc:  # noqa: BLE001  (a user error from the client: say which trace)
        raise UploadError(f"uploading '{Path(trace_dir)}' to LangSmith failed: {type(exc).__name__}: {exc}") from exc
    finally:
        client_logger.removeHandler(failures)
    problems = [f"{type(e).__name__}: {e}" for e in callback_errors] or failures.messages
    if problems:
        raise UploadError(f"uploading '{Path(trace_dir)}' to LangSmith failed: {problems[0]}")
    root = next(r for r in runs if not r.get("parent_run_id"))
    return UploadResult(trace_id=str(root["id"]), runs=len(runs), project_name=project_name)
