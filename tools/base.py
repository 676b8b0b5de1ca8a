"""Protocols for the four tool roles. A tool is any object with the right method and a `name`.

All boxes are pixels of the image the tool was given; the agent maps them to the original image.
"""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np
from PIL import Image

from lookcloser.types import Box, Detection, Finding, Target, TextLine

ROLES = ("localizer", "detector", "segmenter", "ocr")


@runtime_checkable
class Localizer(Protocol):
    """Finds a target in a (large) image. Returns findings in original-image pixels.

    For object targets this is usually one finding (found or not_found); for text targets it
    may be one finding per line read.
    """

    name: str

    def locate(self, image: Image.Image, target: Target) -> list[Finding]: ...


@runtime_checkable
class Detector(Protocol):
    """Open-vocabulary detector: all phrases in one pass (batched, "a . b . c" style)."""

    name: str

    def detect(self, image: Image.Image, phrases: Sequence[str]) -> list[list[Detection]]: ...


@runtime_checkable
class Segmenter(Protocol):
    """Turns box prompts into boolean masks the size of the image, one per box."""

    name: str

    def segment(self, image: Image.Image, boxes: Sequence[Box]) -> list[np.ndarray]: ...


@runtime_checkable
class OCR(Protocol):
    """Reads every line of text in an image."""

    name: str

    def read(self, image: Image.Image) -> list[TextLine]: ...


PROTOCOLS = {"localizer": Localizer, "detector": Detector, "segmenter": Segmenter, "ocr": OCR}
