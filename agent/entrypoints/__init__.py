"""The doors: how people and programs reach the Agent. Nothing in lookcloser imports them.

- `cli`: the `lookcloser` command, one module per subcommand group and one error handler.
- `mcp_server`: `lookcloser mcp`, the Agent as MCP tools (ask, find, read_text).
- `langchain_tools`: the Agent as LangChain tools for a user's own agent or graph.

A door may import every layer below it (the Agent, eval, tracing, runtime, ...). A new door (a server,
another protocol) is a new module here, with its command in `cli`.
"""
