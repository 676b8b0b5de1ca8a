"""Wrappers that trace and count every VLM and tool call, whatever the backend.

Backends stay plain; the agent wraps them once. Each call is a child run of the graph node that
made it (see `tracing.runs`); images are named by content hash, never inlined.
"""

from __future__ import annotations

from typing import Any, Sequence

from PIL import Image

from lookcloser.counting import count
from lookcloser.errors import ModelLoadError
from lookcloser.tracing.runs import image_ref, trace_run
from lookcloser.vlm.base import ChatMessage, VLMReply, supports

__all__ = ["TOOL_METHODS", "TracedTool", "TracedVLM"]

TOOL_METHODS = {"localizer": "locate", "detector": "detect", "segmenter": "segment", "ocr": "read"}
#: Optional methods a tool of the role may have; traced and counted like the role method when present.
OPTIONAL_METHODS = {"localizer": ("locate_many",)}


def _describe(obj: Any) -> dict[str, Any]:
    describe = getattr(obj, "describe", None)
    try:
        return dict(describe()) if callable(describe) else {"name": getattr(obj, "name", type(obj).__name__)}
    except Exception as exc:  # describing must never break a run
        return {"name": getattr(obj, "name", type(obj).__name__), "describe_error": str(exc)}


def _content(parts: Sequence[Any]) -> list[dict[str, Any]]:
    """LangChain content blocks for a trace: text as is, images as a content-hash reference."""
    return [{"type": "image", "url": image_ref(p)} if isinstance(p, Image.Image) else {"type": "text", "text": str(p)}
            for p in parts]


class TracedVLM:
    """Same protocol as the wrapped VLM; each call is an `llm` run and bumps `vlm_calls`."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = getattr(inner, "name", type(inner).__name__)
        self._metadata = {"ls_model_name": self.name, **self.describe()}
        if supports(inner, "yes_probability"):
            self.yes_probability = self._yes_probability
        if supports(inner, "score_options"):
            self.score_options = self._score_options

    def describe(self) -> dict[str, Any]:
        return _describe(self.inner)

    def generate(self, messages: Sequence[ChatMessage], *, max_new_tokens: int = 256) -> VLMReply:
        def inputs() -> dict[str, Any]:
            return {"messages": [{"role": m.role, "content": _content(m.content)} for m in messages]}

        with trace_run("vlm.generate", "llm", inputs, metadata={**self._metadata, "max_new_tokens": max_new_tokens}) as run:
            count("vlm_calls")
            reply = self.inner.generate(messages, max_new_tokens=max_new_tokens)
            run.outputs = {"text": reply.text}
            if reply.input_tokens is not None or reply.output_tokens is not None:
                usage = {"input_tokens": reply.input_tokens or 0, "output_tokens": reply.output_tokens or 0}
                run.outputs["usage_metadata"] = {**usage, "total_tokens": sum(usage.values())}
            return reply

    def _yes_probability(self, image: Image.Image, prompt: str) -> float:
        with trace_run("vlm.yes_probability", "llm", lambda: {"messages": [{"role": "user", "content": _content([image, prompt])}]}, metadata=self._metadata) as run:
            count("vlm_calls")
            value = float(self.inner.yes_probability(image, prompt))
            run.outputs = {"text": f"p(yes) = {value:.4f}", "p_yes": value}
            return value

    def _score_options(self, image: Image.Image | Sequence[Image.Image], question: str, options: list[str]) -> list[float]:
        prompt = question + "\n" + "\n".join(f"({chr(65 + i)}) {o}" for i, o in enumerate(options))
        images = list(image) if isinstance(image, (list, tuple)) else [image]  # TELL scores with its crops too
        with trace_run("vlm.score_options", "llm", lambda: {"messages": [{"role": "user", "content": _content([*images, prompt])}]}, metadata=self._metadata) as run:
            count("vlm_calls")
            scores = [float(s) for s in self.inner.score_options(image, question, options)]
            run.outputs = {"text": ", ".join(f"{chr(65 + i)}: {s:.4f}" for i, s in enumerate(scores)), "scores": scores}
            return scores


class TracedTool:
    """Wraps a tool: its role method becomes a `tool` run and bumps `tool_calls`; the rest passes through."""

    def __init__(self, role: str, inner: Any, *, spelling: str = "python") -> None:
        self.role = role
        self.inner = inner
        self.spelling = spelling  # how a ModelLoadError from this tool words the setting to change
        self.name = inner.name
        self._metadata = _describe(inner)
        method = TOOL_METHODS[role]
        setattr(self, method, self._wrap(method))
        for optional in OPTIONAL_METHODS.get(role, ()):
            if callable(getattr(inner, optional, None)):
                setattr(self, optional, self._wrap(optional))

    def __getattr__(self, attribute: str) -> Any:  # only called for attributes not set here
        return getattr(self.inner, attribute)

    def describe(self) -> dict[str, Any]:
        return _describe(self.inner)

    def _wrap(self, method: str):
        call = getattr(self.inner, method)

        def traced(image: Image.Image, *args: Any, **kwargs: Any) -> Any:
            def inputs() -> dict[str, Any]:
                return {"image": image_ref(image), "args": _summarise(list(args)), **_summarise(kwargs)}

            with trace_run(f"tool.{self.role}.{self.name}" + ("" if method == TOOL_METHODS[self.role] else f".{method}"), "tool", inputs, metadata=self._metadata) as run:
                count("tool_calls")
                try:
                    result = call(image, *args, **kwargs)
                except ModelLoadError as exc:  # models load on first call: name the role and the caller's words
                    exc.blame(self.role, self.name, self.spelling)
                    raise
                run.outputs = {"result": _summarise(result)}
                return result

        traced.__name__ = method
        return traced


def _summarise(value: Any) -> Any:
    """JSON-friendly view of tool arguments and results (findings, detections, masks as RLE)."""
    if isinstance(value, dict):
        return {str(k): _summarise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_summarise(item) for item in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    return value
