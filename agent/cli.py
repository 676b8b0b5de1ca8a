"""The `lookcloser` command: ask, find, tools, eval, eval-search, trace.

Settings (`--config FILE`, `--tool ROLE=NAME`, `--tool ROLE.OPTION=VALUE`) are read by
`lookcloser.settings`; errors that a setting fixes are worded in CLI terms (`Agent(spelling="cli")`).

Start-up is kept to typer and rich: the agent (LangGraph, transformers, torch), Pillow and the
`trace` commands are imported only inside the commands that use them, so `lookcloser --help` and
mistakes in the arguments answer at once. Everything a command can check without a model is
checked first: the image file, empty arguments, --tool, --kind, --save-vis and --trace-dir.

Errors a user can fix (missing file, unreadable image, unknown tool, model that cannot load, a
file option that cannot be written) print one line `error: ...` on stderr and exit with status 2,
never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from lookcloser.errors import LookCloserError

TRACE_HELP = "Show, report on and upload saved traces."

#: Extensions --save-vis can write (Pillow picks the format from the extension).
VIS_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")

#: Virtual file systems: writable-looking for root, but no place for files.
VIRTUAL_ROOTS = (Path("/proc"), Path("/sys"))

TOOL_HELP = ("ROLE=NAME (e.g. localizer=whole_image) or ROLE.OPTION=VALUE (e.g. detector.model=/models/gdino); "
             "repeat. Overrides --config.")
CONFIG_HELP = "TOML settings file: vlm, [tools] (role = name, or a table of name and options), [config] (AgentConfig)."

#: `lookcloser find IMAGE text` means "read all the text" without needing --kind text.
TEXT_WORDS = {"text", "all text", "the text", "words", "all the text"}


class _TraceStub(TyperGroup):
    """Stands for `lookcloser trace` in the command list; the real group is imported when used."""


def _trace_group() -> Any:
    from lookcloser.tracing.cli import trace_app

    group = typer.main.get_command(trace_app)
    group.name = "trace"
    return group


class _MainGroup(TyperGroup):
    """The top-level group: `trace` is listed from a stub and loaded only when it is invoked."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands.setdefault("trace", _TraceStub(name="trace", help=TRACE_HELP, no_args_is_help=True))

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if isinstance(command, _TraceStub):
            command = _trace_group()
        return name, command, rest


app = typer.Typer(cls=_MainGroup, add_completion=False, no_args_is_help=True,
                  help="Answer questions about small details in large images (Show, Search, Tell).")
err = Console(stderr=True)
out = Console()


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def _fail(message: str) -> None:
    err.print(Text.assemble(("error:", "bold red"), " ", _one_line(message)), soft_wrap=True)
    raise typer.Exit(2)


def _note(message: str) -> None:
    err.print(Text(_one_line(message), style="dim"), soft_wrap=True)


# ------------------------------------------------------------------------ checks before any work
def _check_image(value: str) -> Path:
    """The image argument as a readable, non-empty file; the same messages load_image gives."""
    if not value.strip():
        _fail("IMAGE must not be empty: give the path of an image file")
    if value[:8].lower().startswith(("http://", "https://")):
        _fail(f"{value}: image URLs are not fetched; download the image and pass the file's path")
    path = Path(value)
    try:
        if not path.exists():
            _fail(f"image file not found: {path}")
        if path.is_dir():
            _fail(f"image path is a directory, not a file: {path}")
        with open(path, "rb"):
            pass
        if path.stat().st_size == 0:
            _fail(f"image file is empty (0 bytes): {path}")
    except PermissionError:
        _fail(f"permission denied: cannot read image file {path}")
    except OSError as exc:
        _fail(f"cannot read image file {path}: {exc.strerror or exc}")
    return path


def _virtual_root(path: Path) -> Path | None:
    return next((root for root in VIRTUAL_ROOTS if path == root or root in path.parents), None)


def _writable(path: Path) -> bool:
    """Files can be written in (or to) `path` (read-only file systems say no, even to root)."""
    return os.access(path, os.W_OK | os.X_OK) if path.is_dir() else os.access(path, os.W_OK)


def _directory_problem(path: Path) -> str | None:
    """Why files cannot be written in directory `path` (existing or to be created), or None."""
    try:
        return _directory_problem_of(path.expanduser().resolve())
    except (OSError, RuntimeError) as exc:  # unsearchable parent, symlink loop
        return f"cannot check {path}: {getattr(exc, 'strerror', None) or exc}"


def _directory_problem_of(path: Path) -> str | None:
    root = _virtual_root(path)
    if root is not None:
        return f"{path} is a virtual file system" if path == root else f"{path} is under {root}, a virtual file system"
    if path.exists():
        if not path.is_dir():
            return f"{path} exists and is not a directory"
        if not _writable(path):
            return f"directory {path} is not writable (permission denied)"
        return None
    ancestor = next(p for p in path.parents if p.exists())
    if not ancestor.is_dir():
        return f"{path} cannot be created: {ancestor} is not a directory"
    if not _writable(ancestor):
        return f"{path} cannot be created: {ancestor} is not writable (permission denied)"
    return None


def _check_save_vis(value: str) -> Path:
    """--save-vis as a writable image file path with a known extension."""
    if not value.strip():
        _fail("--save-vis must not be empty: give a file name such as findings.png")
    path = Path(value)
    if value.endswith(("/", os.sep)):
        _fail(f"--save-vis {value} names a directory; give a file name such as {path / 'findings.png'}")
    extension = path.suffix.lower()
    if extension not in VIS_EXTENSIONS:
        _fail(f"--save-vis {path}: unknown image extension '{extension or '(none)'}'; "
              f"use one of {', '.join(VIS_EXTENSIONS)}")
    path = path.expanduser()
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError) as exc:
        _fail(f"--save-vis {path} cannot be checked: {getattr(exc, 'strerror', None) or exc}")
    if resolved.is_dir():
        _fail(f"--save-vis {path} is a directory; give a file name such as {path / 'findings.png'}")
    problem = _directory_problem(resolved.parent)
    if problem is None and resolved.exists() and not _writable(resolved):
        problem = f"{resolved} is not writable (permission denied)"
    if problem:
        _fail(f"--save-vis {path} cannot be written: {problem}")
    return path


def _check_trace_dir(path: Path) -> None:
    problem = _directory_problem(path)
    if problem:
        _fail(f"--trace-dir {path} cannot hold traces: {problem}")


def _parse_tools(values: list[str] | None) -> None:
    """--tool flags well-formed (ROLE=NAME, ROLE.OPTION=VALUE) before any work; read with the file later."""
    from lookcloser.settings import parse_tool_flags

    try:
        parse_tool_flags(values)
    except LookCloserError as exc:
        _fail(str(exc))


def _settings(config_file: Path | None, tool: list[str] | None, vlm: str | None = None,
              timeout: float | None = None) -> Any:
    """The --config file with the flags over it (lookcloser.settings); SettingsError is one line."""
    from lookcloser.settings import load

    return load(config_file, vlm=vlm, tool_flags=tool, config={"timeout": timeout} if timeout is not None else None)


def _agent_error(exc: BaseException) -> None:
    """One line for errors while building or running the agent."""
    if isinstance(exc, ModuleNotFoundError):
        _fail(f"{exc}: a package lookcloser needs for this is not installed (see the README's install extras)")
    _fail(str(exc) or type(exc).__name__)


def _missing_dependency(exc: ImportError) -> bool:
    """A third-party package is missing (not a broken lookcloser module, which should show its traceback)."""
    name = getattr(exc, "name", None) or ""
    return isinstance(exc, ModuleNotFoundError) and bool(name) and not name.startswith("lookcloser")


# ------------------------------------------------------------------------------------- commands
@app.command()
def ask(
    image: str = typer.Argument(..., help="Image file."),
    question: str = typer.Argument(..., help="Question about the image."),
    option: Optional[list[str]] = typer.Option(None, "--option", "-o", help="A multiple-choice option (repeat)."),
    vlm: Optional[str] = typer.Option(None, "--vlm", help="transformers:ID_OR_PATH or openai:MODEL@URL (default: transformers:Qwen/Qwen2.5-VL-3B-Instruct)."),
    tool: Optional[list[str]] = typer.Option(None, "--tool", help=TOOL_HELP),
    config_file: Optional[Path] = typer.Option(None, "--config", help=CONFIG_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    save_vis: Optional[str] = typer.Option(None, "--save-vis", help=f"Write an image with the findings drawn ({', '.join(VIS_EXTENSIONS)})."),
    trace_dir: Path = typer.Option(Path("traces"), "--trace-dir", help="Where the run's trace is written."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Seconds for the whole question (VLM calls and search); default: no limit."),
) -> None:
    """Ask QUESTION about IMAGE: the VLM answers, searching for missing details first when it needs to."""
    path = _check_image(image)
    if not question.strip():
        _fail("QUESTION must not be empty")
    if option and any(not o.strip() for o in option):
        _fail("--option must not be empty")
    _parse_tools(tool)
    if timeout is not None and not (0 < timeout < float("inf")):
        _fail(f"--timeout must be a positive number of seconds, got {timeout:g}")
    vis_path = _check_save_vis(save_vis) if save_vis is not None else None
    _check_trace_dir(trace_dir)

    try:
        from lookcloser.agent import Agent
        from lookcloser.errors import AnswerError

        settings = _settings(config_file, tool, vlm, timeout).agent_kwargs()
        agent = Agent(**settings, trace_dir=trace_dir, spelling="cli")
        with _waiting(f"asking {settings['vlm'] or 'the default VLM'}", settings["config"].timeout):
            answer = agent.run(path, question, options=option or None)
    except AnswerError as exc:  # the search's findings first, then the one error line
        partial = exc.partial
        if as_json and partial is not None:
            print(json.dumps(partial.to_json(), ensure_ascii=False), flush=True)
        elif partial is not None and partial.findings:
            _print_findings(partial.findings)
        _agent_error(exc)
    except (LookCloserError, ValueError) as exc:
        _agent_error(exc)
    except ImportError as exc:
        if not _missing_dependency(exc):
            raise
        _agent_error(exc)
    vis_error = _save_vis(path, answer.findings, vis_path) if vis_path is not None else None
    if as_json:
        print(json.dumps(answer.to_json(), ensure_ascii=False), flush=True)
        _note(f"trace: {answer.trace_dir}" if answer.trace_dir else "no trace written")
    else:
        choice = f"  (option {chr(65 + answer.choice)})" if answer.choice is not None else ""
        out.print(Text.assemble(("answer:", "bold"), f" {answer.text}{choice}"))
        if answer.findings:
            _print_findings(answer.findings)
        stats = answer.stats
        out.print(f"[dim]{stats.vlm_calls} VLM calls, {stats.tool_calls} tool calls, {stats.search_steps} search "
                  f"steps, {stats.seconds:.1f} s; trace: {answer.trace_dir or 'none written'}[/]", highlight=False)
    if vis_error:
        _fail(vis_error)


@app.command()
def find(
    images: list[str] = typer.Argument(..., metavar="IMAGE...", help="Image file(s) or directories of images."),
    target: str = typer.Argument(..., help="What to find, e.g. 'the red sign' or 'text'."),
    kind: Optional[str] = typer.Option(None, "--kind", help="object (find one) or text (read all text); default: text when TARGET is 'text', else object."),
    tool: Optional[list[str]] = typer.Option(None, "--tool", help=TOOL_HELP),
    config_file: Optional[Path] = typer.Option(None, "--config", help=CONFIG_HELP + " Its vlm is not used: find runs no VLM."),
    as_json: bool = typer.Option(False, "--json", help="Print {\"findings\": [...]} as JSON."),
    save_vis: Optional[str] = typer.Option(None, "--save-vis", help=f"Write an image of the search and findings ({', '.join(VIS_EXTENSIONS)})."),
    trace_dir: Path = typer.Option(Path("traces"), "--trace-dir", help="Where the search's trace is written."),
) -> None:
    """SEARCH only (no VLM): locate TARGET in IMAGE; with --kind text, read every line of text (several images or a directory: JSON Lines)."""
    many = len(images) > 1 or Path(images[0]).is_dir()
    path = None if many else _check_image(images[0])
    name = " ".join(target.split())
    if not name:
        _fail("TARGET must not be empty: say what to find, e.g. 'the red sign' or 'text'")
    if kind is None:
        kind = "text" if name.casefold() in TEXT_WORDS else "object"
    if kind not in ("object", "text"):
        _fail(f"--kind must be 'object' or 'text', got '{kind}'")
    _parse_tools(tool)
    vis_path = _check_save_vis(save_vis) if save_vis is not None else None
    _check_trace_dir(trace_dir)
    if many:
        if vis_path is not None:
            _fail("--save-vis draws one image: give one IMAGE")
        from lookcloser.eval.cli import expand_images, find_many
        from lookcloser.types import Target

        try:
            settings = _settings(config_file, tool).agent_kwargs()
        except (LookCloserError, ValueError) as exc:
            _agent_error(exc)
        settings.pop("vlm")  # no VLM named: find gives tools none
        find_many(expand_images(images), Target(name=name, kind=kind), settings, trace_dir)
        return

    try:
        from lookcloser.agent import Agent
        from lookcloser.types import Target

        settings = _settings(config_file, tool).agent_kwargs()
        settings.pop("vlm")  # no VLM named: find gives tools none
        agent = Agent(**settings, trace_dir=trace_dir, spelling="cli")
        findings = agent.find(path, Target(name=name, kind=kind))
    except (LookCloserError, ValueError) as exc:
        _agent_error(exc)
    except ImportError as exc:
        if not _missing_dependency(exc):
            raise
        _agent_error(exc)
    vis_error = _save_vis(path, findings, vis_path) if vis_path is not None else None
    if as_json:
        print(json.dumps({"findings": [f.to_json() for f in findings]}, ensure_ascii=False), flush=True)
    else:
        _print_findings(findings)
    _note(f"trace written under {trace_dir}")
    if vis_error:
        _fail(vis_error)


@app.command("tools")
def tools_command(
    tool: Optional[list[str]] = typer.Option(None, "--tool", help=TOOL_HELP),
    config_file: Optional[Path] = typer.Option(None, "--config", help=CONFIG_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list, one object per tool."),
) -> None:
    """List every registered tool by role: backend, default model, whether it can run here (checked
    offline, with the --config / --tool settings) and the command that fixes it."""
    _parse_tools(tool)
    try:
        from lookcloser.runtime import Context
        from lookcloser.tools.report import rows, table

        context = Context(tools=_settings(config_file, tool).tools)
    except (LookCloserError, ValueError) as exc:
        _agent_error(exc)
    found = rows(context.tools, context.tool_options)
    if as_json:
        print(json.dumps(found, ensure_ascii=False), flush=True)
    else:
        out.print(table(found))
        _note("* = the tool each role uses with these settings")


@contextmanager
def _waiting(what: str, limit: float | None) -> Iterator[None]:
    """On a terminal, a spinner on stderr saying what runs and for how long (nothing when piped)."""
    if not err.is_terminal:
        yield
        return
    started = time.monotonic()
    stop = threading.Event()
    of = f" of {limit:g} s" if limit is not None else ""
    with err.status(f"{what}: 0 s{of}") as status:
        def tick() -> None:
            while not stop.wait(1.0):
                status.update(f"{what}: waiting, {time.monotonic() - started:.0f} s{of}")

        ticker = threading.Thread(target=tick, name="lookcloser-status", daemon=True)
        ticker.start()
        try:
            yield
        finally:
            stop.set()
            ticker.join()


def _print_findings(findings: list) -> None:
    from rich.table import Table

    table = Table("name", "kind", "status", "box", "score", "text", "tool", title="findings")
    for f in findings:
        row = f.to_json()
        table.add_row(row["name"], row["kind"], row["status"], str(row["box"] or ""),
                      "" if row["score"] is None else f"{row['score']:.2f}", row["text"] or "",
                      row["tool"] + (f" ({row['error']})" if row["error"] else ""))
    out.print(table)


def _save_vis(image_path: Path, findings: list, path: Path) -> str | None:
    """Draw and write the visualisation; the error message when that fails (the result still prints)."""
    try:
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
    except (LookCloserError, OSError, ValueError) as exc:
        return f"could not write the visualisation to {path}: {exc}"
    _note(f"visualisation written to {path}")
    return None


def _flush_langsmith() -> None:
    """Runs queued for LangSmith (LANGSMITH_TRACING=true) are sent in the background: wait for them before
    the process exits, or the last ones are lost. Only when a command loaded LangChain's tracer."""
    tracers = sys.modules.get("langchain_core.tracers.langchain")
    if tracers is not None:
        tracers.wait_for_all_tracers()


from lookcloser.eval.cli import register as _register_eval  # noqa: E402 - light: typer, rich, no models

_register_eval(app)  # `eval`, `eval-search`


def main() -> None:
    try:
        app()
    except LookCloserError as exc:  # anything that slipped past a command's own handling
        err.print(Text.assemble(("error:", "bold red"), " ", _one_line(str(exc))), soft_wrap=True)
        sys.exit(2)
    finally:
        _flush_langsmith()


if __name__ == "__main__":
    main()
