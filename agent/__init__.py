"""lookcloser: answer questions about small details in large images (Show, Search, Tell)."""

from lookcloser.agent import Agent
from lookcloser.config import AgentConfig
from lookcloser.errors import ImageError, LookCloserError, ModelLoadError, ToolNotFoundError, VLMError
from lookcloser.images import load_image
from lookcloser.memory import VisualWorkingMemory
from lookcloser.types import Answer, Box, Detection, Finding, Stats, Target, TextLine

__all__ = [
    "Agent", "AgentConfig", "Answer", "Box", "Detection", "Finding", "ImageError", "LookCloserError",
    "ModelLoadError", "Stats", "Target", "TextLine", "ToolNotFoundError", "VLMError", "VisualWorkingMemory",
    "load_image",
]
__version__ = "0.1.0"
