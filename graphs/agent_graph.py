"""The Show-Search-Tell state graph.

    START → show ─┬─ answered ───────────────────────────→ END
                  ├─ missing targets → search × N (Send) → tell → END
                  └─ neither ──────────────────────────→ tell → END

`graph` is the compiled graph (LangGraph Studio loads it through langgraph.json). Invoke it with
`context=AgentRuntime(...)`; without a context (e.g. from Studio) a default `Agent()` supplies one.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send

from lookcloser.graphs import nodes
from lookcloser.graphs.state import AgentRuntime, AgentState

_default_runtime: AgentRuntime | None = None


def _context(runtime: Runtime[AgentRuntime] | None) -> AgentRuntime:
    context = getattr(runtime, "context", None)
    if context is not None:
        return context
    global _default_runtime
    if _default_runtime is None:
        from lookcloser.agent import Agent  # local import: the agent module imports this one

        _default_runtime = Agent(trace_dir=None).runtime
    return _default_runtime


def show(state: AgentState, runtime: Runtime[AgentRuntime]) -> dict[str, Any]:
    return nodes.show(state, _context(runtime))


def search(task: dict[str, Any], runtime: Runtime[AgentRuntime]) -> dict[str, Any]:
    return nodes.search(task, _context(runtime))


def tell(state: AgentState, runtime: Runtime[AgentRuntime]) -> dict[str, Any]:
    return nodes.tell(state, _context(runtime))


def route_after_show(state: AgentState) -> Any:
    """END when SHOW answered; one parallel `search` branch per target; else straight to `tell`."""
    targets = state.get("targets") or []
    if targets:
        return [Send("search", {"image": state["image"], "target": target}) for target in targets]
    if state.get("answer") is not None:
        return END
    return "tell"


def build_graph() -> Any:
    builder = StateGraph(AgentState, context_schema=AgentRuntime)
    builder.add_node("show", show)
    builder.add_node("search", search)
    builder.add_node("tell", tell)
    builder.add_edge(START, "show")
    builder.add_conditional_edges("show", route_after_show, ["search", "tell", END])
    builder.add_edge("search", "tell")
    builder.add_edge("tell", END)
    return builder.compile(name="lookcloser")


graph = build_graph()
