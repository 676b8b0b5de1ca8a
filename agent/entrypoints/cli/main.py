"""The `lookcloser` command: ask, find, tools, mcp, eval, eval-search, trace.

One error handler for every subcommand (`_MainGroup.invoke`): an error a user can fix (a LookCloserError,
a missing file or a file option that cannot be written, a package that is not installed, a mistyped
argument) prints one line `error: ...` on stderr and exits with status 2, never a traceback. Commands
only raise; what a command prints before failing (ask's partial findings, find's findings when a model
cannot load, eval's summary when every item failed) it prints first, then raises.

Paths are typer parameters with a parser that checks them before any work: the image (a regular file of
bounded size: a pipe or a device is refused without being opened, `lookcloser.imaging.files`), --save-vis,
--trace-dir, --out. Settings (`--config FILE`, `--tool ROLE=NAME`, `--tool ROLE.OPTION=VALUE`) are read by
`lookcloser.runtime.settings` before any model loads; errors that a setting fixes are worded in CLI terms
(`Agent(spelling="cli")`).

Start-up is kept to typer and rich: the agent (LangGraph, transformers, torch), Pillow, the eval and the
`trace` commands are imported only inside the commands that use them, so `lookcloser --help` and mistakes
in the arguments answer at once.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text
from typer.core import TyperGroup
from typer.exceptions import TyperException

from lookcloser.core.errors import InputError, LookCloserError
from lookcloser.imaging.files import IMAGE_SUFFIXES, open_image_file

TRACE_HELP = "Show, report on and upload saved traces."

#: Exit status of every error a user can fix.
EXIT_ERROR = 2

#: Extensions --save-vis can write (Pillow picks the format from the extension).
VIS_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")

#: Virtual file systems: writable-looking for root, but no place for files.
VIRTUAL_ROOTS = (Path("/proc"), Path("/sys"))

TOOL_HELP = ("ROLE=NAME (e.g. localizer=whole_image) or ROLE.OPTION=VALUE (e.g. detector.model=/models/gdino; "
             "VALUE may be TOML or JSON); repeat. Overrides --config.")
CONFIG_HELP = "TOML settings file: vlm, [tools] (role = name, or a table of name and options), [config] (AgentConfig)."
VLM_HELP = "transformers:ID_OR_PATH or openai:MODEL@URL (default: transformers:Qwen/Qwen2.5-VL-3B-Instruct)."
WORKERS_HELP = "Items at once: threads sharing one agent (models loaded once), or Ray actors with --ray."

#: `lookcloser find IMAGE text` means "read all the text" without needing --kind text.
TEXT_WORDS = {"text", "all text", "the text", "words", "all the text"}

#: How the search node records a tool's exception in a failed finding ("TYPE: message").
LOAD_ERROR = "ModelLoadError: "

err = Console(stderr=True)
out = Console()


class CommandFailed(LookCloserError):
    """A command did its work and printed it, but must exit with status 2: every eval item failed, a model
    could not load, the visualisation could not be written, the run was interrupted."""


# ----------------------------------------------------------------------- the one error handler
def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def _error_line(message: str) -> None:
    err.print(Text.assemble(("error:", "bold red"), " ", _one_line(message)), soft_wrap=True)


def _note(message: str) -> None:
    err.print(Text(_one_line(message), style="dim"), soft_wrap=True)


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


class _MainGroup(TyperGroup):
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


app = typer.Typer(cls=_MainGroup, add_completion=False, no_args_is_help=True,
                  help="Answer questions about small details in large images (Show, Search, Tell).")


# ------------------------------------------------------------- path parameters, checked at parse time
class _Refused(LookCloserError):
    """A parameter's check failed: raised through typer's parsing as is (typer words a ValueError as "Invalid
    value for ...: Value error, ..."), so the handler prints the check's own line."""


def _parameter(check: Callable[[Any], Path]) -> Callable[[Any], Path]:
    def parse(value: Any) -> Path:
        try:
            return check(value)
        except LookCloserError as exc:
            raise _Refused(str(exc)) from exc

    return parse


def _image_file(value: Any) -> Path:
    """IMAGE: a readable, non-empty regular image file (the messages load_image gives)."""
    text = str(value)
    if not text.strip():
        raise InputError("IMAGE must not be empty: give the path of an image file")
    if text[:8].lower().startswith(("http://", "https://")):
        raise InputError(f"{text}: image URLs are not fetched; download the image and pass the file's path")
    path = Path(text)
    open_image_file(path).close()  # a pipe or a device is refused without being opened
    return path


def _image_or_folder(value: Any) -> Path:
    """find's IMAGE...: an image file as for ask, or a folder whose image files are searched."""
    path = Path(str(value))
    return path if str(value).strip() and path.is_dir() else _image_file(value)


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


def _vis_file(value: Any) -> Path:
    """--save-vis: a writable image file path with a known extension."""
    text = str(value)
    if not text.strip():
        raise InputError("--save-vis must not be empty: give a file name such as findings.png")
    path = Path(text)
    if text.endswith(("/", os.sep)):
        raise InputError(f"--save-vis {text} names a directory; give a file name such as {path / 'findings.png'}")
    extension = path.suffix.lower()
    if extension not in VIS_EXTENSIONS:
        raise InputError(f"--save-vis {path}: unknown image extension '{extension or '(none)'}'; "
                         f"use one of {', '.join(VIS_EXTENSIONS)}")
    path = path.expanduser()
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError) as exc:
        raise InputError(f"--save-vis {path} cannot be checked: {getattr(exc, 'strerror', None) or exc}") from None
    if resolved.is_dir():
        raise InputError(f"--save-vis {path} is a directory; give a file name such as {path / 'findings.png'}")
    problem = _directory_problem(resolved.parent)
    if problem is None and resolved.exists() and not _writable(resolved):
        problem = f"{resolved} is not writable (permission denied)"
    if problem:
        raise InputError(f"--save-vis {path} cannot be written: {problem}")
    return path


def _folder_for(flag: str, what: str) -> Callable[[Any], Path]:
    """A parser for a folder option (`flag`) that must be able to hold `what`."""
    def check(value: Any) -> Path:
        path = Path(str(value))
        problem = _directory_problem(path)
        if problem:
            raise InputError(f"{flag} {path} cannot hold {what}: {problem}")
        return path
    return check


_trace_folder = _folder_for("--trace-dir", "traces")
_out_folder = _folder_for("--out", "results")


def _image_folder(value: Any) -> Path:
    """--image-dir: an existing folder (clients may name the image files in it)."""
    text = str(value)
    if not text.strip():
        raise InputError("--image-dir must not be empty: give a folder of images")
    path = Path(text).expanduser()
    if not path.exists():
        raise InputError(f"--image-dir {path} does not exist")
    if not path.is_dir():
        raise InputError(f"--image-dir {path} is not a directory")
    return path


def _settings(config_file: Path | None, tool: list[str] | None, vlm: str | None = None,
              timeout: float | None = None) -> Any:
    """The --config file with the flags over it (lookcloser.runtime.settings), before any model loads."""
    from lookcloser.runtime.settings import load  # noqa: PLC0415

    return load(config_file, vlm=vlm, tool_flags=tool, config={"timeout": timeout} if timeout is not None else None)


# ------------------------------------------------------------------------------ ask, find, tools
@app.command()
def ask(
    image: Path = typer.Argument(..., parser=_parameter(_image_file), metavar="IMAGE", help="Image file."),
    question: str = typer.Argument(..., help="Question about the image."),
    option: Optional[list[str]] = typer.Option(None, "--option", "-o", help="A multiple-choice option (repeat)."),
    vlm: Optional[str] = typer.Option(None, "--vlm", help=VLM_HELP),
    tool: Optional[list[str]] = typer.Option(None, "--tool", help=TOOL_HELP),
    config_file: Optional[Path] = typer.Option(None, "--config", help=CONFIG_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    save_vis: Optional[Path] = typer.Option(None, "--save-vis", parser=_parameter(_vis_file), metavar="FILE",
                                            help=f"Write an image with the findings drawn ({', '.join(VIS_EXTENSIONS)})."),
    trace_dir: Path = typer.Option(Path("traces"), "--trace-dir", parser=_parameter(_trace_folder), metavar="DIR",
                                   help="Where the run's trace is written."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Seconds for the whole question (VLM calls and search); default: no limit."),
) -> None:
    """Ask QUESTION about IMAGE: the VLM answers, searching for missing details first when it needs to."""
    if not question.strip():
        raise InputError("QUESTION must not be empty")
    if option and any(not o.strip() for o in option):
        raise InputError("--option must not be empty")
    if timeout is not None and not (0 < timeout < float("inf")):
        raise InputError(f"--timeout must be a positive number of seconds, got {timeout:g}")
    settings = _settings(config_file, tool, vlm, timeout).agent_kwargs()

    from lookcloser.agent import Agent  # noqa: PLC0415
    from lookcloser.core.errors import AnswerError  # noqa: PLC0415

    agent = Agent(**settings, trace_dir=trace_dir, spelling="cli")
    try:
        with _waiting(f"asking {settings['vlm'] or 'the default VLM'}", settings["config"].timeout) as progress:
            if progress is None or as_json:
                answer = agent.run(image, question, options=option or None)
            else:  # the search's live progress (the same events as the graph's custom stream)
                answer = _streamed(agent, image, question, option or None, progress)
    except AnswerError as exc:  # the search's findings first, then the one error line
        if as_json and exc.partial is not None:
            print(json.dumps(exc.partial.to_json(), ensure_ascii=False), flush=True)
        elif exc.partial is not None and exc.partial.findings:
            _print_findings(exc.partial.findings)
        raise
    vis_error = _save_vis(image, answer.findings, save_vis) if save_vis is not None else None
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
        raise CommandFailed(vis_error)


@app.command()
def find(
    images: list[Path] = typer.Argument(..., parser=_parameter(_image_or_folder), metavar="IMAGE...",
                                        help="Image file(s) or directories of images."),
    target: str = typer.Argument(..., help="What to find, e.g. 'the red sign' or 'text'."),
    kind: Optional[str] = typer.Option(None, "--kind", help="object (find one) or text (read all text); default: text when TARGET is 'text', else object."),
    tool: Optional[list[str]] = typer.Option(None, "--tool", help=TOOL_HELP),
    config_file: Optional[Path] = typer.Option(None, "--config", help=CONFIG_HELP + " Its vlm is not used: find runs no VLM."),
    as_json: bool = typer.Option(False, "--json", help="Print {\"findings\": [...]} as JSON."),
    save_vis: Optional[Path] = typer.Option(None, "--save-vis", parser=_parameter(_vis_file), metavar="FILE",
                                            help=f"Write an image of the search and findings ({', '.join(VIS_EXTENSIONS)})."),
    trace_dir: Path = typer.Option(Path("traces"), "--trace-dir", parser=_parameter(_trace_folder), metavar="DIR",
                                   help="Where the search's trace is written."),
) -> None:
    """SEARCH only (no VLM): locate TARGET in IMAGE; with --kind text, read every line of text (several images
    or a directory: JSON Lines, one per image). Exit status 2 when the localizer's model cannot load."""
    name = " ".join(target.split())
    if not name:
        raise InputError("TARGET must not be empty: say what to find, e.g. 'the red sign' or 'text'")
    if kind is None:
        kind = "text" if name.casefold() in TEXT_WORDS else "object"
    if kind not in ("object", "text"):
        raise InputError(f"--kind must be 'object' or 'text', got '{kind}'")
    many = len(images) > 1 or images[0].is_dir()
    if many and save_vis is not None:
        raise InputError("--save-vis draws one image: give one IMAGE")
    paths = _expand_images(images) if many else images
    settings = _settings(config_file, tool).agent_kwargs()
    settings.pop("vlm")  # no VLM named: find gives tools none

    from lookcloser.agent import Agent  # noqa: PLC0415
    from lookcloser.core.types import Target  # noqa: PLC0415

    agent = Agent(**settings, trace_dir=trace_dir, spelling="cli")
    if many:
        _find_many(agent, paths, Target(name=name, kind=kind), trace_dir)
        return
    findings = agent.find(paths[0], Target(name=name, kind=kind))
    vis_error = _save_vis(paths[0], findings, save_vis) if save_vis is not None else None
    if as_json:
        print(json.dumps({"findings": [f.to_json() for f in findings]}, ensure_ascii=False), flush=True)
    else:
        _print_findings(findings)
    _note(f"trace written under {trace_dir}")
    load_error = _load_error(findings)
    if load_error or vis_error:
        raise CommandFailed(load_error or vis_error)


def _load_error(findings: list) -> str | None:
    """The message of a model that could not load (a failed finding the search node recorded), or None."""
    return next((f.error[len(LOAD_ERROR):] for f in findings
                 if f.status == "failed" and (f.error or "").startswith(LOAD_ERROR)), None)


def _expand_images(paths: list[Path]) -> list[Path]:
    """Files as given, directories as their image files (sorted; only regular files)."""
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            found.append(path)
            continue
        inside = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not inside:
            raise InputError(f"directory {path} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
        found.extend(inside)
    return found


def _find_many(agent: Any, paths: list[Path], target: Any, trace_dir: Path) -> None:
    """SEARCH for `target` in every image with one agent (models loaded once, `Agent.batch_as_completed`):
    one JSON line per image, in order. A broken image is a line with `error` (the others still run); a
    model that cannot load stops the run after its line (exit status 2)."""
    started: dict[int, float] = {}
    failed = done = 0

    def items() -> Iterator[dict[str, Any]]:
        for index, path in enumerate(paths):
            started[index] = time.perf_counter()
            yield {"image": path, "target": target}

    with _progress("find", total=len(paths)) as (_, on_row):
        try:
            for index, result in agent.batch_as_completed(items(), max_workers=1, return_exceptions=True):
                line: dict[str, Any] = {"image": str(paths[index]), "findings": [], "error": None}
                if isinstance(result, BaseException):
                    failed += 1
                    line["error"] = _one_line(f"{type(result).__name__}: {result}")
                else:
                    line["findings"] = [f.to_json() for f in result]
                line["seconds"] = round(time.perf_counter() - started[index], 3)
                print(json.dumps(line, ensure_ascii=False), flush=True)
                done += 1
                on_row(line)
                load_error = None if line["error"] else _load_error(result)
                if load_error:
                    raise CommandFailed(load_error)
        except KeyboardInterrupt:
            raise CommandFailed(f"interrupted after {done} of {len(paths)} images") from None
    _note(f"{len(paths)} images searched, {failed} failed; traces under {trace_dir}")


@app.command("tools")
def tools_command(
    tool: Optional[list[str]] = typer.Option(None, "--tool", help=TOOL_HELP),
    config_file: Optional[Path] = typer.Option(None, "--config", help=CONFIG_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list, one object per tool."),
) -> None:
    """List every registered tool by role: backend, default model, whether it can run here (checked
    offline, with the --config / --tool settings) and the command that fixes it."""
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


# ------------------------------------------------------------------------------------------ mcp
class NotInstalled(LookCloserError):
    """An optional extra a command needs is not installed; the message says which pip command adds it."""


@app.command("mcp")
def mcp_command(
    image_dir: Optional[list[Path]] = typer.Option(None, "--image-dir", parser=_parameter(_image_folder), metavar="DIR",
                                                   help="A folder whose image files clients may name by path (repeat); "
                                                        "without it clients send images as data URLs or base64 only."),
    port: Optional[int] = typer.Option(None, "--port", min=1, max=65535,
                                       help="Serve streamable HTTP on this port (at /mcp) instead of stdio."),
    host: str = typer.Option("127.0.0.1", "--host", help="With --port: the address to listen on (no authentication: "
                                                         "keep it local or put a proxy in front)."),
    vlm: Optional[str] = typer.Option(None, "--vlm", help=VLM_HELP),
    tool: Optional[list[str]] = typer.Option(None, "--tool", help=TOOL_HELP),
    config_file: Optional[Path] = typer.Option(None, "--config", help=CONFIG_HELP),
    trace_dir: Optional[Path] = typer.Option(None, "--trace-dir", parser=_parameter(_trace_folder), metavar="DIR",
                                             help="Write a trace of each tool call here (default: $LOOKCLOSER_TRACE_DIR, else none)."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Seconds for each call's question or search; default: no limit."),
) -> None:
    """Serve ask, find and read_text to MCP clients (Claude Desktop, IDE agents): over stdio, or streamable
    HTTP with --port. One agent answers every call (models load once)."""
    if timeout is not None and not (0 < timeout < float("inf")):
        raise InputError(f"--timeout must be a positive number of seconds, got {timeout:g}")
    if port is None and host != "127.0.0.1":
        raise InputError("--host goes with --port (the address of the HTTP server); stdio needs neither")
    if port is not None:
        _check_listen(host, port)
    settings = _settings(config_file, tool, vlm, timeout).agent_kwargs()
    try:
        from lookcloser.entrypoints.mcp_server import serve  # noqa: PLC0415
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in ("mcp", "mcp_types"):
            raise
        raise NotInstalled("`lookcloser mcp` needs the MCP SDK, which is not installed: pip install 'lookcloser[mcp]'") from None
    from lookcloser.agent import Agent  # noqa: PLC0415

    folders = list(image_dir or [])
    if settings["config"].image_dir:  # a --config file's [config] image_dir is one more folder
        folders.append(Path(settings["config"].image_dir))
    agent = Agent(**settings, trace_dir=trace_dir, spelling="cli")
    where = f"http://{host}:{port}/mcp" if port is not None else "stdio"
    _note(f"lookcloser MCP server on {where}; image folders: {', '.join(map(str, folders)) or 'none (data URLs and base64 only)'}")
    try:
        serve(agent, folders, port=port, host=host)
    except KeyboardInterrupt:
        pass


def _check_listen(host: str, port: int) -> None:
    """--host/--port can be listened on (a port in use is one line now, not a server log after the models load)."""
    import socket  # noqa: PLC0415

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


# ------------------------------------------------------------------------------ eval, eval-search
@app.command("eval")
def eval_command(
    paths: Optional[list[Path]] = typer.Argument(None, metavar="DATASET", help="V* Bench folder, .jsonl file, .parquet or HF save_to_disk folder, HR-Bench .tsv, MME-RealWorld .json (with --compare: two or more run folders)."),
    vlm: Optional[str] = typer.Option(None, "--vlm", help=VLM_HELP),
    out_dir: Optional[Path] = typer.Option(None, "--out", parser=_parameter(_out_folder), metavar="DIR",
                                           help="Run folder: results.jsonl, summary.json/.md/.svg, traces/."),
    tool: Optional[list[str]] = typer.Option(None, "--tool", help="ROLE=NAME, e.g. localizer=whole_image (repeat)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N items."),
    resume: bool = typer.Option(False, "--resume", help="Keep the finished items of --out, ask its error rows again, run the rest."),
    workers: int = typer.Option(1, "--workers", help=WORKERS_HELP),
    ray: bool = typer.Option(False, "--ray", help="Run on Ray: a local cluster, or --address."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster to join ('auto', 'ray://HOST:10001')."),
    ray_cpus: float = typer.Option(1.0, "--ray-cpus", help="CPUs per Ray actor (fractions allowed)."),
    ray_gpus: float = typer.Option(0.0, "--ray-gpus", help="GPUs per Ray actor (1 for a local VLM on a GPU node)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the option shuffling (recorded per item)."),
    traces: bool = typer.Option(True, "--traces/--no-traces", help="Write a trace per item under OUT/traces."),
    compare: bool = typer.Option(False, "--compare", help="Print the finished runs given as arguments side by side: --compare RUN_A RUN_B."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="With --compare: write the accuracy-vs-VLM-calls plot (SVG) here."),
    ablate: str = typer.Option("none", "--ablate", metavar="none|crop-black|no-search",
                               help="Evidence ablation: crop-black hands TELL black images of the crops' sizes; "
                                    "no-search answers from SHOW alone. Compare with the normal run: --compare."),
) -> None:
    """Evaluate the agent on a multiple-choice set: accuracy per category, resumable, threads or Ray.
    Exit status 2 when every item failed."""
    from lookcloser.core.config import ABLATIONS  # noqa: PLC0415

    if ablate not in ABLATIONS:
        raise InputError(f"--ablate must be one of {', '.join(ABLATIONS)}, got {ablate!r}")
    if compare:
        if ablate != "none":
            raise InputError("--ablate goes with a run, not with --compare (each run's summary records its own)")
        _compare(list(paths or []), plot)
        return
    if plot is not None:
        raise InputError("--plot goes with --compare; a run writes its own plot to OUT/summary.svg")
    if not paths or len(paths) != 1 or out_dir is None:
        raise InputError("give one DATASET and --out DIR (or --compare RUN_A RUN_B)")
    from lookcloser.eval.run import RunOptions, evaluate  # noqa: PLC0415

    run = RunOptions(workers=workers, ray=ray, address=address, cpus_per_actor=ray_cpus, gpus_per_actor=ray_gpus)
    recipe = _recipe(vlm, tool, out_dir, traces)
    if ablate != "none":
        recipe.config["ablate"] = ablate
    summary = _evaluated("eval", lambda on_start, on_row: evaluate(
        paths[0], out_dir, recipe, seed=seed, limit=limit, resume=resume, run=run, on_start=on_start, on_row=on_row))
    _print_groups(summary, "accuracy")
    _finish(summary, out_dir)


@app.command("eval-search")
def eval_search_command(
    dataset: Path = typer.Argument(..., help="A dataset whose items carry target boxes (V* Bench folder, text_dev items.jsonl, ...)."),
    out_dir: Path = typer.Option(..., "--out", parser=_parameter(_out_folder), metavar="DIR", help="Run folder: results.jsonl, summary.json/.md."),
    tool: Optional[list[str]] = typer.Option(None, "--tool", help="ROLE=NAME, e.g. localizer=grounding_dino (repeat)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N items."),
    resume: bool = typer.Option(False, "--resume", help="Keep the finished targets of --out, search its error rows again, run the rest."),
    workers: int = typer.Option(1, "--workers", help=WORKERS_HELP),
    ray: bool = typer.Option(False, "--ray", help="Run on Ray: a local cluster, or --address."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster to join."),
    ray_cpus: float = typer.Option(1.0, "--ray-cpus", help="CPUs per Ray actor (fractions allowed)."),
    ray_gpus: float = typer.Option(0.0, "--ray-gpus", help="GPUs per Ray actor."),
) -> None:
    """Localizer only (no VLM): search each annotated target; hit = IoU > 0.5 with its box (V*'s search metric).
    Exit status 2 when every target failed."""
    from lookcloser.eval.run import RunOptions, evaluate_search  # noqa: PLC0415

    run = RunOptions(workers=workers, ray=ray, address=address, cpus_per_actor=ray_cpus, gpus_per_actor=ray_gpus)
    recipe = _recipe(None, tool, out_dir, traces=False)
    summary = _evaluated("eval-search", lambda on_start, on_row: evaluate_search(
        dataset, out_dir, recipe, limit=limit, resume=resume, run=run, on_start=on_start, on_row=on_row))
    _print_groups(summary, "hit_rate")
    _finish(summary, out_dir)


def _recipe(vlm: Optional[str], tool: Optional[list[str]], out_dir: Path, traces: bool) -> Any:
    from lookcloser.eval.run import AgentRecipe  # noqa: PLC0415

    settings = _settings(None, tool)  # --tool ROLE=NAME and ROLE.OPTION=VALUE, as for ask
    return AgentRecipe(vlm=vlm, tools=settings.tools, config=dict(settings.config),
                       trace_dir=str((out_dir / "traces").resolve()) if traces else None)


def _evaluated(label: str, work: Callable[[Any, Any], dict[str, Any]]) -> dict[str, Any]:
    """Run an evaluation under a progress bar; Ctrl-C says what was kept."""
    try:
        with _progress(label) as (on_start, on_row):
            return work(on_start, on_row)
    except KeyboardInterrupt:
        raise CommandFailed("interrupted: every finished item is kept in results.jsonl; run again with --resume "
                            "to continue") from None


def _finish(summary: dict[str, Any], out_dir: Path) -> None:
    """Where the results are, how many error rows a resume asked again; status 2 when every item failed."""
    from lookcloser.eval.summary import RESULTS_FILE, read_rows  # noqa: PLC0415

    retried = summary["settings"].get("retried_errors")
    if retried:
        _note(f"--resume: {retried} error rows of the earlier run were run again")
    _note(f"results: {out_dir / RESULTS_FILE}; summary: {out_dir / 'summary.md'}")
    overall = summary["overall"]
    if overall["n"] and overall["errors"] == overall["n"]:
        first = next((r["error"] for r in read_rows(out_dir / RESULTS_FILE) if r.get("error")), "")
        first = first if len(first) <= 300 else first[:299] + "…"
        raise CommandFailed(f"every item failed ({overall['errors']} of {overall['n']} rows are errors), so nothing "
                            f"was measured; the first: {first} — fix the cause and run again with --resume, which "
                            "runs the error rows again")


def _compare(runs: list[Path], plot: Optional[Path]) -> None:
    from rich.table import Table  # noqa: PLC0415

    from lookcloser.eval.summary import (RESULTS_FILE, ablation, baseline_index, compare_table,  # noqa: PLC0415
                                         item_deltas, load_summary, plot_svg, read_rows)

    if len(runs) < 2:
        raise InputError("--compare needs at least two run folders: lookcloser eval --compare RUN_A RUN_B")
    loaded = [(str(path), load_summary(path)) for path in runs]
    results = [read_rows(path / RESULTS_FILE) for path in runs]
    rows = compare_table(loaded, results)
    table = Table(*rows[0], title="runs side by side (pp: points against the baseline run)")
    for row in rows[1:]:
        table.add_row(*row)
    out.print(table)
    base = baseline_index(loaded)
    for i, (label, _) in enumerate(loaded):
        lost = [] if i == base else item_deltas(results[base], results[i])["lost"]
        if lost:
            shown = ", ".join(lost[:20]) + (f", … ({len(lost) - 20} more)" if len(lost) > 20 else "")
            _note(f"{label}: {len(lost)} item(s) right in {loaded[base][0]} are wrong here: {shown}")
    if plot is not None:
        labelled = [(label if ablation(s) == "none" else f"{label} ({ablation(s)})", s) for label, s in loaded]
        plot.write_text(plot_svg(labelled), encoding="utf-8")
        _note(f"plot written to {plot}")


# ------------------------------------------------------------------------------------- output
def _streamed(agent: Any, image: Path, question: str, options: list[str] | None,
              progress: Callable[[str], None]) -> Any:
    """`agent.run` through `agent.stream`, each node and search event shown as the progress note, and TELL's
    answer as it is written (its last 60 characters, when the VLM backend streams)."""
    answer, written = None, ""
    for event in agent.stream(image, question, options):
        found = event.get("progress") or {}
        if "token" in event:
            written += event["token"]
            progress(f"answering: {' '.join(written.split())[-60:]}")
        elif found.get("event") == "search_step":
            progress(f"searching {found['target']!r}: patch {found['order']} at level {found['level']}")
        elif found.get("event") == "finding":
            progress(f"{found['name']!r}: {found['status']}" + (f" {found['text']!r}" if found.get("text") else ""))
        elif event.get("node") == "answer":
            answer = event["answer"]
        elif event.get("node") in ("show", "tell"):
            progress(f"{event['node'].upper()} done")
    return answer


@contextmanager
def _waiting(what: str, limit: float | None) -> Iterator[Callable[[str], None] | None]:
    """On a terminal, a spinner on stderr saying what runs, its latest progress and for how long; it yields a
    function that sets the progress note (None when piped: nothing is shown)."""
    if not err.is_terminal:
        yield None
        return
    started = time.monotonic()
    stop = threading.Event()
    of = f" of {limit:g} s" if limit is not None else ""
    note = ["waiting"]
    with err.status(f"{what}: 0 s{of}") as status:
        def tick() -> None:
            while not stop.wait(0.5):
                status.update(f"{what}: {escape(note[0])}, {time.monotonic() - started:.0f} s{of}")  # notes quote VLM text

        ticker = threading.Thread(target=tick, name="lookcloser-status", daemon=True)
        ticker.start()
        try:
            yield lambda text: note.__setitem__(0, text)
        finally:
            stop.set()
            ticker.join()


@contextmanager
def _progress(label: str, total: int | None = None) -> Iterator[tuple[Any, Any]]:
    """A progress bar with ETA on stderr; yields (on_start(total, done), on_row(row)) callbacks."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,  # noqa: PLC0415
                               TimeElapsedColumn, TimeRemainingColumn)

    columns = (TextColumn(f"{label} {{task.fields[status]}}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task(label, total=total, status="")
        counts = {"errors": 0}

        def on_start(total: int, done: int) -> None:
            # The ETA must reflect this session's pace, not the items finished by an earlier run.
            progress.reset(task, total=total, completed=done)

        def on_row(row: dict[str, Any]) -> None:
            counts["errors"] += bool(row.get("error"))
            progress.update(task, advance=1, status=f"({counts['errors']} errors)" if counts["errors"] else "")

        yield on_start, on_row


def _print_groups(summary: dict[str, Any], metric: str) -> None:
    from rich.table import Table  # noqa: PLC0415

    search = metric == "hit_rate"
    columns = ("mean IoU", "search steps/item", "s/item") if search else ("VLM calls/item", "search steps/item", "s/item")
    keys = ("mean_iou", "search_steps_per_item", "seconds_per_item") if search else \
        ("vlm_calls_per_item", "search_steps_per_item", "seconds_per_item")
    table = Table("", metric, "n", "errors", *columns, title="summary")
    for name, group in {"overall": summary["overall"], **summary["categories"]}.items():
        value = group.get(metric)
        table.add_row(name, "–" if value is None else f"{100 * value:.1f}%", str(group["n"]), str(group["errors"]),
                      *("–" if group.get(k) is None else f"{group[k]:.2f}" for k in keys))
    out.print(table)


def _print_findings(findings: list) -> None:
    from rich.table import Table  # noqa: PLC0415

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
        from lookcloser.imaging.load import load_image  # noqa: PLC0415
        from lookcloser.imaging.draw import draw_findings  # noqa: PLC0415

        image = load_image(image_path)
        if any(f.search for f in findings):  # the V* searcher's record: draw its path too
            from lookcloser.tools.vstar.visualize import draw_search  # noqa: PLC0415

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


def main() -> None:
    try:
        app()
    finally:
        _flush_langsmith()


if __name__ == "__main__":
    main()
