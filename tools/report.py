"""`lookcloser tools`: every registered tool by role, what runs it, its default model, and whether it
can run here, with the command that fixes it. Built from each registration's `ToolInfo` checks
(no model, plugin or heavy library is imported); plugins that declare nothing are "unknown"."""

from __future__ import annotations

from typing import Any

from lookcloser.tools.info import OK, UNKNOWN, Usability
from lookcloser.tools.registry import registry

__all__ = ["rows", "table"]


def rows(tools: dict[str, Any] | None = None, tool_options: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One dict per registered (role, name): role, name, backend, default_model, status, detail, fix,
    configured, needs_vlm (the tool asks the agent's VLM: `--vlm SPEC`). `tools` / `tool_options` (a
    normalised Context's, e.g. from --config) are laid over the default tools: each role's configured tool is
    marked and checked with its options (e.g. a local `model` directory)."""
    from lookcloser.tools.builtin import DEFAULT_TOOLS  # noqa: PLC0415

    names, options = {**DEFAULT_TOOLS, **(tools or {})}, tool_options or {}
    out = []
    for role, name, info, origin in registry.listing():
        configured = names.get(role) == name
        if info is not None:
            usable = info.usability(options.get(role) if configured else None)
        else:
            usable = Usability(UNKNOWN, "the tool declares no requirements")
        out.append({
            "role": role, "name": name,
            "backend": info.backend if info is not None else f"plugin: {origin or 'registered at run time'}",
            "default_model": info.default_model if info is not None else None,
            "status": usable.status, "detail": usable.detail, "fix": usable.fix, "configured": configured,
            "needs_vlm": bool(info is not None and info.needs_vlm),
        })
    return out


def table(found: list[dict[str, Any]]) -> Any:
    """A rich Table of `rows()`."""
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    styles = {OK: "green", UNKNOWN: "yellow"}
    grid = Table(title="tools")
    for column in ("role", "name", "backend", "default model", "usable here", "fix"):
        grid.add_column(column, no_wrap=column in ("role", "name"), overflow="fold")
    for row in found:
        status = Text(row["status"], style=styles.get(row["status"], "red"))
        if row["detail"]:
            status.append(f"\n{row['detail']}", style="dim")
        if row.get("needs_vlm"):
            status.append("\nneeds a VLM: --vlm SPEC", style="dim")
        name = row["name"] + (" *" if row["configured"] else "")
        grid.add_row(*(Text(cell) for cell in (row["role"], name, row["backend"], row["default_model"] or "")),
                     status, Text(row["fix"]))  # Text: no rich markup, so "[paddle]" stays
    return grid
