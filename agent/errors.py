"""Errors users see. Each names the thing that was wrong (file, field, value)."""


class LookCloserError(Exception):
    """Base class for every error lookcloser raises on purpose."""


class ImageError(LookCloserError, ValueError):
    """An input image could not be read or is unsafe to decode."""


class ToolNotFoundError(LookCloserError, KeyError):
    """A tool name is not in the registry; the message lists the known names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelLoadError(LookCloserError, RuntimeError):
    """A model could not be loaded (missing weights, no hub access, bad path)."""


class VLMError(LookCloserError, RuntimeError):
    """A VLM backend call failed (endpoint down, bad response)."""
