"""The graph `langgraph.json` serves: the agent graph with every run's context admitted by the operator.

The operator's setup (default VLM, tools, file access, limits, what clients may choose) is read from
LOOKCLOSER_VLM and LOOKCLOSER_CONFIG when the server imports this module; a bad setup stops the server
at start with one line. See `lookcloser.serving` and docs/serving.md.
"""

from __future__ import annotations

from lookcloser.serving import Operator

from lookcloser.graphs.agent_graph import build_graph

__all__ = ["graph", "operator"]

operator = Operator.from_env()
graph = build_graph(admit=operator.admit)
