"""`lookcloser trace ...`: show a trace (or list traces), validate it, write its HTML report, upload it.

Mounted by the main CLI as `lookcloser trace`; usable alone as `python -m lookcloser.tracing.cli`. Every
failure (a missing folder, a file given for a folder, a broken line, a LangSmith refusal, a mistyped
argument) is one line `error: ...` on stderr and exit status 2, never a traceback. Imports stay light
(typer, rich, the trace reader): no LangGraph or langchain-core.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.console import Console
from rich.table import Column, Table
from rich.text import Text
from rich.tree import Tree
from typer.core import TyperGroup
from typer.exceptions import TyperException

from lookcloser.errors import LookCloserError
from lookcloser.tracing.store import RUNS_FILE, RunNode, TraceError, build_tree, list_traces, load_trace, run_seconds, validate_trace

#: Exit status of every failure (the same as the main `lookcloser` command).
EXIT_ERROR = 2
TYPE_STYLE = {"chain": "cyan", "llm": "magenta", "tool": "yellow"}

console, errors = Console(), Console(stderr=True)


def _fail(message: str) -> None:
    errors.print(Text.assemble(("error:", "bold red"), " ", " ".join(str(message).split())), soft_wrap=True)
    raise typer.Exit(EXIT_ERROR)


class _TraceGroup(TyperGroup):
    """Turns click's multi-line usage errors of the trace commands into one `error:` line."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except TyperException as exc:  # click's UsageError / BadParameter, as typer ships them
            context = getattr(exc, "ctx", None)
            _fail(exc.format_message() + (f" (see '{context.command_path} --help')" if context is not None else ""))


trace_app = typer.Typer(cls=_TraceGroup, help="Read, check, report and upload saved traces.", no_args_is_help=True,
                        add_completion=False, pretty_exceptions_enable=False)


def _one_line_errors(command: Callable[..., None]) -> Callable[..., None]:
    """Any failure inside a command becomes one `error:` line and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except (typer.Exit, typer.Abort, TyperException):
            raise
        except LookCloserError as exc:
            _fail(str(exc))
        except OSError as exc:
            where = f" '{exc.filename}'" if exc.filename else ""
            _fail(f"cannot access{where}: {exc.strerror or exc}")
        except Exception as exc:  # noqa: BLE001  (one line, never a traceback)
            _fail(f"{type(exc).__name__}: {exc}")

    return wrapper


def _short(value: Any, limit: int) -> str:
    text = " ".join((value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _key_outputs(run: dict[str, Any]) -> str:
    """A few telling outputs: an llm run's reply, else answer/findings/... as `key=value`."""
    outputs = run.get("outputs") if isinstance(run.get("outputs"), dict) else {}
    if set(outputs) == {"output"} and isinstance(outputs["output"], dict):  # a tool's or a routing function's value
        outputs = outputs["output"]
    if run.get("run_type") == "llm" and isinstance(outputs.get("generations"), list):
        try:
            return _short(f"reply={outputs['generations'][0][0]['text']!r}", 110)
        except (IndexError, KeyError, TypeError):
            return ""
    preferred = ("answer", "choice", "text", "peak", "findings", "result", "targets", "status", "output")
    keys = [k for k in preferred if k in outputs] or [k for k in outputs if k != "usage_metadata"]
    shown = [(k, f"[{len(v)} items]" if isinstance(v, list) and v and isinstance(v[0], dict) else v)
             for k, v in ((k, outputs[k]) for k in keys[:3])]
    return _short(", ".join(f"{k}={_short(v, 50)}" for k, v in shown), 110)


def _label(run: dict[str, Any]) -> Text:
    seconds, run_type = run_seconds(run), str(run.get("run_type"))
    label = Text.assemble((str(run.get("name")), "bold"), (f"  {run_type}", TYPE_STYLE.get(run_type, "white")),
                          (f"  {seconds * 1000:.1f} ms" if seconds is not None else "  unfinished", "dim"))
    if run.get("error"):
        label.append(f"  ✗ {_short(run['error'], 90)}", style="bold red")
    elif run.get("end_time"):
        label.append("  ✓", style="green")
    outputs = _key_outputs(run)
    return label.append(f"  {outputs}", style="dim") if outputs else label


def _add(tree: Tree, node: RunNode) -> None:
    branch = tree.add(_label(node.run))
    for child in node.children:
        _add(branch, child)


@trace_app.command("show")
@_one_line_errors
def show(trace_dir: Path = typer.Argument(..., help="A trace folder, or the traces root to list its traces.")) -> None:
    """Print the run tree with run types, timings, statuses and key outputs (or list the traces in a folder)."""
    if not trace_dir.exists():
        _fail(f"'{trace_dir}' does not exist")
    if trace_dir.is_dir() and not (trace_dir / RUNS_FILE).exists():
        summaries = list_traces(trace_dir)
        if not summaries:
            _fail(f"'{trace_dir}' holds no traces (no */{RUNS_FILE}) and has no {RUNS_FILE} itself")
        table = Table(Column("started", no_wrap=True), Column("trace", overflow="fold"), "name", "status", "runs",
                      "seconds", title=f"traces in {trace_dir} (newest first)")
        for item in summaries:
            seconds = (item.end_time - item.start_time).total_seconds() if item.start_time and item.end_time else None
            table.add_row(item.start_time.strftime("%Y-%m-%d %H:%M:%S") if item.start_time else "?", item.directory.name,
                          item.name or "?", Text(item.status, style="red" if item.status == "error" else ""),
                          str(item.runs if item.runs is not None else "?"), f"{seconds:.2f}" if seconds is not None else "")
        console.print(table)
        return
    runs = load_trace(trace_dir)
    top = Tree(Text(f"trace {trace_dir}", style="bold"))
    for root in build_tree(runs):
        _add(top, root)
    console.print(top)
    try:
        validate_trace(runs)
        console.print(Text(f"{len(runs)} runs; valid LangSmith trace", style="green"))
    except TraceError as exc:
        console.print(Text(f"{len(runs)} runs; not a complete valid trace: {exc}", style="yellow"))


@trace_app.command("validate")
@_one_line_errors
def validate(trace_dir: Path = typer.Argument(..., help="A trace folder (holding runs.jsonl)."),
             partial: bool = typer.Option(False, "--partial",
                                          help="Accept a trace cut short (no root run, parents missing).")) -> None:
    """Check every run against langsmith's run schema (no unknown fields) and the runs for one consistent tree."""
    runs = load_trace(trace_dir)
    validate_trace(runs, complete=not partial)
    console.print(f"{trace_dir}: {len(runs)} runs, valid{' (partial)' if partial else ''}")


@trace_app.command("report")
@_one_line_errors
def report(trace_dir: Path = typer.Argument(..., help="A trace folder (holding runs.jsonl)."),
           output: Path = typer.Option(Path("report.html"), "--output", "-o", help="Where to write the HTML page.")) -> None:
    """Write one self-contained HTML page: answer, image with search path, boxes and masks, VLM calls, timings."""
    from lookcloser.tracing.report import write_report  # noqa: PLC0415  (Pillow/numpy only when needed)

    if output.is_dir():
        _fail(f"--output '{output}' is a folder; name the HTML file to write")
    console.print(f"wrote {write_report(trace_dir, output)}")


@trace_app.command("upload")
@_one_line_errors
def upload(trace_dir: Path = typer.Argument(..., help="A trace folder (holding runs.jsonl)."),
           project: Optional[str] = typer.Option(None, "--project", help="LangSmith project (default: LANGSMITH_PROJECT).")) -> None:
    """Send a saved trace to LangSmith (LANGSMITH_API_KEY, LANGSMITH_ENDPOINT) with Client.batch_ingest_runs.

    The trace is validated first. Images are not uploaded: runs name them by their path in the trace
    folder (images/<hash>.png|jpg), and those paths stay plain strings in LangSmith.
    """
    from lookcloser.tracing.upload import upload_trace  # noqa: PLC0415

    result = upload_trace(trace_dir, project_name=project)
    console.print(f"uploaded {result.runs} runs of trace {result.trace_id} to project '{result.project_name}' "
                  "(images not uploaded)")


if __name__ == "__main__":  # pragma: no cover
    trace_app()
