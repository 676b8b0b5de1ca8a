"""Export and read LangGraph's own run tree. Its runs are langchain-core's: the graph and its nodes (LangGraph),
each VLM call (a chat model's llm run, `lookcloser.vlm.chat`), each tool call (a `BaseTool` run,
`lookcloser.runtime.expert_tools`), each V* search step (a `RunnableLambda` chain run). This package adds no runs:
- `jsonl`: `JsonlTracer`, the local exporter (`<root>/<trace_id>/runs.jsonl`, `meta.json`, `images/`);
  LangSmith gets the same tree from langchain-core's own tracer (LANGSMITH_TRACING=true).
- `store`: read saved traces back, validate them against langsmith's run schema, list them, build the tree.
- `report`: one self-contained HTML page per trace. `upload`: send a saved trace to LangSmith.
The `lookcloser trace` commands are the CLI's (`lookcloser.entrypoints.cli.trace`).

Names are imported on first use (PEP 562): `import lookcloser.tracing` loads neither LangGraph,
langchain-core nor Pillow.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = {
    "store": ("IMAGES_DIR", "META_FILE", "RUNS_FILE", "TRACE_FORMAT", "RunNode", "TraceError", "TraceSummary",
              "build_tree", "list_traces", "load_trace", "validate_trace"),
    "jsonl": ("JsonlTracer",),
    "report": ("render_report", "write_report"),
    "upload": ("UploadError", "UploadResult", "upload_trace"),
}
_EXPORTS = {name: f"lookcloser.tracing.{module}" for module, names in _MODULES.items() for name in names}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lookcloser.tracing' has no attribute '{name}'")
    value = globals()[name] = getattr(importlib.import_module(_EXPORTS[name]), name)
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
