"""Protocols for the four tool roles. A tool is any object with the right method and a `name`.

Detectors, segmenters and OCR all answer with `Detection`s (a box and a score, plus a label, the
text read or a mask). All boxes are pixels of the image the tool was given; the agent maps them to
the original image.
"""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

from PIL import Image

from lookcloser.core.types import Box, Detection, Finding, Target

__all__ = ["OCR", "PROTOCOLS", "ROLES", "Detector", "Localizer", "Segmenter"]

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
    """Open-vocabulary detector: all phrases in one pass (batched, "a . b . c" style); one list of
    detections per phrase, in phrase order."""

    name: str

    def detect(self, image: Image.Image, phrases: Sequence[str]) -> list[list[Detection]]: ...


@runtime_checkable
class Segmenter(Protocol):
    """Turns box prompts into masks: one Detection per box, in order, with `mask` set (a `Mask` the
    size of the image), the box (the prompt, or the mask's tighter box) and `score` = the
    segmenter's mask quality when it gives one (else 1.0)."""

    name: str

    def segment(self, image: Image.Image, boxes: Sequence[Box]) -> list[Detection]: ...


@runtime_checkable
class OCR(Protocol):
    """Reads every line of text in an image: one Detection per line, the text in `text`."""

    name: str

    def read(self, image: Image.Image) -> list[Detection]: ...


PROTOCOLS = {"localizer": Localizer, "detector": Detector, "segmenter": Segmenter, "ocr": OCR}
