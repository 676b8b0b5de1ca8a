"""The one error handler of the `lookcloser` command (`MainGroup.invoke`), for every subcommand.

An error a user can fix (a LookCloserError, a missing file or a file option that cannot be written, a
package that is not installed, a mistyped argument) prints one line `error: ...` on stderr and exits with
status 2 (`EXIT_ERROR`), never a traceback; anything else is a bug and keeps its traceback (`_line_for`).
Commands only raise; what a command prints before failing (ask's partial findings, find's findings when a
model cannot load, eval's summary when every item failed) it prints first, then raises (`CommandFailed`
when the work itself was done).

`MainGroup` also lists `lookcloser trace` from a stub and imports the real group only when it is invoked,
so start-up does not pay for the trace reader.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.text import Text
from typer.core import TyperGroup
from typer.exceptions import TyperException

from lookcloser.core.errors import LookCloserError
from lookcloser.entrypoints.cli.output import _one_line, err

TRACE_HELP = "Show, report on and upload saved traces."

#: Exit status of every error a user can fix.
EXIT_ERROR = 2


class CommandFailed(LookCloserError):
    """A command did its work and printed it, but must exit with status 2: every eval item failed, a model
    could not load, the visualisation could not be written, the run was interrupted."""


def _error_line(message: str) -> None:
    err.print(Text.assemble(("error:", "bold red"), " ", _one_line(message)), soft_wrap=True)


def _missing_dependency(exc: ImportError) -> bool:
    """A third-party package is missing (not a broken lookcloser module, which should show its traceback)."""
    name = getattr(exc, "name", None) or ""
    return isinstance(exc, ModuleNotFoundError) and bool(name) and not name.startswith("lookcloser")


def _line_for(exc: Exception) -> str | None:
    """The one line for an error a user can fix, or None for a bug (which keeps its traceback)."""
    if isinstance(exc, TyperException) and callable(getattr(exc, "format_message", None)):  # a usage error
        context = getattr(exc, "ctx", None)
        return exc.format_message() + (f" (see '{context.command_path} --help')" if context is not None else "")
    if isinstance(exc, (LookCloserError, ValueError)):  # ValueError: e.g. pydantic's check of AgentConfig
        return str(exc) or type(exc).__name__
    if isinstance(exc, ImportError):
        if not _missing_dependency(exc):
            return None
        return f"{exc}: a package lookcloser needs for this is not installed (see the README's install extras)"
    if isinstance(exc, OSError):
        where = f" '{exc.filename}'" if getattr(exc, "filename", None) else ""
        return f"cannot access{where}: {exc.strerror or exc}"
    return None


class _TraceStub(TyperGroup):
    """Stands for `lookcloser trace` in the command list; the real group is imported when used."""


def _trace_group() -> Any:
    from lookcloser.entrypoints.cli.trace import trace_app  # noqa: PLC0415

    group = typer.main.get_command(trace_app)
    group.name = "trace"
    return group


class MainGroup(TyperGroup):
    """The top-level group: every subcommand's errors end here as one line (see `_line_for`); `trace` is
    listed from a stub and loaded only when it is invoked."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands.setdefault("trace", _TraceStub(name="trace", help=TRACE_HELP, no_args_is_help=True))

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if isinstance(command, _TraceStub):
            command = _trace_group()
        return name, command, rest

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            line = _line_for(exc)
            if line is None:
                raise
            _error_line(line)
            raise typer.Exit(EXIT_ERROR) from None
