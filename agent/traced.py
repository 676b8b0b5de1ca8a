"""Wrappers that trace and count every VLM and tool call, whatever the backend.

Backends stay plain; the agent wraps them once. Images in VLM inputs are written beside the trace
(once per image object) and referenced by relative path, never inlined.
"""

from __future__ import annotations

import contextvars
from typing import Any, Sequence

from PIL import Image

from lookcloser.tracing import current_run, trace_run
from lookcloser.usage import count
from lookcloser.vlm.base import ChatMessage, VLMReply, supports

_image_refs: contextvars.ContextVar[dict[int, str] | None] = contextvars.ContextVar("lookcloser_image_refs", default=None)

TOOL_METHODS = {"localizer": "locate", "detector": "detect", "segmenter": "segment", "ocr": "read"}


def begin_image_refs(known: dict[int, str] | None = None) -> contextvars.Token:
    """Start a per-run cache id(image) -> saved path (the agent calls this once per run)."""
    return _image_refs.set(dict(known or {}))


def end_image_refs(token: contextvars.Token) -> None:
    _image_refs.reset(token)


def image_ref(image: Image.Image, label: str) -> str:
    """Relative path of `image` in the current trace, saving it on first sight."""
    refs = _image_refs.get()
    if refs is not None and id(image) in refs:
        return refs[id(image)]
    run = current_run()
    path = run.save_image(image, label) if run is not None else None
    ref = path or f"<image {image.width}x{image.height}>"
    if refs is not None and path:
        refs[id(image)] = path
    return ref


def _describe(obj: Any) -> dict[str, Any]:
    describe = getattr(obj, "describe", None)
    try:
        return dict(describe()) if callable(describe) else {"name": getattr(obj, "name", type(obj).__name__)}
    except Exception as exc:  # describing must never break a run
        return {"name": getattr(obj, "name", type(obj).__name__), "describe_error": str(exc)}


class TracedVLM:
    """Same protocol as the wrapped VLM; each call is an `llm` run and bumps `vlm_calls`."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = getattr(inner, "name", type(inner).__name__)
        if supports(inner, "yes_probability"):
            self.yes_probability = self._yes_probability
        if supports(inner, "score_options"):
            self.score_options = self._score_options

    def describe(self) -> dict[str, Any]:
        return _describe(self.inner)

    def generate(self, messages: Sequence[ChatMessage], *, max_new_tokens: int = 256) -> VLMReply:
        inputs = {"messages": [self._message_for_trace(m) for m in messages], "max_new_tokens": max_new_tokens}
        with trace_run("vlm.generate", "llm", inputs, metadata={"ls_model_name": self.name, **self.describe()}) as run:
            count("vlm_calls")
            reply = self.inner.generate(messages, max_new_tokens=max_new_tokens)
            run.outputs = {"text": reply.text}
            if reply.input_tokens is not None or reply.output_tokens is not None:
                usage = {"input_tokens": reply.input_tokens or 0, "output_tokens": reply.output_tokens or 0}
                usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
                run.outputs["usage_metadata"] = usage
            return reply

    def _yes_probability(self, image: Image.Image, prompt: str) -> float:
        inputs = {"prompt": prompt, "image": image_ref(image, "yes_probability")}
        with trace_run("vlm.yes_probability", "llm", inputs, metadata={"ls_model_name": self.name}) as run:
            count("vlm_calls")
            value = float(self.inner.yes_probability(image, prompt))
            run.outputs = {"p_yes": value}
            return value

    def _score_options(self, image: Image.Image, question: str, options: list[str]) -> list[float]:
        inputs = {"question": question, "options": options, "image": image_ref(image, "score_options")}
        with trace_run("vlm.score_options", "llm", inputs, metadata={"ls_model_name": self.name}) as run:
            count("vlm_calls")
            scores = [float(s) for s in self.inner.score_options(image, question, options)]
            run.outputs = {"scores": scores}
            return scores

    @staticmethod
    def _message_for_trace(message: ChatMessage) -> dict[str, Any]:
        parts = []
        for part in message.content:
            if isinstance(part, Image.Image):
                parts.append({"type": "image", "path": image_ref(part, "vlm_image")})
            else:
                parts.append({"type": "text", "text": part})
        return {"role": message.role, "content": parts}


class TracedTool:
    """Wraps a tool: its role method becomes a `tool` run and bumps `tool_calls`; the rest passes through."""

    def __init__(self, role: str, inner: Any) -> None:
        self.role = role
        self.inner = inner
        self.name = inner.name
        method = TOOL_METHODS[role]
        setattr(self, method, self._wrap(method))

    def __getattr__(self, attribute: str) -> Any:  # only called for attributes not set here
        return getattr(self.inner, attribute)

    def describe(self) -> dict[str, Any]:
        return _describe(self.inner)

    def _wrap(self, method: str):
        call = getattr(self.inner, method)

        def traced(image: Image.Image, *args: Any, **kwargs: Any) -> Any:
            inputs = {"image": image_ref(image, f"{self.role}_input"), "args": list(args), **kwargs}
            with trace_run(f"tool.{self.role}.{self.name}", "tool", inputs, metadata=self.describe()) as run:
                count("tool_calls")
                result = call(image, *args, **kwargs)
                if self.role == "segmenter":  # masks go to files so the report can draw them
                    boxes = args[0] if args else kwargs.get("boxes", [])
                    run.outputs = {"masks": [run.save_image(m, "mask") for m in result],
                                   "boxes": [b.to_list() for b in boxes]}
                else:
                    run.outputs = {"result": _summarise(result)}
                return result

        traced.__name__ = method
        return traced


def _summarise(result: Any) -> Any:
    """JSON-friendly view of a tool result (findings, detections, lines, masks)."""
    if isinstance(result, list):
        return [_summarise(item) for item in result]
    to_json = getattr(result, "to_json", None)
    if callable(to_json):
        return to_json()
    if hasattr(result, "model_dump"):
        return result.model_dump()
    return result
