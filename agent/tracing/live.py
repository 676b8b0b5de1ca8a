"""Live LangSmith sink: sends each run to LangSmith as it starts and ends.

Switched on by LangSmith's own settings (LANGSMITH_TRACING=true or LANGCHAIN_TRACING_V2=true, with
LANGSMITH_API_KEY / LANGSMITH_ENDPOINT / LANGSMITH_PROJECT), and off inside
`langsmith.tracing_context(enabled=False)`. It uses its own `langsmith.Client` (background batching,
multipart, compression as the client decides) and touches no global LangSmith state, so
LangGraph's own LangSmith tracing keeps working beside it: its graph runs and ours arrive as two
traces in the same project.

Sending never breaks a run: a failure is logged once as a warning and the local trace is unaffected.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import langsmith

    from lookcloser.tracing.core import Run

logger = logging.getLogger("lookcloser.tracing")

# langsmith.utils.get_env_var("TRACING_V2", default=get_env_var("TRACING")) reads these four.
TRACING_ENV_VARS = ("LANGSMITH_TRACING_V2", "LANGCHAIN_TRACING_V2", "LANGSMITH_TRACING", "LANGCHAIN_TRACING")

_warned = False
_warn_lock = threading.Lock()
_client_lock = threading.Lock()
_shared_client: "langsmith.Client | None" = None


def warn_send_failure(exc: BaseException) -> None:
    """Log the first failure to reach LangSmith as a warning; stay quiet after that."""
    global _warned
    with _warn_lock:
        if _warned:
            logger.debug("LangSmith live tracing failure (already warned): %r", exc)
            return
        _warned = True
    logger.warning(
        "LangSmith live tracing could not send runs (%s: %s); the local trace is unaffected. "
        "Further failures are not logged.", type(exc).__name__, exc,
    )


def langsmith_tracing_enabled() -> bool:
    """Whether LangSmith's settings ask for tracing here (env vars, or langsmith.tracing_context)."""
    try:
        from langsmith.run_helpers import get_tracing_context  # noqa: PLC0415
    except ImportError:  # langsmith is a dependency, but stay usable without it
        return False
    enabled = get_tracing_context().get("enabled")
    if enabled is not None:
        return enabled is True
    return any(os.environ.get(name, "").strip().lower() == "true" for name in TRACING_ENV_VARS)


def shared_client() -> "langsmith.Client":
    """One client per process (it owns the background batching thread)."""
    global _shared_client
    with _client_lock:
        if _shared_client is None:
            import langsmith  # noqa: PLC0415

            _shared_client = langsmith.Client(tracing_error_callback=warn_send_failure)
        return _shared_client


def _parse_time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


class LiveSink:
    """Posts a run when it starts and patches it when it ends (the client batches both)."""

    def __init__(self, client: "langsmith.Client | None" = None, project_name: str | None = None) -> None:
        if client is None:
            client = shared_client()
        if project_name is None:
            from langsmith.utils import get_tracer_project  # noqa: PLC0415

            project_name = get_tracer_project()
        self.client = client
        self.project_name = project_name

    def start(self, run: "Run") -> None:
        from lookcloser.tracing.core import _jsonable  # noqa: PLC0415

        try:
            self.client.create_run(
                name=run.name,
                inputs=_jsonable(run.inputs),
                run_type=run.run_type,
                project_name=self.project_name,
                id=run.id,
                trace_id=run.trace_id,
                parent_run_id=run.parent.id if run.parent else None,
                dotted_order=run.dotted_order,
                start_time=run.start_time,
                tags=list(run.tags),
                extra={"metadata": _jsonable(run.metadata)},
            )
        except Exception as exc:  # noqa: BLE001  (tracing must never break the run)
            warn_send_failure(exc)

    def end(self, record: dict[str, Any]) -> None:
        try:
            self.client.update_run(
                record["id"],
                trace_id=record["trace_id"],
                parent_run_id=record.get("parent_run_id"),
                dotted_order=record["dotted_order"],
                end_time=_parse_time(record.get("end_time")),
                inputs=dict(record.get("inputs") or {}),
                outputs=dict(record.get("outputs") or {}),
                error=record.get("error"),
                events=list(record.get("events") or []),
                extra={"metadata": dict((record.get("extra") or {}).get("metadata") or {})},
                tags=list(record.get("tags") or []),
            )
        except Exception as exc:  # noqa: BLE001
            warn_send_failure(exc)

    def flush(self) -> None:
        """Block until queued runs are sent (the client's own background thread also drains at exit)."""
        try:
            self.client.flush()
        except Exception as exc:  # noqa: BLE001
            warn_send_failure(exc)


def live_sink_from_env() -> LiveSink | None:
    """A LiveSink when LangSmith tracing is enabled, else None. Never raises."""
    if not langsmith_tracing_enabled():
        return None
    try:
        return LiveSink()
    except Exception as exc:  # noqa: BLE001  (a bad key or URL must not stop the agent)
        warn_send_failure(exc)
        return None
