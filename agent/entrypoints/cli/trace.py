"""`lookcloser trace ...`: show a trace (or list traces), validate it, write its HTML report, upload it.

Mounted by the main CLI as `lookcloser trace` (`lookcloser.entrypoints.cli.errors`), whose one error handler turns every
failure raised here (a missing folder, a file given for a folder, a broken line, a LangSmith refusal, a
mistyped argument) into one line `error: ...` on stderr and exit status 2, never a traceback.
Imports stay light (typer, rich, the trace reader): no LangGraph or langchain-core.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from lookcloser.core.errors import InputError
from lookcloser.tracing.store import (
    RUNS_FILE,
    RunNode,
    TraceError,
    build_tree,
    list_traces,
    load_trace,
    run_seconds,
    validate_trace,
)

console = Console()

TYPE_STYLE = {"chain": "cyan", "llm": "magenta", "tool": "yellow"}

trace_app = typer.Typer(help="Read, check, report and upload saved traces.", no_args_is_help=True,
                        add_completion=False, pretty_exceptions_enable=False)


def _short(value: Any, limit: int = 70) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _key_outputs(run: dict[str, Any]) -> str:
    outputs = run.get("outputs") or {}
    if not isinstance(outputs, dict) or not outputs:
        return ""
    if set(outputs) == {"output"}:  # a tool's return value (or a routing decision) as langchain-core wraps it
        outputs = outputs["output"] if isinstance(outputs["output"], dict) else {"output": outputs["output"]}
    if run.get("run_type") == "llm" and isinstance(outputs.get("generations"), list):
        try:
            return _short(f"reply={outputs['generations'][0][0]['text']!r}", 110)
        except (IndexError, KeyError, TypeError):
            return ""
    preferred = ("answer", "choice", "text", "peak", "findings", "result", "targets", "status", "output")
    keys = [k for k in preferred if k in outputs] or [k for k in outputs if k != "usage_metadata"]
    parts = []
    for key in keys[:3]:
        value = outputs[key]
        if isinstance(value, list) and value and isinstance(value[0], dict):
            value = f"[{len(value)} items]"
        parts.append(f"{key}={_short(value, 50)}")
    return _short(", ".join(parts), 110)


def _label(run: dict[str, Any]) -> Text:
    seconds = run_seconds(run)
    label = Text(str(run.get("name")), style="bold")
    label.append(f"  {run.get('run_type')}", style=TYPE_STYLE.get(str(run.get("run_type")), "white"))
    label.append(f"  {seconds * 1000:.1f} ms" if seconds is not None else "  unfinished", style="dim")
    if run.get("error"):
        label.append(f"  ✗ {_short(run['error'], 90)}", style="bold red")
    elif run.get("end_time"):
        label.append("  ✓", style="green")
    outputs = _key_outputs(run)
    if outputs:
        label.append(f"  {outputs}", style="dim")
    return label


def _add(tree: Tree, node: RunNode) -> None:
    branch = tree.add(_label(node.run))
    for child in node.children:
        _add(branch, child)


def _show_trace(trace_dir: Path) -> None:
    runs = load_trace(trace_dir)
    roots = build_tree(runs)
    top = Tree(Text(f"trace {trace_dir}", style="bold"))
    for root in roots:
        _add(top, root)
    console.print(top)
    try:
        validate_trace(runs)
        console.print(Text(f"{len(runs)} runs; valid LangSmith trace", style="green"))
    except TraceError as exc:
        console.print(Text(f"{len(runs)} runs; not a complete valid trace: {exc}", style="yellow"))


def _show_root(root: Path) -> None:
    summaries = list_traces(root)
    if not summaries:
        raise TraceError(f"'{root}' holds no traces (no */{RUNS_FILE}) and has no {RUNS_FILE} itself")
    table = Table(title=f"traces in {root} (newest first)")
    table.add_column("started", no_wrap=True)
    table.add_column("trace", overflow="fold")
    for column in ("name", "status", "runs", "seconds"):
        table.add_column(column)
    for item in summaries:
        seconds = (item.end_time - item.start_time).total_seconds() if item.start_time and item.end_time else None
        table.add_row(item.start_time.strftime("%Y-%m-%d %H:%M:%S") if item.start_time else "?", item.directory.name,
                      item.name or "?", Text(item.status, style="red" if item.status == "error" else ""),
                      str(item.runs if item.runs is not None else "?"),
                      f"{seconds:.2f}" if seconds is not None else "")
    console.print(table)


@trace_app.command("show")
def show(trace_dir: Path = typer.Argument(..., help="A trace folder, or the traces root to list its traces.")) -> None:
    """Print the run tree with run types, timings, statuses and key outputs (or list the traces in a folder)."""
    if not trace_dir.exists():
        raise TraceError(f"'{trace_dir}' does not exist")
    if trace_dir.is_dir() and not (trace_dir / RUNS_FILE).exists():
        _show_root(trace_dir)
    else:
        _show_trace(trace_dir)


@trace_app.command("validate")
def validate(trace_dir: Path = typer.Argument(..., help="A trace folder (holding runs.jsonl)."),
             partial: bool = typer.Option(False, "--partial",
                                          help="Accept a trace cut short (no root run, parents missing).")) -> None:
    """Check every run against langsmith's run schema (no unknown fields) and the runs for one consistent tree."""
    runs = load_trace(trace_dir)
    validate_trace(runs, complete=not partial)
    console.print(f"{trace_dir}: {len(runs)} runs, valid{' (partial)' if partial else ''}")


@trace_app.command("report")
def report(trace_dir: Path = typer.Argument(..., help="A trace folder (holding runs.jsonl)."),
           output: Path = typer.Option(Path("report.html"), "--output", "-o", help="Where to write the HTML page.")) -> None:
    """Write one self-contained HTML page: answer, image with search path, boxes and masks, VLM calls, timings."""
    from lookcloser.tracing.report import render_report  # noqa: PLC0415  (Pillow/numpy only when needed)

    if output.is_dir():
        raise InputError(f"--output '{output}' is a folder; name the HTML file to write")
    page = render_report(trace_dir)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(page, encoding="utf-8")
    console.print(f"wrote {output}")


@trace_app.command("upload")
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
