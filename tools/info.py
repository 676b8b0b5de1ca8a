"""What a registered tool says about itself: backend, default model, accepted options, and what it
needs to run here (a Python package from an extra, a binary on PATH, model weights).

Declared next to each registration (`registry.register(..., info=ToolInfo(...))`, see builtin.py)
and read by `lookcloser tools` and by the settings check. `usability()` imports nothing heavy:
packages are looked up with `importlib.util.find_spec`, binaries with `shutil.which`, hub weights
in the local Hugging Face cache only (never the network), local model directories on disk.
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel

__all__ = ["Binary", "Package", "ToolInfo", "Usability", "Weights"]

#: Usability statuses, best first.
OK, EXTRA_MISSING, BINARY_MISSING, WEIGHTS_NOT_CACHED, UNKNOWN = (
    "ok", "extra missing", "binary missing", "weights not cached", "unknown")


@dataclass(frozen=True)
class Usability:
    """Whether a tool can run here: `status` (ok / extra missing / binary missing / weights not
    cached / unknown), what is missing (`detail`) and the command that fixes it (`fix`)."""

    status: str
    detail: str = ""
    fix: str = ""


@dataclass(frozen=True)
class Package:
    """An importable module the tool needs, installed by `install` (e.g. pip install 'lookcloser[ocr]')."""

    module: str
    install: str
    needed_for: str = ""

    def check(self, options: dict[str, Any]) -> Usability | None:
        if importlib.util.find_spec(self.module) is not None:
            return None
        return Usability(EXTRA_MISSING, _for(f"Python package '{self.module}' not installed", self.needed_for),
                         self.install)


@dataclass(frozen=True)
class Binary:
    """An executable the tool runs; `option` is the tool option that may name another one."""

    name: str
    install: str
    option: str | None = None

    def check(self, options: dict[str, Any]) -> Usability | None:
        binary = str(options.get(self.option, self.name)) if self.option else self.name
        if shutil.which(binary) is not None:
            return None
        return Usability(BINARY_MISSING, f"'{binary}' not found on PATH", self.install)


@dataclass(frozen=True)
class Weights:
    """Model weights named by the tool's `option` (default `default`): a hub id must be in the local
    Hugging Face cache, a local path must be an existing directory. `when` (options -> bool) says
    whether the weights are needed with these options (e.g. only for V*'s owlv2 cue)."""

    default: str
    option: str = "model"
    needed_for: str = ""
    when: Callable[[dict[str, Any]], bool] | None = None

    def check(self, options: dict[str, Any]) -> Usability | None:
        if self.when is not None and not self.when(options):
            return None
        model = str(options.get(self.option, self.default))
        path = Path(model).expanduser()
        if path.is_dir():
            return None
        from lookcloser.core.hub import looks_like_path  # noqa: PLC0415 - stdlib-only module

        if looks_like_path(model) or path.exists():
            return Usability(WEIGHTS_NOT_CACHED, _for(f"model directory {model} does not exist", self.needed_for),
                             f"set the `{self.option}` option to a directory holding the saved model")
        if _hub_cached(model):
            return None
        return Usability(WEIGHTS_NOT_CACHED,
                         _for(f"not in the local Hugging Face cache; or set `{self.option}` to a local directory",
                              self.needed_for), f"hf download {model}")


@dataclass(frozen=True)
class ToolInfo:
    """A registered tool's self-description.

    backend: what runs it. default_model: the weights used when the `model` option is not set.
    options: () -> the tool's options as a pydantic model (tools/options.py), or None when it passes
    unknown ones on to its backend (not checked); called only when options are given. Left out: read
    from the factory's signature. requires: Package / Binary / Weights, checked in order by `usability`.
    batches: the tool finds every target of an image in one call (`locate_many`), so the graph sends it
    one search branch for all of them; declared here so routing never has to build the tool to know.
    needs_vlm: the tool asks the agent's VLM (`--vlm SPEC`); `lookcloser tools` says so.
    """

    backend: str
    default_model: str | None = None
    options: Callable[[], type[BaseModel] | None] | None = None
    requires: tuple[Any, ...] = field(default_factory=tuple)
    batches: bool = False
    needs_vlm: bool = False

    def usability(self, options: dict[str, Any] | None = None) -> Usability:
        """The first unmet requirement with these options, or ok."""
        for requirement in self.requires:
            problem = requirement.check(dict(options or {}))
            if problem is not None:
                return problem
        return Usability(OK)


def _for(text: str, needed_for: str) -> str:
    return f"{text} (needed for {needed_for})" if needed_for else text


def _hub_cached(model_id: str) -> bool:
    """The model's config.json is in the local Hugging Face cache (no network: a cache lookup only)."""
    try:
        from huggingface_hub import try_to_load_from_cache  # noqa: PLC0415
    except ImportError:
        return False
    try:
        found = try_to_load_from_cache(model_id, "config.json")
    except Exception:  # noqa: BLE001 - a malformed id is simply not cached
        return False
    return isinstance(found, str)
