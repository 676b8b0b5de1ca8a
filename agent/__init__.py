"""lookcloser: answer questions about small details in large images (Show, Search, Tell).

Public names are imported on first use (PEP 562), so `import lookcloser.core.types` or the CLI's
`--help` does not pull in LangGraph, transformers or torch.
"""

from __future__ import annotations

from lookcloser import _moved
from lookcloser.core.lazy import lazy_exports

_EXPORTS = {
    "Agent": "lookcloser.agent",
    "AgentConfig": "lookcloser.core.config",
    "Answer": "lookcloser.core.types",
    "Box": "lookcloser.core.types",
    "Detection": "lookcloser.core.types",
    "Finding": "lookcloser.core.types",
    "Mask": "lookcloser.core.types",
    "Stats": "lookcloser.core.types",
    "Target": "lookcloser.core.types",
    "ImageError": "lookcloser.core.errors",
    "InputError": "lookcloser.core.errors",
    "LookCloserError": "lookcloser.core.errors",
    "ModelLoadError": "lookcloser.core.errors",
    "SettingsError": "lookcloser.core.errors",
    "ToolNotFoundError": "lookcloser.core.errors",
    "VLMError": "lookcloser.core.errors",
    "VisualWorkingMemory": "lookcloser.graphs.memory",
    "load_image": "lookcloser.imaging.load",
}

__all__ = sorted(_EXPORTS)
__version__ = "0.2.0"

_moved.install()  # old flat-module paths (lookcloser.types, ...) still import, with a DeprecationWarning

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
