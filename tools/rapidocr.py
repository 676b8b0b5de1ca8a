"""OCR role backed by RapidOCR (`rapidocr-onnxruntime==1.4.4`, the `[ocr]` extra).

Its wheel bundles the PP-OCRv4 detector/recogniser ONNX models, so it works offline and without
torch. Note the engine shrinks large images before detection, so small text in a big photo is
lost on a whole-image pass: that is why text targets go through the V* searcher, which runs OCR on
zoomed-in patches.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from PIL import Image

from lookcloser.errors import ModelLoadError
from lookcloser.types import Box, Detection

__all__ = ["RapidOCRTool"]


class RapidOCRTool:
    """Reads all text lines in an image: `read(image) -> list[Detection]`, one per line, with the
    text in `Detection.text`, the recognizer's confidence as `score`, boxes in image pixels."""

    def __init__(self, min_score: float = 0.5, **engine_options: Any) -> None:
        self.name = "rapidocr"
        self.min_score = min_score
        self._engine_options = engine_options
        self._engine = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> Any:
        """The rapidocr_onnxruntime.RapidOCR instance, created on first use."""
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    try:
                        from rapidocr_onnxruntime import RapidOCR
                    except ImportError as exc:
                        raise ModelLoadError(
                            "RapidOCR is not installed: pip install 'lookcloser[ocr]' "
                            "(rapidocr-onnxruntime==1.4.4 ships its models, no download needed)"
                        ) from exc
                    self._engine = RapidOCR(**self._engine_options)
        return self._engine

    def describe(self) -> dict[str, Any]:
        return {"tool": self.name, "backend": "rapidocr-onnxruntime", "device": "cpu"}

    def read(self, image: Image.Image) -> list[Detection]:
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
        engine = self.engine
        with self._lock:  # the engine keeps per-call state in its post-processors
            result, _ = engine(bgr)
        lines = []
        for points, text, score in result or []:
            xs = [p[0] for p in points]
            ys = [p[1] for p in points]
            box = Box(x1=min(xs), y1=min(ys), x2=max(xs), y2=max(ys)).clip(image.width, image.height)
            if float(score) >= self.min_score and str(text).strip():
                lines.append(Detection(box=box, score=float(score), text=str(text).strip()))
        return lines
