"""A package's public names imported on first use (PEP 562), so importing the package stays cheap:
`import lookcloser` or `lookcloser --help` loads neither LangGraph, transformers nor torch."""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`, whose names in `exports` (name -> module) load on first use.

    In the package: `__getattr__, __dir__ = lazy_exports(__name__, {"Agent": "lookcloser.agent", ...})`.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
