"""The Show-Search-Tell state graph.

    START → read_input ─┬─ image + question / chat → show ─┬─ answered ───────────────────────→ END
                        │                                  ├─ targets → search × N (Send) ─┬─ [segment] → tell → END
                        │                                  └─ neither ──────────────────────┴──────────→ tell → END
                        │                     (AgentConfig.ablate="no-search": SHOW → END, always)
                        ├─ target (SEARCH only) ─────────→ search ─── [segment] ─────────────────────→ END
                        └─ AgentConfig.strategy "zoom" → zoom_model ⇄ zoom_tools → END   (lookcloser.graphs.zoom)

SEARCH runs one branch per target, or one branch for all targets when the localizer finds several
in one call (`locate_many`: GroundingDINO's "a . b . c" prompt, one forward per image). `segment`
(Grounded-SAM) runs when a segmenter is configured: every found object box of the image goes to
the segmenter in one call, after all branches are back.

`graph` is the compiled graph that `langgraph.json` serves (`langgraph dev`, LangGraph Studio). Its
runtime context is `lookcloser.runtime.context.Context` (plain JSON when served); state is plain JSON, so
any checkpointer can store it. Compile your own with a checkpointer: `build_graph(checkpointer=...)`.
"""

from __future__ import annotations

from typing import Any, Callable

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send

from lookcloser.runtime.context import Context, as_context, services

import lookcloser.graphs.nodes as nodes
import lookcloser.graphs.zoom as zoom
from lookcloser.graphs.state import AgentState, InputState, OutputState

__all__ = ["build_graph", "graph"]


#: Turns the runtime context a run was given into the Context it runs with (see `build_graph`).
Admit = Callable[[Any], Context]


def _as_given(context: Any) -> Context:
    """No operator in between: the context is used as given (Python callers are their own operator)."""
    return as_context(context)


def _nodes(admit: Admit) -> dict[str, Any]:
    """The node and routing functions, each taking the run's `Runtime[Context]` through `admit`."""

    def run_node(node: Any) -> Any:
        def adapted(state: Any, runtime: Runtime[Context]) -> dict[str, Any]:
            context = admit(runtime.context)
            return node(state, services(context), context.config)
        adapted.__name__ = adapted.__qualname__ = node.__name__
        return adapted

    def search_all(state: AgentState, runtime: Runtime[Context], *, with_vlm: bool) -> list[Send]:
        """One `search` branch per target, or one for all of them when the localizer batches."""
        targets = state.get("targets") or []
        batched = nodes.localizer_batches(services(admit(runtime.context)))
        groups = [targets] if batched and targets else [[target] for target in targets]
        return [Send("search", {"image": state["image"], "targets": group, "mode": state.get("mode", "ask"),
                                "with_vlm": with_vlm}) for group in groups]

    def route_after_input(state: AgentState, runtime: Runtime[Context]) -> Any:
        """SEARCH only for a `target` (tools get the VLM only when the context names one); else SHOW, or the
        zoom loop for AgentConfig.strategy "zoom"."""
        if state.get("mode") == "find":
            return search_all(state, runtime, with_vlm=bool(state.get("search_with_vlm")))
        return "zoom_model" if admit(runtime.context).config.strategy == "zoom" else "show"

    def route_after_show(state: AgentState, runtime: Runtime[Context]) -> Any:
        """END when SHOW answered; parallel `search` branches for the targets; else straight to `tell`.
        The no-search ablation (AgentConfig.ablate) ends every question at SHOW (it left no targets)."""
        if state.get("targets"):
            return search_all(state, runtime, with_vlm=True)
        if state.get("answer") is not None or admit(runtime.context).config.ablate == "no-search":
            return END
        return "tell"

    def route_after_search(task: dict[str, Any], runtime: Runtime[Context]) -> str:
        """All branches meet in `segment` when masks are wanted (it runs once), else in `tell` (or END)."""
        context = admit(runtime.context)
        if nodes.wants_masks(services(context), context.config):
            return "segment"
        return _after_findings(task.get("mode"))

    return {"read_input": run_node(nodes.read_input), "show": run_node(nodes.show),
            "zoom_model": run_node(nodes.within_time_limit(zoom.zoom_model)),
            "zoom_tools": run_node(nodes.within_time_limit(zoom.zoom_tools)),
            "search": run_node(nodes.search), "segment": run_node(nodes.segment), "tell": run_node(nodes.tell),
            "route_after_input": route_after_input, "route_after_show": route_after_show,
            "route_after_search": route_after_search}


def _after_findings(mode: str | None) -> str:
    return END if mode == "find" else "tell"


def route_after_search(task: dict[str, Any], runtime: Runtime[Context]) -> str:
    """All branches meet in `segment` when masks are wanted (it runs once), else in `tell` (or END)."""
    if nodes.wants_masks(services(runtime.context)):
        return "segment"
    return _after_findings(task.get("mode"))


def route_after_segment(state: AgentState) -> str:
    return _after_findings(state.get("mode"))


def build_graph(*, admit: Admit | None = None, **compile_options: Any) -> Any:
    """The graph, compiled with `compile_options` (e.g. `checkpointer=InMemorySaver()`).

    admit: context -> the Context a run uses. None uses the run's context as given (the Python API, your
    own graphs); the served graph (`lookcloser.graphs.served`) admits a client's context only within what
    the server's operator allows (`lookcloser.runtime.serving`)."""
    parts = _nodes(admit or _as_given)
    builder = StateGraph(AgentState, context_schema=Context, input_schema=InputState, output_schema=OutputState)
    for name in ("read_input", "show", "search", "segment", "tell", "zoom_model", "zoom_tools"):
        builder.add_node(name, parts[name])
    builder.add_edge(START, "read_input")
    builder.add_conditional_edges("read_input", parts["route_after_input"], ["show", "search", "zoom_model"])
    builder.add_conditional_edges("zoom_model", zoom.route_after_zoom_model, {"zoom_tools": "zoom_tools", "end": END})
    builder.add_edge("zoom_tools", "zoom_model")
    builder.add_conditional_edges("show", parts["route_after_show"], ["search", "tell", END])
    builder.add_conditional_edges("search", parts["route_after_search"], ["segment", "tell", END])
    builder.add_conditional_edges("segment", route_after_segment, ["tell", END])
    builder.add_edge("tell", END)
    return builder.compile(name="lookcloser", **compile_options)


graph = build_graph()
