"""The `lookcloser` command: ask, find, trace.

Errors a user can fix (missing file, unreadable image, unknown tool, model that cannot load)
print one clear line and exit with status 2, never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from lookcloser.errors import LookCloserError
from lookcloser.tracing.cli import trace_app

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Answer questions about small details in large images (Show, Search, Tell).")
err = Console(stderr=True)
out = Console()


#: `lookcloser find IMAGE text` means "read all the text" without needing --kind text.
TEXT_WORDS = {"text", "all text", "the text", "words", "all the text"}


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _parse_tools(values: list[str] | None) -> dict[str, str]:
    tools: dict[str, str] = {}
    for value in values or []:
        role, sep, name = value.partition("=")
        if not sep or not role or not name:
            _fail(f"--tool expects ROLE=NAME (e.g. --tool localizer=whole_image), got '{value}'")
        tools[role.strip()] = name.strip()
    return tools


@app.command()
def ask(
    image: Path = typer.Argument(..., help="Image file."),
    question: str = typer.Argument(..., help="Question about the image."),
    option: Optional[list[str]] = typer.Option(None, "--option", "-o", help="A multiple-choice option (repeat)."),
    vlm: Optional[str] = typer.Option(None, "--vlm", help="transformers:ID_OR_PATH or openai:MODEL@URL (default: transformers:Qwen/Qwen2.5-VL-3B-Instruct)."),
    tool: Optional[list[str]] = typer.Option(None, "--tool", help="ROLE=NAME, e.g. localizer=whole_image (repeat)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    save_vis: Optional[Path] = typer.Option(None, "--save-vis", help="Write a PNG with the findings drawn."),
    trace_dir: Path = typer.Option(Path("traces"), "--trace-dir", help="Where the run's trace is written."),
) -> None:
    """Ask QUESTION about IMAGE: the VLM answers, searching for missing details first when it needs to."""
    from lookcloser.agent import Agent

    try:
        agent = Agent(vlm=vlm, tools=_parse_tools(tool), trace_dir=trace_dir)
        answer = agent.run(image, question, options=option or None)
    except (LookCloserError, ValueError) as exc:
        _fail(str(exc))
    if save_vis is not None:
        _save_vis(image, answer.findings, save_vis)
    if as_json:
        print(json.dumps(answer.to_json(), ensure_ascii=False))
        return
    out.print(f"[bold]answer:[/] {answer.text}" + (f"  (option {chr(65 + answer.choice)})" if answer.choice is not None else ""))
    if answer.findings:
        _print_findings(answer.findings)
    stats = answer.stats
    out.print(f"[dim]{stats.vlm_calls} VLM calls, {stats.tool_calls} tool calls, {stats.search_steps} search steps, "
              f"{stats.seconds:.1f} s; trace: {answer.trace_dir}[/]")


@app.command()
def find(
    image: Path = typer.Argument(..., help="Image file."),
    target: str = typer.Argument(..., help="What to find, e.g. 'the red sign' or 'text'."),
    kind: Optional[str] = typer.Option(None, "--kind", help="object (find one) or text (read all text); default: text when TARGET is 'text', else object."),
    tool: Optional[list[str]] = typer.Option(None, "--tool", help="ROLE=NAME, e.g. localizer=whole_image (repeat)."),
    as_json: bool = typer.Option(False, "--json", help="Print {\"findings\": [...]} as JSON."),
    save_vis: Optional[Path] = typer.Option(None, "--save-vis", help="Write a PNG of the search and findings."),
    trace_dir: Path = typer.Option(Path("traces"), "--trace-dir", help="Where the search's trace is written."),
) -> None:
    """SEARCH only (no VLM): locate TARGET in IMAGE; with --kind text, read every line of text."""
    from lookcloser.agent import Agent
    from lookcloser.types import Target

    if kind is None:
        kind = "text" if target.strip().casefold() in TEXT_WORDS else "object"
    if kind not in ("object", "text"):
        _fail(f"--kind must be 'object' or 'text', got '{kind}'")
    try:
        agent = Agent(tools=_parse_tools(tool), trace_dir=trace_dir)  # no VLM named: find gives tools none
        findings = agent.find(image, Target(name=target, kind=kind))
    except (LookCloserError, ValueError) as exc:
        _fail(str(exc))
    if save_vis is not None:
        _save_vis(image, findings, save_vis)
    if as_json:
        print(json.dumps({"findings": [f.to_json() for f in findings]}, ensure_ascii=False))
        return
    _print_findings(findings)


def _print_findings(findings: list) -> None:
    table = Table("name", "kind", "status", "box", "score", "text", "tool", title="findings")
    for f in findings:
        row = f.to_json()
        table.add_row(row["name"], row["kind"], row["status"], str(row["box"] or ""),
                      "" if row["score"] is None else f"{row['score']:.2f}", row["text"] or "",
                      row["tool"] + (f" ({row['error']})" if row["error"] else ""))
    out.print(table)


def _save_vis(image_path: Path, findings: list, path: Path) -> None:
    from lookcloser.images import load_image
    from lookcloser.visualize import draw_findings

    image = load_image(image_path)
    if any(f.search for f in findings):  # the V* searcher's record: draw its path too
        from lookcloser.tools.vstar.visualize import draw_search

        drawn = draw_search(image, findings)
    else:
        drawn = draw_findings(image, findings)
    path.parent.mkdir(parents=True, exist_ok=True)
    drawn.save(path)
    err.print(f"[dim]visualisation written to {path}[/]")


app.add_typer(trace_app, name="trace", help="Show, report on and upload saved traces.")


def main() -> None:
    try:
        app()
    except LookCloserError as exc:  # anything that slipped past a command's own handling
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
