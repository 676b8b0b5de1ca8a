"""The Show-Search-Tell state graph.

    START → read_input ─┬─ image + question / chat → show ─┬─ answered ─────────────→ END
                        │                                  ├─ targets → search × N (Send) → tell → END
                        │                                  └─ neither ──────────────────→ tell → END
                        └─ target (SEARCH only) ─────────→ search → END

`graph` is the compiled graph that `langgraph.json` serves (`langgraph dev`, LangGraph Studio). Its
runtime context is `lookcloser.runtime.Context` (plain JSON when served); state is plain JSON, so
any checkpointer can store it. Compile your own with a checkpointer: `build_graph(checkpointer=...)`.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send

from lookcloser.runtime import Context, services

from lookcloser.graphs import nodes
from lookcloser.graphs.state import AgentState, InputState, OutputState

__all__ = ["build_graph", "graph"]


def read_input(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    return nodes.read_input(state, services(runtime.context))


def show(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    return nodes.show(state, services(runtime.context))


def search(task: dict[str, Any], runtime: Runtime[Context]) -> dict[str, Any]:
    return nodes.search(task, services(runtime.context))


def tell(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    return nodes.tell(state, services(runtime.context))


def _search_all(state: AgentState, *, with_vlm: bool) -> list[Send]:
    return [Send("search", {"image": state["image"], "target": target, "mode": state.get("mode", "ask"),
                            "with_vlm": with_vlm}) for target in state.get("targets") or []]


def route_after_input(state: AgentState) -> Any:
    """SEARCH only for a `target` (tools get the VLM only when the context names one); else SHOW."""
    if state.get("mode") == "find":
        return _search_all(state, with_vlm=bool(state.get("search_with_vlm")))
    return "show"


def route_after_show(state: AgentState) -> Any:
    """END when SHOW answered; one parallel `search` branch per target; else straight to `tell`."""
    if state.get("targets"):
        return _search_all(state, with_vlm=True)
    if state.get("answer") is not None:
        return END
    return "tell"


def route_after_search(state: dict[str, Any]) -> str:
    return END if state.get("mode") == "find" else "tell"


def build_graph(**compile_options: Any) -> Any:
    """The graph, compiled with `compile_options` (e.g. `checkpointer=InMemorySaver()`)."""
    builder = StateGraph(AgentState, context_schema=Context, input_schema=InputState, output_schema=OutputState)
    builder.add_node("read_input", read_input)
    builder.add_node("show", show)
    builder.add_node("search", search)
    builder.add_node("tell", tell)
    builder.add_edge(START, "read_input")
    builder.add_conditional_edges("read_input", route_after_input, ["show", "search"])
    builder.add_conditional_edges("show", route_after_show, ["search", "tell", END])
    builder.add_conditional_edges("search", route_after_search, ["tell", END])
    builder.add_edge("tell", END)
    return builder.compile(name="lookcloser", **compile_options)


graph = build_graph()
