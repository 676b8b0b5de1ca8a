"""The experts: the four role protocols (`base`), the registry with typed options (`registry`, `options`,
`info`), the built-in tools (registered on import, `builtin`) and their adapters: the V* searcher (`vstar`),
GroundingDINO, SAM 2, RapidOCR, PaddleOCR, Tesseract, the whole-image localizer.

May import the foundations only (`lookcloser.core`, `lookcloser.imaging`): a tool reaches the VLM through `core.vlm_protocol` and tracing through
LangChain's callbacks, never the agent, runtime, graphs or CLI. A new tool is a module here registered in
`builtin` (or a third party's entry point; docs/tools.md).
"""

from lookcloser.tools.base import OCR, ROLES, Detector, Localizer, Segmenter
from lookcloser.tools.builtin import DEFAULT_TOOLS
from lookcloser.tools.registry import ToolContext, register_tool, registry

__all__ = ["OCR", "ROLES", "DEFAULT_TOOLS", "Detector", "Localizer", "Segmenter", "ToolContext", "register_tool", "registry"]
