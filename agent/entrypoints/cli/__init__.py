"""The `lookcloser` command (entry point `lookcloser.entrypoints.cli:main`): ask, find, tools, mcp, serve, eval,
eval-search, trace. This module only builds the Typer app and registers each command; the logic is in:

- `errors`: the one error handler (`MainGroup`): a fixable error is one line `error: ...`, exit status 2
- `params`: path parameters checked at parse time, `--config` / `--tool` settings, shared help texts
- `output`: the stdout/stderr consoles, notes, progress bar, findings table, --save-vis drawing
- `ask`, `find`, `tools`, `mcp`, `serve`, `eval` (eval, eval-search), `trace` (loaded only when invoked)

Commands import `errors`, `params` and `output`, never each other nor this package.

Start-up is kept to typer and rich: the agent (LangGraph, transformers, torch), Pillow, the eval and the
`trace` commands are imported only inside the commands that use them, so `lookcloser --help` and mistakes
in the arguments answer at once (benchmarks/cli_startup.py measures it).
"""

from __future__ import annotations

import sys

import typer

from lookcloser.entrypoints.cli import ask, eval, find, mcp, serve, tools
from lookcloser.entrypoints.cli.errors import MainGroup

app = typer.Typer(cls=MainGroup, add_completion=False, no_args_is_help=True,
                  help="Answer questions about small details in large images (Show, Search, Tell).")
app.command()(ask.ask)
app.command()(find.find)
app.command("tools")(tools.tools_command)
app.command("mcp")(mcp.mcp_command)
app.command("serve")(serve.serve_command)
app.command("eval")(eval.eval_command)
app.command("eval-search")(eval.eval_search_command)


def _flush_langsmith() -> None:
    """Runs queued for LangSmith (LANGSMITH_TRACING=true) are sent in the background: wait for them before
    the process exits, or the last ones are lost. Only when a command loaded LangChain's tracer."""
    tracers = sys.modules.get("langchain_core.tracers.langchain")
    if tracers is not None:
        tracers.wait_for_all_tracers()


def main() -> None:
    try:
        app()
    finally:
        _flush_langsmith()


__all__ = ["app", "main"]
