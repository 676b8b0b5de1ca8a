"""The simplest localizer: one pass of a tool over the whole image, no zooming.

Kept as a baseline and for images small enough that zooming adds nothing. Text targets go to the
configured OCR tool (every line read becomes a finding); object targets go to the configured
detector. It is *not* a substitute for the V* searcher on large images (small details vanish when
tools downscale a big photo).
"""

from __future__ import annotations

from typing import Annotated, Any

from PIL import Image
from pydantic import Field

from lookcloser.core.types import Finding, Target

__all__ = ["WholeImageLocalizer", "create_whole_image_localizer"]


class WholeImageLocalizer:
    def __init__(self, ocr: Any = None, detector: Any = None, min_score: Annotated[float, Field(ge=0, le=1)] = 0.3):
        self.name = "whole_image"
        self.ocr = ocr
        self.detector = detector
        self.min_score = min_score

    def locate(self, image: Image.Image, target: Target) -> list[Finding]:
        if target.kind == "text":
            if self.ocr is None:
                raise LookupError("whole_image localizer needs an 'ocr' tool for text targets")
            tool = f"{self.name}+{self.ocr.name}"
            found = [Finding(target=target, status="found", box=line.box, score=line.score, text=line.text, tool=tool)
                     for line in self.ocr.read(image)]
            return found or [Finding(target=target, status="not_found", tool=tool)]
        if self.detector is None:
            raise LookupError(
                "whole_image localizer needs a 'detector' tool for object targets; none is configured "
                "(use the default 'vstar' localizer, or pass tools={'detector': ...})"
            )
        detections = [d for d in self.detector.detect(image, [target.name])[0] if d.score >= self.min_score]
        tool = f"{self.name}+{self.detector.name}"
        if not detections:
            return [Finding(target=target, status="not_found", tool=tool)]
        best = max(detections, key=lambda d: d.score)
        return [Finding(target=target, status="found", box=best.box, score=best.score, mask=best.mask, tool=tool)]


def create_whole_image_localizer(context: Any = None, **options: Any) -> WholeImageLocalizer:
    ocr = _optional(context, "ocr")
    detector = _optional(context, "detector")
    return WholeImageLocalizer(ocr=ocr, detector=detector, **options)


def _optional(context: Any, role: str) -> Any:
    if context is None:
        return None
    try:
        return context.tool(role)
    except LookupError:
        return None
