"""The parameters the commands share, checked at parse time, before any work.

Paths are typer parameters with a parser (`_parameter(check)`): the image (a regular file of bounded size:
a pipe or a device is refused without being opened, `lookcloser.imaging.files`), --save-vis, --trace-dir,
--out, --image-dir. A failed check is one `error: ...` line from the handler in `errors`. Settings
(`--config FILE`, `--tool ROLE=NAME`, `--tool ROLE.OPTION=VALUE`) are read by `lookcloser.runtime.settings`
(`_settings`) before any model loads; errors that a setting fixes are worded in CLI terms
(`Agent(spelling="cli")`). The help texts of the options several commands share are here too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from lookcloser.core.errors import InputError, LookCloserError
from lookcloser.imaging.files import open_image_file

#: Extensions --save-vis can write (Pillow picks the format from the extension).
VIS_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")

#: Virtual file systems: writable-looking for root, but no place for files.
VIRTUAL_ROOTS = (Path("/proc"), Path("/sys"))

TOOL_HELP = ("ROLE=NAME (e.g. localizer=whole_image) or ROLE.OPTION=VALUE (e.g. detector.model=/models/gdino; "
             "VALUE may be TOML or JSON); repeat. Overrides --config.")
CONFIG_HELP = "TOML settings file: vlm, [tools] (role = name, or a table of name and options), [config] (AgentConfig)."
VLM_HELP = "transformers:ID_OR_PATH or openai:MODEL@URL (default: transformers:Qwen/Qwen3-VL-8B-Instruct)."
WORKERS_HELP = "Items at once: threads sharing one agent (models loaded once), or Ray actors with --ray."


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
