"""The Show-Search-Tell state graph.

    START → read_input ─┬─ image + question / chat → show ─┬─ answered ───────────────────────→ END
                        │                                  ├─ targets → search × N (Send) ─┬─ [segment] → tell → END
                        │                                  └─ neither ──────────────────────┴──────────→ tell → END
                        └─ target (SEARCH only) ─────────→ search ─── [segment] ─────────────────────→ END

SEARCH runs one branch per target, or one branch for all targets when the localizer finds several
in one call (`locate_many`: GroundingDINO's "a . b . c" prompt, one forward per image). `segment`
(Grounded-SAM) runs when a segmenter is configured: every found object box of the image goes to
the segmenter in one call, after all branches are back.

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


def segment(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    return nodes.segment(state, services(runtime.context))


def tell(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
    return nodes.tell(state, services(runtime.context))


def _search_all(state: AgentState, runtime: Runtime[Context], *, with_vlm: bool) -> list[Send]:
    """One `search` branch per target, or one for all of them when the localizer batches."""
    targets = state.get("targets") or []
    batched = nodes.localizer_batches(services(runtime.context), with_vlm=with_vlm)
    groups = [targets] if batched and targets else [[target] for target in targets]
    return [Send("search", {"image": state["image"], "targets": group, "mode": state.get("mode", "ask"),
                            "with_vlm": with_vlm}) for group in groups]


def route_after_input(state: AgentState, runtime: Runtime[Context]) -> Any:
    """SEARCH only for a `target` (tools get the VLM only when the context names one); else SHOW."""
    if state.get("mode") == "find":
        return _search_all(state, runtime, with_vlm=bool(state.get("search_with_vlm")))
    return "show"


def route_after_show(state: AgentState, runtime: Runtime[Context]) -> Any:
    """END when SHOW answered; parallel `search` branches for the targets; else straight to `tell`."""
    if state.get("targets"):
        return _search_all(state, runtime, with_vlm=True)
    if state.get("answer") is not None:
        return END
    return "tell"


def _after_findings(mode: str | None) -> str:
    return END if mode == "find" else "tell"


def route_after_search(task: dict[str, Any], runtime: Runtime[Context]) -> str:
    """All branches meet in `segment` when masks are wanted (it runs once), else in `tell` (or END)."""
    if nodes.wants_masks(services(runtime.context)):
        return "segment"
    return _after_findings(task.get("mode"))


def route_after_segment(state: AgentState) -> str:
    return _after_findings(state.get("mode"))


def build_graph(**compile_options: Any) -> Any:
    """The graph, compiled with `compile_options` (e.g. `checkpointer=InMemorySaver()`)."""
    builder = StateGraph(AgentState, context_schema=Context, input_schema=InputState, output_schema=OutputState)
    builder.add_node("read_input", read_input)
    builder.add_node("show", show)
    builder.add_node("search", search)
    builder.add_node("segment", segment)
    builder.add_node("tell", tell)
    builder.add_edge(START, "read_input")
    builder.add_conditional_edges("read_input", route_after_input, ["show", "search"])
    builder.add_conditional_edges("show", route_after_show, ["search", "tell", END])
    builder.add_conditional_edges("search", route_after_search, ["segment", "tell", END])
    builder.add_conditional_edges("segment", route_after_segment, ["tell", END])
    builder.add_edge("tell", END)
    return builder.compile(name="lookcloser", **compile_options)


graph = build_graph()
