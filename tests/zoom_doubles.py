"""Scripted zooming VLMs for the zoom strategy's tests: they read only the pixels of the images they are sent.

The photo holds a 12-bit number as a row of 3x3-px black/white cells, too fine to read once the photo is shrunk
for the overview. `ZoomingReader` behaves like a trained zoomer: it zooms into the quarter of the photo that
holds the code, then (the quarter still too coarse) into the code within that view, and reads the bits at the
cell centres where its requested box says the cells must be. It answers right only when each view it gets shows
exactly the box it asked for.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from tests.openai_stub import completion

CELL = 3          # photo pixels per code cell
BITS = 12
CODE_AT = (3000, 2200)  # top-left of the code in the photo
PHOTO = (4000, 3000)


def code_photo(number: int, *, seed: int = 0) -> Image.Image:
    """A 4000x3000 grey-noise photo with `number` written as BITS cells (white = 1) at CODE_AT."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(90, 160, size=(PHOTO[1], PHOTO[0], 3), dtype=np.uint8)
    x0, y0 = CODE_AT
    pixels[y0 - CELL:y0 + 2 * CELL, x0 - CELL:x0 + (BITS + 1) * CELL] = 128  # a quiet frame around the code
    for bit in range(BITS):
        value = 255 if number >> (BITS - 1 - bit) & 1 else 0
        pixels[y0:y0 + CELL, x0 + bit * CELL:x0 + (bit + 1) * CELL] = value
    return Image.fromarray(pixels)


def images_of(request: dict) -> list[Image.Image]:
    """Every image of a chat-completions request, in order (decoded from their data URLs)."""
    found = []
    for message in request.get("messages", []):
        content = message.get("content")
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("type") == "image_url":
                data = part["image_url"]["url"].split(",", 1)[1]
                found.append(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))
    return found


def read_bits(view: Image.Image, view_box: tuple[float, float, float, float]) -> int | None:
    """The number read at the cell centres, where the code must be if `view` shows `view_box` (photo pixels);
    None when a cell is under 4 px in the view (too coarse to trust) or a cell is neither black nor white."""
    bx1, by1, bx2, by2 = view_box
    sx, sy = view.width / (bx2 - bx1), view.height / (by2 - by1)
    if CELL * min(sx, sy) < 4:
        return None
    grey = np.asarray(view.convert("L"), dtype=np.float32)
    number = 0
    for bit in range(BITS):
        cx = (CODE_AT[0] + (bit + 0.5) * CELL - bx1) * sx
        cy = (CODE_AT[1] + 0.5 * CELL - by1) * sy
        if not (0 <= cx < view.width and 0 <= cy < view.height):
            return None
        value = grey[int(cy), int(cx)]
        if 60 < value < 195:
            return None
        number = number << 1 | (value >= 195)
    return number


def relative(box: tuple[float, float, float, float], within: tuple[float, float, float, float]) -> list[int]:
    """`box` (photo pixels) in 0-1000 coordinates of the view showing `within`."""
    wx1, wy1, wx2, wy2 = within
    return [round((box[0] - wx1) / (wx2 - wx1) * 1000), round((box[1] - wy1) / (wy2 - wy1) * 1000),
            round((box[2] - wx1) / (wx2 - wx1) * 1000), round((box[3] - wy1) / (wy2 - wy1) * 1000)]


@dataclass
class ZoomingReader:
    """The scripted zoomer. form: "native" (OpenAI tool_calls) or "hermes" (<tool_call> text)."""

    form: str = "native"
    calls: list[dict] = field(default_factory=list)  # what it asked for, per turn
    readings: list[int | None] = field(default_factory=list)

    QUARTER = (2000.0, 1500.0, 4000.0, 3000.0)
    CLOSE = (2960.0, 2160.0, 3080.0, 2240.0)

    def __call__(self, request: dict) -> dict:
        images = images_of(request)
        photo_box = (0.0, 0.0, float(PHOTO[0]), float(PHOTO[1]))
        if len(images) == 1:
            reading = read_bits(images[0], photo_box)
            self.readings.append(reading)
            if reading is not None:
                return completion(f"<answer>{reading}</answer>")
            return self._zoom(relative(self.QUARTER, photo_box), "the lower right quarter", img_idx=0)
        if len(images) == 2:
            reading = read_bits(images[1], self.QUARTER)
            self.readings.append(reading)
            if reading is None:  # still too coarse: zoom into the code, in the coordinates of view 1
                return self._zoom(relative(self.CLOSE, self.QUARTER), "the code", img_idx=1)
            return completion(f"<answer>{reading}</answer>")
        reading = read_bits(images[-1], self.CLOSE)
        self.readings.append(reading)
        return completion(f"<think>I can read the cells now.</think><answer>{reading}</answer>")

    def _zoom(self, bbox: list[int], label: str, img_idx: int) -> dict:
        arguments = {"bbox_2d": bbox, "label": label, "img_idx": img_idx}
        self.calls.append(arguments)
        if self.form == "hermes":
            call = json.dumps({"name": "image_zoom_in_tool", "arguments": arguments})
            return completion(f"<think>Too small to read; zooming in.</think>\n<tool_call>\n{call}\n</tool_call>")
        reply = completion(None)
        reply["choices"][0]["message"]["tool_calls"] = [{
            "id": f"call_{len(self.calls)}", "type": "function",
            "function": {"name": "image_zoom_in_tool", "arguments": json.dumps(arguments)}}]
        reply["choices"][0]["finish_reason"] = "tool_calls"
        return reply
