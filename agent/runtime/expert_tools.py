"""An expert behind LangChain tools: each call of its role method is a `BaseTool` run.

Why: langchain-core's `BaseTool.run` opens the tool run under the caller's run (a graph node, a V* step),
nests what the expert calls (VLM calls, other tools, V* steps) under it, and hands it to every callback
handler (LangSmith, the local trace, the counters). The image and the real arguments are injected
(`InjectedToolArg`), so runs record an image-store reference and a JSON view, never pixels.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Callable

from langchain_core.tools import BaseTool, InjectedToolArg
from PIL import Image

from lookcloser.core.errors import ModelLoadError
from lookcloser.imaging.refs import to_ref

__all__ = ["ExpertTool", "TOOL_METHODS"]

TOOL_METHODS = {"localizer": "locate", "detector": "detect", "segmenter": "segment", "ocr": "read"}
#: Optional methods a tool of the role may have; run and counted like the role method when present.
OPTIONAL_METHODS = {"localizer": ("locate_many",)}


def _describe(obj: Any) -> dict[str, Any]:
    describe = getattr(obj, "describe", None)
    try:
        return dict(describe()) if callable(describe) else {"name": getattr(obj, "name", type(obj).__name__)}
    except Exception as exc:  # describing must never break a run
        return {"name": getattr(obj, "name", type(obj).__name__), "describe_error": str(exc)}


def _summarise(value: Any) -> Any:
    """JSON-friendly view of tool arguments (targets, boxes as their JSON form)."""
    if isinstance(value, dict):
        return {str(k): _summarise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_summarise(item) for item in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    return value


class _MethodTool(BaseTool):
    """One role method of one expert; the call itself is injected, the rest is what the run records."""

    description: str = "a lookcloser expert"
    method: Callable[..., Any]
    blame: Callable[[ModelLoadError], None]

    def _run(self, call: Annotated[tuple, InjectedToolArg], **shown: Any) -> Any:
        image, args, kwargs = call
        try:
            return self.method(image, *args, **kwargs)
        except ModelLoadError as exc:  # models load on first call: name the role and the caller's words
            self.blame(exc)
            raise


class ExpertTool:
    """Wraps a tool: its role method (and optional batch method) runs as a LangChain tool; the rest passes through."""

    def __init__(self, role: str, inner: Any, *, spelling: str = "python") -> None:
        self.role = role
        self.inner = inner
        self.spelling = spelling  # how a ModelLoadError from this tool words the setting to change
        self.name = inner.name
        role_method = TOOL_METHODS[role]
        for method in (role_method, *OPTIONAL_METHODS.get(role, ())):
            if method == role_method or callable(getattr(inner, method, None)):
                suffix = "" if method == role_method else f".{method}"
                tool = _MethodTool(name=f"tool.{role}.{self.name}{suffix}", method=getattr(inner, method),
                                   blame=lambda exc: exc.blame(role, self.name, spelling), metadata=_describe(inner))
                setattr(self, method, functools.partial(self._call, tool))

    def __getattr__(self, attribute: str) -> Any:  # only called for attributes not set here
        return getattr(self.inner, attribute)

    def describe(self) -> dict[str, Any]:
        return _describe(self.inner)

    @staticmethod
    def _call(tool: _MethodTool, image: Image.Image, *args: Any, **kwargs: Any) -> Any:
        shown = {"image": to_ref(image), "args": _summarise(list(args)), **_summarise(kwargs)}
        return tool.invoke({**shown, "call": (image, args, kwargs)})
