"""Tools: role protocols, the registry and the built-in tools (registered on import)."""

from lookcloser.tools.base import OCR, ROLES, Detector, Localizer, Segmenter
from lookcloser.tools.builtin import DEFAULT_TOOLS
from lookcloser.tools.registry import ToolContext, register_tool, registry

__all__ = ["OCR", "ROLES", "DEFAULT_TOOLS", "Detector", "Localizer", "Segmenter", "ToolContext", "register_tool", "registry"]
