"""`lookcloser tools`: every registered tool by role, and whether it can run here with these settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from lookcloser.entrypoints.cli.output import _note, out
from lookcloser.entrypoints.cli.params import CONFIG_HELP, TOOL_HELP, _settings


def tools_command(
    tool: Optional[list[str]] = typer.Option(None, "--tool", help=TOOL_HELP),
    config_file: Optional[Path] = typer.Option(None, "--config", help=CONFIG_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list, one object per tool."),
) -> None:
    """List every registered tool by role: backend, default model, whether it can run here (checked
    offline, with the --config / --tool settings), the command that fixes it, and whether it needs a VLM."""
    settings = _settings(config_file, tool)
    from lookcloser.runtime.context import Context  # noqa: PLC0415
    from lookcloser.tools.report import rows, table  # noqa: PLC0415

    context = Context(tools=settings.tools)
    found = rows(context.tools, context.tool_options)
    if as_json:
        print(json.dumps(found, ensure_ascii=False), flush=True)
    else:
        out.print(table(found))
        _note("* = the tool each role uses with these settings")
