"""Export and read LangGraph's own run tree; this package adds no runs. The runs are langchain-core's: the
graph and its nodes, each VLM call (an llm run, `lookcloser.vlm.chat`), each tool call (a `BaseTool` run,
`lookcloser.runtime.expert_tools`), each V* search step (a `RunnableLambda` chain run).
- `jsonl`: `JsonlTracer`, the local exporter (LangSmith gets the same tree from its own tracer).
- `store`: read saved traces back, validate them against langsmith's run schema, list them, build the tree.
- `report`: one self-contained HTML page per trace. `upload`: send a saved trace to LangSmith.
The `lookcloser trace` commands are in `lookcloser.entrypoints.cli.trace`. Names are imported on first use
(PEP 562): `import lookcloser.tracing` loads neither LangGraph, langchain-core nor Pillow. May import core
and imaging.
"""

from __future__ import annotations

from lookcloser.core.lazy import lazy_exports

_MODULES = {
    "store": ("IMAGES_DIR", "META_FILE", "RUNS_FILE", "TRACE_FORMAT", "RunNode", "TraceError", "TraceSummary",
              "build_tree", "list_traces", "load_trace", "validate_trace"),
    "jsonl": ("JsonlTracer",),
    "report": ("render_report", "write_report"),
    "upload": ("UploadError", "UploadResult", "upload_trace"),
}
_EXPORTS = {name: f"lookcloser.tracing.{module}" for module, names in _MODULES.items() for name in names}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
