"""Test doubles (they live only in tests/): a scripted VLM, a recording LangChain chat model and simple tools."""

from __future__ import annotations

import re
import threading
import time
from typing import Any, Callable, Sequence

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from PIL import Image

from lookcloser.core.types import Box, Detection, Finding, Mask, Target
from lookcloser.core.vlm_protocol import ChatMessage, VLMReply


class ScriptedVLM:
    """Answers from a script: a list of replies consumed in order, or a function of the prompt text.

    Records every call (prompt text and image sizes) so tests can check what the agent sent.
    """

    def __init__(self, script: Sequence[str] | Callable[[str, list[Image.Image]], str], delay: float = 0.0,
                 name: str = "scripted") -> None:
        self.name = name
        self._script = script if callable(script) else list(script)
        self.delay = delay
        self.calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def describe(self) -> dict[str, Any]:
        return {"backend": "scripted", "model": self.name}

    def generate(self, messages: Sequence[ChatMessage], *, max_new_tokens: int = 256) -> VLMReply:
        text = "\n".join(m.text for m in messages)
        images = [img for m in messages for img in m.images]
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            self.calls.append({"text": text, "image_sizes": [img.size for img in images]})
            if callable(self._script):
                reply = self._script(text, images)
            else:
                if not self._script:
                    raise AssertionError(f"ScriptedVLM ran out of replies at call {len(self.calls)}: {text[:200]}")
                reply = self._script.pop(0)
        return VLMReply(text=reply, input_tokens=len(text.split()), output_tokens=len(reply.split()))


class RecordingChatModel(GenericFakeChatModel):
    """langchain_core's GenericFakeChatModel that also keeps the message lists it was called with."""

    received: list = []

    def _generate(self, messages, stop=None, run_manager=None, **kwargs: Any):
        self.received.append(list(messages))
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


class ScriptedScoringVLM(ScriptedVLM):
    """Also scores options (likelihood path): fixed scores per option index."""

    def __init__(self, script, scores: Sequence[float], **kwargs: Any) -> None:
        super().__init__(script, **kwargs)
        self.scores = list(scores)

    def score_options(self, image: Image.Image, question: str, options: list[str]) -> list[float]:
        return self.scores[: len(options)]


class StreamingScoringVLM(ScriptedScoringVLM):
    """Also streams: `stream` yields the scripted reply word by word, then a VLMReply with its token counts;
    records which of its methods each call used."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.methods: list[str] = []

    def generate(self, messages: Sequence[ChatMessage], *, max_new_tokens: int = 256) -> VLMReply:
        self.methods.append("generate")
        return super().generate(messages, max_new_tokens=max_new_tokens)

    def stream(self, messages: Sequence[ChatMessage], *, max_new_tokens: int = 256):
        reply = ScriptedScoringVLM.generate(self, messages, max_new_tokens=max_new_tokens)
        self.methods.append("stream")
        yield from re.findall(r"\S+\s*", reply.text)
        yield reply

    def score_options(self, image: Image.Image, question: str, options: list[str]) -> list[float]:
        self.methods.append("score_options")
        return super().score_options(image, question, options)


class FixedLocalizer:
    """Returns a found box for known target names, not_found otherwise; optional delay."""

    def __init__(self, boxes: dict[str, tuple[float, float, float, float]], delay: float = 0.0, name: str = "fixed"):
        self.name = name
        self.boxes = boxes
        self.delay = delay
        self.threads: list[str] = []
        self._lock = threading.Lock()

    def locate(self, image: Image.Image, target: Target) -> list[Finding]:
        with self._lock:
            self.threads.append(threading.get_ident())
        if self.delay:
            time.sleep(self.delay)
        if target.name not in self.boxes:
            return [Finding(target=target, status="not_found", tool=self.name)]
        box = Box.from_list(self.boxes[target.name])
        return [Finding(target=target, status="found", box=box, score=0.9, tool=self.name)]


class ExplodingLocalizer:
    name = "exploding"

    def locate(self, image: Image.Image, target: Target) -> list[Finding]:
        raise RuntimeError("model exploded on purpose")


class StaticOCR:
    """An OCR double returning fixed lines (for routing tests that must not depend on RapidOCR)."""

    name = "static_ocr"

    def __init__(self, lines: list[Detection]):
        self.lines = lines

    def read(self, image: Image.Image) -> list[Detection]:
        return list(self.lines)


class BoxMaskSegmenter:
    """A segmenter double (Segmenter protocol): each box comes back with a mask filling it."""

    name = "boxfill"

    def __init__(self) -> None:
        self.calls = 0

    def segment(self, image: Image.Image, boxes: Sequence[Box]) -> list[Detection]:
        import numpy as np

        self.calls += 1
        results = []
        for box in boxes:
            mask = np.zeros((image.height, image.width), bool)
            x1, y1, x2, y2 = (int(v) for v in box.to_list())
            mask[y1:y2, x1:x2] = True
            results.append(Detection(box=box, score=1.0, mask=Mask.from_array(mask)))
        return results
