"""The LangGraph graph of the agent (`from lookcloser.graphs import graph`)."""

from lookcloser.graphs.agent_graph import build_graph, graph
from lookcloser.graphs.state import AgentState, InputState, OutputState

__all__ = ["AgentState", "InputState", "OutputState", "build_graph", "graph"]
