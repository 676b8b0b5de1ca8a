"""The graph `langgraph.json` serves: the agent graph with every run's context admitted by the operator.

The operator's setup (default VLM, tools, file access, limits, what clients may choose) is read from
LOOKCLOSER_VLM and LOOKCLOSER_CONFIG when the server imports this module; a bad setup stops the server
at start with one line. See `lookcloser.serving` and docs/serving.md.
"""

from __future__ import annotations

from typing import Any

from lookcloser.serving import Operator

from lookcloser.graphs.agent_graph import build_graph

__all__ = ["checkpointer", "graph", "operator"]

operator = Operator.from_env()
graph = build_graph(admit=operator.admit)


def checkpointer() -> Any:
    """The served graph's checkpointer (langgraph.json "checkpointer"): LangGraph's in-memory saver with
    each photo held once, content-addressed, so a thread's checkpoints hold references instead of the
    photo at every step (`lookcloser.checkpoints`). For durable threads see docs/serving.md."""
    from langgraph.checkpoint.memory import InMemorySaver

    from lookcloser.checkpoints import ImageRefSerde, MemoryBlobs

    return InMemorySaver(serde=ImageRefSerde(MemoryBlobs()))
