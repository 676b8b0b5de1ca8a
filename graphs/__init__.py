"""The LangGraph graph of the agent (`from lookcloser.graphs import graph`)."""

from lookcloser.graphs.agent_graph import build_graph, graph, route_after_show
from lookcloser.graphs.state import AgentRuntime, AgentState

__all__ = ["AgentRuntime", "AgentState", "build_graph", "graph", "route_after_show"]
