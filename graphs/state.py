"""Graph state: plain JSON only, so any LangGraph checkpointer can store it and Studio can show it.

Images are references (see `lookcloser.imaging.refs`); targets and findings are the JSON form of
`lookcloser.core.types.Target` / `Finding` (`Finding.model_validate(d)` reads one back); `stats` holds
the counters of `lookcloser.core.types.Stats`.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

__all__ = ["AgentState", "InputState", "OutputState", "SearchTask", "add_counts"]


def add_counts(left: dict[str, int] | None, right: dict[str, int] | None) -> dict[str, int]:
    """Reducer for `stats`: parallel branches' counters add up."""
    total = dict(left or {})
    for name, value in (right or {}).items():
        total[name] = total.get(name, 0) + value
    return total


class InputState(TypedDict, total=False):
    """What a caller sends. Either image + question (+ options), or chat `messages` whose last user
    message has a text part and an image part; `target` ({"name", "kind"}) runs SEARCH only."""

    image: str
    question: str
    options: list[str] | None
    target: dict[str, Any] | None
    messages: Annotated[list[AnyMessage], add_messages]


class OutputState(TypedDict, total=False):
    answer: str | None
    choice: int | None
    choice_path: str | None
    parse_path: str | None
    targets: list[dict[str, Any]]
    dropped_targets: list[dict[str, Any]]
    findings: Annotated[list[dict[str, Any]], operator.add]  # parallel search branches append here
    stats: Annotated[dict[str, int], add_counts]
    notes: list[str]
    messages: Annotated[list[AnyMessage], add_messages]


class AgentState(InputState, OutputState, total=False):
    mode: str  # "ask" (image + question), "chat" (from messages) or "find" (SEARCH only)
    search_with_vlm: bool  # find mode: give tools the VLM only when one was named
    # the zoom strategy (lookcloser.graphs.zoom): each VLM turn ({"text", "calls", "results"}), each view it zoomed
    # into ({"box": photo pixels, "label", "size": as sent}; cut again from the photo, so no pixels are stored)
    zoom_turns: list[dict[str, Any]]
    views: list[dict[str, Any]]
    zoom_done: bool


class SearchTask(TypedDict):
    """What one parallel search branch receives (via LangGraph Send): one target, or every target of
    the image when the localizer finds several in one call (`locate_many`, e.g. one GroundingDINO pass)."""

    image: str
    targets: list[dict[str, Any]]
    mode: str
    with_vlm: bool
