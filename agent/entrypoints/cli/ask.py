"""`lookcloser ask IMAGE QUESTION`: the agent answers, searching for missing details first when it needs to.

On a terminal a spinner on stderr shows the search's progress and TELL's answer as it is written; piped,
nothing but the result is printed. The agent (LangGraph, transformers) is imported inside the command.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import typer
from rich.markup import escape
from rich.text import Text

from lookcloser.core.errors import InputError
from lookcloser.entrypoints.cli.errors import CommandFailed
from lookcloser.entrypoints.cli.output import _note, _print_findings, _save_vis, err, out
from lookcloser.entrypoints.cli.params import (CONFIG_HELP, TOOL_HELP, VIS_EXTENSIONS, VLM_HELP, _image_file,
                                               _parameter, _settings, _trace_folder, _vis_file)


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
    strategy: Optional[str] = typer.Option(None, "--strategy", metavar="vstar|zoom",
                                           help="vstar: SHOW -> SEARCH -> TELL (default); zoom: the VLM zooms and "
                                                "calls the experts itself, over several turns (docs/zoom.md)."),
) -> None:
    """Ask QUESTION about IMAGE: the VLM answers, searching for missing details first when it needs to."""
    if not question.strip():
        raise InputError("QUESTION must not be empty")
    if option and any(not o.strip() for o in option):
        raise InputError("--option must not be empty")
    if timeout is not None and not (0 < timeout < float("inf")):
        raise InputError(f"--timeout must be a positive number of seconds, got {timeout:g}")
    _check_strategy(strategy)
    settings = _settings(config_file, tool, vlm, timeout).agent_kwargs()
    if strategy is not None:
        from lookcloser.core.config import AgentConfig  # noqa: PLC0415

        try:
            settings["config"] = AgentConfig(**{**settings["config"].model_dump(), "strategy": strategy})
        except ValueError as exc:  # pydantic's ValidationError: the rule it broke, in one line
            raise InputError(f"--strategy {strategy}: "
                             f"{str(exc.errors()[0]['msg']).removeprefix('Value error, ')}") from None

    from lookcloser.agent import Agent  # noqa: PLC0415
    from lookcloser.core.errors import AnswerError  # noqa: PLC0415

    agent = Agent(**settings, trace_dir=trace_dir, spelling="cli")
    try:
        vlm = settings["vlm"]
        named = vlm.get("spec") if isinstance(vlm, dict) else vlm  # a [vlm] table: its spec
        with _waiting(f"asking {named or 'the default VLM'}", settings["config"].timeout) as progress:
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
        zoomed = f"{stats.zoom_turns} zoom turns, " if stats.zoom_turns else ""
        out.print(f"[dim]{stats.vlm_calls} VLM calls, {zoomed}{stats.tool_calls} tool calls, {stats.search_steps} "
                  f"search steps, {stats.seconds:.1f} s; trace: {answer.trace_dir or 'none written'}[/]",
                  highlight=False)
    if vis_error:
        raise CommandFailed(vis_error)


def _check_strategy(strategy: str | None) -> None:
    from lookcloser.core.config import STRATEGIES  # noqa: PLC0415

    if strategy is not None and strategy not in STRATEGIES:
        raise InputError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")


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
        elif found.get("event") == "zoom":
            progress(f"zooming into {found['label'] or 'a region'!r}: view {found['view']} {found['box']}")
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
