"""Old import paths of the flat modules that moved into subpackages in 0.2 (removed in 0.3).

`import lookcloser.types` (or `from lookcloser.runtime import Context`, which always worked) still
works: each old name below is the same module object as its new home, imported on first use with a
`DeprecationWarning` that names the new path. docs/architecture.md has the table.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from types import ModuleType

#: old module -> its home since 0.2
MOVED = {
    "lookcloser.errors": "lookcloser.core.errors",
    "lookcloser.types": "lookcloser.core.types",
    "lookcloser.geometry": "lookcloser.core.geometry",
    "lookcloser.config": "lookcloser.core.config",
    "lookcloser.deadline": "lookcloser.core.deadline",
    "lookcloser.vlm_protocol": "lookcloser.core.vlm_protocol",
    "lookcloser.hub": "lookcloser.core.hub",
    "lookcloser.parsing": "lookcloser.core.parsing",
    "lookcloser.files": "lookcloser.imaging.files",
    "lookcloser.images": "lookcloser.imaging.load",
    "lookcloser.imagestore": "lookcloser.imaging.store",
    "lookcloser.image_refs": "lookcloser.imaging.refs",
    "lookcloser.checkpoints": "lookcloser.imaging.checkpoints",
    "lookcloser.visualize": "lookcloser.imaging.draw",
    "lookcloser.settings": "lookcloser.runtime.settings",
    "lookcloser.serving": "lookcloser.runtime.serving",
    "lookcloser.expert_tools": "lookcloser.runtime.expert_tools",
    "lookcloser.memory": "lookcloser.graphs.memory",
    "lookcloser.counting": "lookcloser.graphs.counting",
    "lookcloser.cli": "lookcloser.entrypoints.cli",
    "lookcloser.trace_cli": "lookcloser.entrypoints.cli.trace",
    "lookcloser.mcp_server": "lookcloser.entrypoints.mcp_server",
    "lookcloser.langchain_tools": "lookcloser.entrypoints.langchain_tools",
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old name and loads it as the module at its new path."""

    def find_spec(self, fullname: str, path: object = None, target: object = None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec) -> ModuleType:
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; the old path goes away in lookcloser 0.3",
                      DeprecationWarning, stacklevel=2)  # warnings skips importlib's frames: the import line
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        """The new module is already executed: nothing to run."""


def install() -> None:
    """Put the finder at the end of `sys.meta_path` once (real modules are always found first)."""
    if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
        sys.meta_path.append(_Alias())
