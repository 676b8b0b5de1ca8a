"""Test doubles for the VLM's own boxes (tests/ only): a VLM stand-in that sees marker-coloured objects in the
image it is sent and boxes them the way Qwen2.5-VL (absolute pixels of its smart-resized input) or Qwen3-VL
(0-1000 relative) write them, and the 12-Mpx photo with such an object painted on a real picture.

`see` finds the object by colour in whatever pixels reach it, so a wrong resize, grid or mapping on the way
moves the box it answers with: the tests' IoU is measured on the original photo.
"""

from __future__ import annotations

import base64
import io
import json
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw

from lookcloser.core.vlm_protocol import ChatMessage, VLMReply

PHOTO = Path(__file__).resolve().parents[1] / "examples" / "vending_machine.jpg"
#: The marker colour (pure green, absent from the photo) and how far a pixel may be from it (JPEG, resampling).
MARKER = (0, 255, 0)
TOLERANCE = 60


def photo_12mp(box: tuple[int, int, int, int], *, size: tuple[int, int] = (4000, 3000)) -> Image.Image:
    """The example photo enlarged to 4000x3000 (12 Mpx) with a green ellipse filling `box` (original pixels)."""
    image = Image.open(PHOTO).convert("RGB").resize(size, Image.Resampling.BICUBIC)
    ImageDraw.Draw(image).ellipse(box, fill=MARKER)
    return image


def see(image: Image.Image, *, min_px: int = 3) -> tuple[int, int, int, int] | None:
    """The marker's bounding box in `image` pixels (x1, y1, x2, y2 exclusive), or None when it covers fewer than
    `min_px` pixels a side (too small to see at this resolution)."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    near = np.abs(pixels - np.array(MARKER)).max(axis=2) <= TOLERANCE
    ys, xs = np.nonzero(near)
    if len(xs) == 0:
        return None
    x1, x2, y1, y2 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    if min(x2 - x1, y2 - y1) < min_px:
        return None
    return x1, y1, x2, y2


def qwen_reply(image: Image.Image, label: str, style: str, grid: tuple[int, int] | None = None) -> str:
    """What a Qwen model answers about `image`: ```json [{"bbox_2d", "label"}]```, in pixels of `grid` (the size its
    processor resized the image to; default the image's own) for "absolute" (Qwen2.5-VL), 0-1000 for "relative"."""
    seen = see(image)
    if seen is None:
        return "```json\n[]\n```"
    width, height = image.size
    if style == "absolute":
        gw, gh = grid or image.size
        box = [round(seen[0] * gw / width), round(seen[1] * gh / height), round(seen[2] * gw / width),
               round(seen[3] * gh / height)]
    else:
        box = [round(seen[0] * 1000 / width), round(seen[1] * 1000 / height), round(seen[2] * 1000 / width),
               round(seen[3] * 1000 / height)]
    return "```json\n" + json.dumps([{"bbox_2d": box, "label": label}]) + "\n```"


class SeeingVLM:
    """A VLM double answering grounding prompts with the marker's box in `style` ("absolute" / "relative"), as
    the model would see the image it is sent (`grid_of(size)`: the size its processor resizes to, absolute style;
    default: as sent). Records every call's image size and prompt."""

    def __init__(self, label: str, style: str, *, grid_of: Any = None, name: str = "seeing",
                 box_format: str | None = None) -> None:
        self.name, self.label, self.style, self.grid_of = name, label, style, grid_of
        self.box_format = box_format
        self.calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def generate(self, messages: Sequence[ChatMessage], *, max_new_tokens: int = 256) -> VLMReply:
        image = next(p for m in messages for p in m.images)
        grid = self.grid_of(image.size) if self.grid_of else None
        text = qwen_reply(image, self.label, self.style, grid)
        with self._lock:
            self.calls.append({"size": image.size, "prompt": "\n".join(m.text for m in messages), "reply": text})
        return VLMReply(text=text, input_tokens=10, output_tokens=10)


def request_image(request: dict) -> Image.Image:
    """The (first) image of an OpenAI chat-completions request, decoded from its data URL."""
    for message in request.get("messages", []):
        for part in message.get("content") or []:
            if isinstance(part, dict) and part.get("type") == "image_url":
                data = part["image_url"]["url"].split(",", 1)[1]
                return Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")
    raise AssertionError("the request carries no image")
