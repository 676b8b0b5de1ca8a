"""Test doubles for the V* searcher: cue models whose optima are known exactly.

The test image encodes each pixel's own coordinates in its colour, so a fake cue can tell from
the patch pixels alone where the patch lies in the original image (nothing is passed around).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from lookcloser.tools.vstar.cue import CueCalibration, CueOutput
from lookcloser.core.types import Box, Detection

GRID = 64


def coord_image(width: int, height: int) -> Image.Image:
    """R = x mod 256, G = y mod 256, B = (x // 256) + 16 * (y // 256): up to 4096 x 4096."""
    if width > 4096 or height > 4096:
        raise ValueError("coord_image supports at most 4096 px a side")
    xs = np.arange(width)[None, :].repeat(height, 0)
    ys = np.arange(height)[:, None].repeat(width, 1)
    rgb = np.stack([xs % 256, ys % 256, (xs // 256) + 16 * (ys // 256)], axis=-1).astype(np.uint8)
    return Image.fromarray(rgb)


def patch_origin(patch: Image.Image) -> tuple[int, int]:
    r, g, b = patch.getpixel((0, 0))
    return r + 256 * (b % 16), g + 256 * (b // 16)


@dataclass
class Blob:
    x: float
    y: float
    sigma: float
    weight: float = 1.0


@dataclass
class Thing:
    """A target: detected with `score` once the patch's longer side is <= visible_side (a text
    line for FakeTextCue, with its `text`)."""

    box: Box
    score: float
    visible_side: float
    text: str | None = None


@dataclass
class SyntheticCue:
    blobs: list[Blob]
    things: list[Thing] = field(default_factory=list)
    calibration: CueCalibration = field(
        default_factory=lambda: CueCalibration(0.5, 0.3, strong_peak_base=0.5, strong_peak_decay=1.0, strong_peak_floor=0.5)
    )
    name: str = "synthetic"
    seen: list[Box] = field(default_factory=list)

    def __call__(self, patch: Image.Image, phrase: str) -> CueOutput:
        x0, y0 = patch_origin(patch)
        pw, ph = patch.size
        self.seen.append(Box(x1=x0, y1=y0, x2=x0 + pw, y2=y0 + ph))
        xs = x0 + (np.arange(GRID) + 0.5) * pw / GRID
        ys = y0 + (np.arange(GRID) + 0.5) * ph / GRID
        heat = np.zeros((GRID, GRID))
        for blob in self.blobs:
            heat += blob.weight * np.exp(
                -((xs[None, :] - blob.x) ** 2 + (ys[:, None] - blob.y) ** 2) / (2 * blob.sigma**2)
            )
        detections = []
        for thing in self.things:
            b = thing.box
            inside = b.x1 >= x0 and b.y1 >= y0 and b.x2 <= x0 + pw and b.y2 <= y0 + ph
            if inside and max(pw, ph) <= thing.visible_side:
                detections.append(Detection(box=b.shift(-x0, -y0), score=thing.score, label=phrase))
        return CueOutput(heatmap=heat, peak=float(heat.max()), detections=detections)


@dataclass
class FakeTextCue:
    """A read-all cue: the map is 1 inside each text line; a line reads legibly (0.95) once the
    patch's longer side is <= its visible_side, else it is read badly (0.6, text '?')."""

    lines: list[Thing]
    calibration: CueCalibration = field(
        default_factory=lambda: CueCalibration(0.9, 0.5, strong_peak_base=0.3, strong_peak_decay=1.0, strong_peak_floor=0.3)
    )
    name: str = "fake-text"
    seen: list[Box] = field(default_factory=list)

    def __call__(self, patch: Image.Image, phrase: str) -> CueOutput:
        x0, y0 = patch_origin(patch)
        pw, ph = patch.size
        self.seen.append(Box(x1=x0, y1=y0, x2=x0 + pw, y2=y0 + ph))
        heat = np.zeros((ph, pw), dtype=np.float32)
        detections = []
        for line in self.lines:
            b = line.box.shift(-x0, -y0).clip(pw, ph)
            if b.area <= 0:
                continue
            heat[int(b.y1):int(np.ceil(b.y2)), int(b.x1):int(np.ceil(b.x2))] = 1.0
            whole = b.area >= line.box.area * 0.99
            if whole and max(pw, ph) <= line.visible_side:
                detections.append(Detection(box=b, score=0.95, text=line.text))
            elif whole:
                detections.append(Detection(box=b, score=0.6, text="?"))
        return CueOutput(heatmap=heat, peak=float(heat.max()), detections=detections, extra={"scale": 1.0})
