"""The LangGraph graph of the agent (`from lookcloser.graphs import graph, build_graph`).

- `agent_graph`: the Show-Search-Tell `StateGraph` and its routing; `graph` is it compiled.
- `nodes`: what each node does; `state`: the JSON state and its reducers; `progress`: the custom
  stream events; `memory`: the visual working memory TELL reads; `counting`: a run's `Stats`.
- `served`: the graph `langgraph.json` serves, with the operator's settings and checkpointer.

May import core, imaging, tools, vlm, tracing and runtime. Names are imported on first use (PEP 562),
so importing a module of this package does not build the graph.
"""

from __future__ import annotations

from lookcloser.core.lazy import lazy_exports

_EXPORTS = {
    "build_graph": "lookcloser.graphs.agent_graph",
    "graph": "lookcloser.graphs.agent_graph",
    "AgentState": "lookcloser.graphs.state",
    "InputState": "lookcloser.graphs.state",
    "OutputState": "lookcloser.graphs.state",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
