"""`lookcloser find IMAGE... TARGET`: SEARCH only: locate a target, or read every line of text. No VLM unless
`--vlm` names one for the tools that ask it (`vlm_grounding`; the V* search's contextual cue then uses it too).

One image prints a table (or `--json`); several images or a folder print one JSON line per image from one
agent (models loaded once). A model that cannot load is exit status 2 after its findings are printed. The
agent is imported inside the command.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator, Optional

import typer

from lookcloser.core.errors import InputError
from lookcloser.entrypoints.cli.errors import CommandFailed
from lookcloser.entrypoints.cli.output import _note, _one_line, _print_findings, _progress, _save_vis
from lookcloser.entrypoints.cli.params import (CONFIG_HELP, TOOL_HELP, VIS_EXTENSIONS, _image_or_folder, _parameter,
                                               _settings, _trace_folder, _vis_file)
from lookcloser.imaging.files import IMAGE_SUFFIXES

#: `lookcloser find IMAGE text` means "read all the text" without needing --kind text.
TEXT_WORDS = {"text", "all text", "the text", "words", "all the text"}

#: How the search node records a tool's exception in a failed finding ("TYPE: message").
LOAD_ERROR = "ModelLoadError: "


def find(
    images: list[Path] = typer.Argument(..., parser=_parameter(_image_or_folder), metavar="IMAGE...",
                                        help="Image file(s) or directories of images."),
    target: str = typer.Argument(..., help="What to find, e.g. 'the red sign' or 'text'."),
    kind: Optional[str] = typer.Option(None, "--kind", help="object (find one) or text (read all text); default: text when TARGET is 'text', else object."),
    tool: Optional[list[str]] = typer.Option(None, "--tool", help=TOOL_HELP),
    config_file: Optional[Path] = typer.Option(None, "--config", help=CONFIG_HELP + " Its vlm is not used: only --vlm gives find one."),
    vlm: Optional[str] = typer.Option(None, "--vlm", help="transformers:ID_OR_PATH or openai:MODEL@URL, for the tools "
                                                         "that ask a VLM (--tool localizer=vlm_grounding). Default: none."),
    as_json: bool = typer.Option(False, "--json", help="Print {\"findings\": [...]} as JSON."),
    save_vis: Optional[Path] = typer.Option(None, "--save-vis", parser=_parameter(_vis_file), metavar="FILE",
                                            help=f"Write an image of the search and findings ({', '.join(VIS_EXTENSIONS)})."),
    trace_dir: Path = typer.Option(Path("traces"), "--trace-dir", parser=_parameter(_trace_folder), metavar="DIR",
                                   help="Where the search's trace is written."),
) -> None:
    """SEARCH only (no VLM unless --vlm names one): locate TARGET in IMAGE; with --kind text, read every line of
    text (several images or a directory: JSON Lines, one per image). Exit status 2 when the localizer's model
    cannot load (or needs a VLM and none is named)."""
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
    settings["vlm"] = vlm  # None: find gives tools no VLM (the file's vlm is for ask)

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
