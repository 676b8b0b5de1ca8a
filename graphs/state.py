"""Graph state and the runtime context every node receives."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable, TypedDict

from lookcloser.config import AgentConfig
from lookcloser.types import Finding, Target


class AgentState(TypedDict, total=False):
    image: Any  # PIL image (or a path when invoked from LangGraph Studio)
    question: str
    options: list[str] | None
    show_reply: str
    parse_path: str
    targets: list[Target]
    dropped_targets: list[Target]
    findings: Annotated[list[Finding], operator.add]  # parallel search branches append here
    answer: str | None
    choice: int | None
    choice_path: str | None


class SearchTask(TypedDict):
    """What one parallel search branch receives (via LangGraph Send)."""

    image: Any
    target: Target


@dataclass
class AgentRuntime:
    """Passed as LangGraph runtime context: the shared VLM, a tool resolver and the settings.

    `tool(role)` returns the (traced) tool for a role, built once per agent, or raises LookupError.
    """

    vlm: Any
    tool: Callable[[str], Any]
    config: AgentConfig = field(default_factory=AgentConfig)
    has_tool: Callable[[str], bool] = lambda role: False
