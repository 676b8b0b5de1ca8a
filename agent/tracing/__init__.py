"""Tracing on LangGraph's own run tree.

The runs are langchain-core's: the graph and its nodes (LangGraph), each VLM call (a chat model's llm
run, `lookcloser.vlm.chat`), each tool call (a `BaseTool` run, `lookcloser.expert_tools`) and each V*
search step (a `RunnableLambda` chain run). This package only exports and reads that tree:
- `jsonl`: `JsonlTracer`, the local exporter of that tree (`<root>/<trace_id>/runs.jsonl`, `meta.json`,
  `images/`); LangSmith gets the same tree from langchain-core's own tracer (LANGSMITH_TRACING=true).
- `store`: read saved traces back, validate them against langsmith's run schema, list them, build the tree.
- `report`: one self-contained HTML page per trace. `upload`: send a saved trace to LangSmith.

Names are imported on first use (PEP 562): `import lookcloser.tracing` loads neither LangGraph,
langchain-core nor Pillow.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "JsonlTracer": "lookcloser.tracing.jsonl",
    "IMAGES_DIR": "lookcloser.tracing.store",
    "META_FILE": "lookcloser.tracing.store",
    "RUNS_FILE": "lookcloser.tracing.store",
    "TRACE_FORMAT": "lookcloser.tracing.store",
    "RunNode": "lookcloser.tracing.store",
    "TraceError": "lookcloser.tracing.store",
    "TraceSummary": "lookcloser.tracing.store",
    "build_tree": "lookcloser.tracing.store",
    "list_traces": "lookcloser.tracing.store",
    "load_trace": "lookcloser.tracing.store",
    "validate_trace": "lookcloser.tracing.store",
    "render_report": "lookcloser.tracing.report",
    "write_report": "lookcloser.tracing.report",
    "UploadError": "lookcloser.tracing.upload",
    "UploadResult": "lookcloser.tracing.upload",
    "upload_trace": "lookcloser.tracing.upload",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lookcloser.tracing' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
