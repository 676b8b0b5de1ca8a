"""The graph `langgraph.json` serves: the agent graph with every run's context admitted by the operator.

The operator's setup (default VLM, tools, file access, limits, what clients may choose) is read from
LOOKCLOSER_VLM and LOOKCLOSER_CONFIG when the server imports this module; a bad setup stops the server
at start with one line. See `lookcloser.runtime.serving` and docs/serving.md.
"""

from __future__ import annotations

import os
from typing import Any

from lookcloser.runtime.serving import Operator

from lookcloser.graphs.agent_graph import build_graph

__all__ = ["checkpointer", "graph", "operator"]

operator = Operator.from_env()
graph = build_graph(admit=operator.admit)


def checkpointer() -> Any:
    """The served graph's checkpointer (langgraph.json "checkpointer"): LangGraph's in-memory saver with each
    photo written once, content-addressed, to LOOKCLOSER_BLOB_DIR (default .langgraph_api/lookcloser-images),
    so a thread's checkpoints hold references, not the photo at every step, and the photos are not kept in
    memory (`lookcloser.imaging.checkpoints`). For durable threads see docs/serving.md."""
    from lookcloser.imaging.checkpoints import DirectoryBlobs, ImageRefSerde, OffThreadMemorySaver

    folder = os.environ.get("LOOKCLOSER_BLOB_DIR") or os.path.join(".langgraph_api", "lookcloser-images")
    return OffThreadMemorySaver(serde=ImageRefSerde(DirectoryBlobs(folder)))
