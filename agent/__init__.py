"""lookcloser: answer questions about small details in large images (Show, Search, Tell).

Public names are imported on first use (PEP 562), so `import lookcloser.types` or the CLI's
`--help` does not pull in LangGraph, transformers or torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Agent": "lookcloser.agent",
    "AgentConfig": "lookcloser.config",
    "Answer": "lookcloser.types",
    "Box": "lookcloser.types",
    "Detection": "lookcloser.types",
    "Finding": "lookcloser.types",
    "Mask": "lookcloser.types",
    "Stats": "lookcloser.types",
    "Target": "lookcloser.types",
    "ImageError": "lookcloser.errors",
    "InputError": "lookcloser.errors",
    "LookCloserError": "lookcloser.errors",
    "ModelLoadError": "lookcloser.errors",
    "SettingsError": "lookcloser.errors",
    "ToolNotFoundError": "lookcloser.errors",
    "VLMError": "lookcloser.errors",
    "VisualWorkingMemory": "lookcloser.memory",
    "load_image": "lookcloser.images",
}

__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lookcloser' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
