"""The LangGraph graph of the agent (`from lookcloser.graphs import graph, build_graph`).

- `agent_graph`: the Show-Search-Tell `StateGraph` and its routing; `graph` is it compiled.
- `nodes`: what each node does; `state`: the JSON state and its reducers; `progress`: the custom
  stream events; `memory`: the visual working memory TELL reads; `counting`: a run's `Stats`.
- `served`: the graph `langgraph.json` serves, with the operator's settings and checkpointer.

May import core, imaging, tools, vlm, tracing and runtime. Names are imported on first use (PEP 562),
so importing a module of this package does not build the graph.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "build_graph": "lookcloser.graphs.agent_graph",
    "graph": "lookcloser.graphs.agent_graph",
    "AgentState": "lookcloser.graphs.state",
    "InputState": "lookcloser.graphs.state",
    "OutputState": "lookcloser.graphs.state",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lookcloser.graphs' has no attribute '{name}'")
    value = globals()[name] = getattr(importlib.import_module(_EXPORTS[name]), name)
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
