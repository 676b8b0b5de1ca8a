"""OCR role backed by RapidOCR (`rapidocr` 3.x, the `[ocr]` extra).

Its wheel bundles the PP-OCRv6 small detector/recogniser ONNX models (and an angle classifier), so
it works offline and without torch: the engine is always pointed at those files, because RapidOCR
downloads any model it does not find. Note the engine shrinks large images (longer side 2000 px)
before detection, so small text in a big photo can be lost on a whole-image pass: that is why text
targets go through the V* searcher, which runs OCR on zoomed-in patches.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from PIL import Image

from lookcloser.core.errors import ModelLoadError, SettingsError
from lookcloser.core.types import Box, Detection

__all__ = ["RapidOCRTool", "engine_params"]

_SECTIONS = ("Global", "Det", "Cls", "Rec")
_MISSING = object()


def engine_params(options: dict[str, Any]) -> dict[str, Any]:
    """RapidOCR 3.x `params` for the tool's engine options: a dotted key ("Det.box_thresh") as is, a
    bare one ("text_score") in the one config section that has it; unless set: the bundled models,
    the text cue's detector normalisation, no angle classifier (as the cue) and a quiet logger. An unknown or ambiguous name is a SettingsError naming it."""
    from lookcloser.tools.vstar.ppocr import (DETECTOR_MEAN, DETECTOR_STD, classifier_path, detector_path,
                                              engine_config, recognizer_path)

    from omegaconf import OmegaConf

    config = engine_config()
    params: dict[str, Any] = {}
    for name, value in options.items():
        if "." in name:
            known = OmegaConf.select(config, name, default=_MISSING) is not _MISSING
            full = name
        else:
            sections = [s for s in _SECTIONS if name in config[s]]
            if len(sections) > 1:
                raise SettingsError(f"rapidocr engine option '{name}' is in several sections of RapidOCR's "
                                    f"config ({', '.join(sections)}): write e.g. {sections[0]}.{name}")
            known, full = bool(sections), f"{sections[0]}.{name}" if sections else name
        if not known:
            raise SettingsError(f"rapidocr engine option '{name}' is not in RapidOCR 3.x's config.yaml "
                                "(a key of Global, Det, Cls, Rec or EngineConfig, dotted where ambiguous)")
        params[full] = value
    params.setdefault("Global.log_level", "error")  # it warns on every image without text
    params.setdefault("Det.mean", list(DETECTOR_MEAN))  # the text cue's normalisation (ppocr's docstring)
    params.setdefault("Det.std", list(DETECTOR_STD))
    # no 180-degree classifier: the text cue reads without it (its reads stand in for this tool's), and
    # on small crops it flips upright words (measured: a 14-px "TAXI" read as "IXVI")
    params.setdefault("Global.use_cls", False)
    for part, path in (("Det", detector_path), ("Cls", classifier_path), ("Rec", recognizer_path)):
        if params.get(f"{part}.model_path") is None:
            params[f"{part}.model_path"] = str(path())
    return params


class RapidOCRTool:
    """Reads all text lines in an image: `read(image) -> list[Detection]`, one per line, with the
    text in `Detection.text`, the recognizer's confidence as `score`, boxes in image pixels.
    Other keyword options go to the engine's config (`engine_params`: text_score=0.3,
    box_thresh=0.6, Det.unclip_ratio=2.0, ...)."""

    def __init__(self, min_score: float = 0.5, **engine_options: Any) -> None:
        self.name = "rapidocr"
        self.min_score = min_score
        self._engine_options = engine_options
        self._params = engine_params(engine_options) if engine_options else None  # a bad name fails here
        self._engine = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> Any:
        """The rapidocr.RapidOCR instance, created on first use."""
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    params = self._params or engine_params({})  # raises ModelLoadError without rapidocr 3.x
                    from rapidocr import RapidOCR

                    try:
                        self._engine = RapidOCR(params=params)
                    except (TypeError, ValueError) as exc:
                        raise ModelLoadError(f"RapidOCR rejected its settings {self._engine_options}: {exc}") from exc
        return self._engine

    @property
    def reads_like_the_text_cue(self) -> bool:
        """With the bundled models and no engine options this reads what the V* text cue reads (the same
        PP-OCRv6 files and settings), so the V* localizer keeps the cue's reads instead of reading again."""
        return not self._engine_options

    def describe(self) -> dict[str, Any]:
        return {"tool": self.name, "backend": "rapidocr", "device": "cpu"}

    def read(self, image: Image.Image) -> list[Detection]:
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
        engine = self.engine
        with self._lock:  # the engine keeps per-call state in its post-processors
            result = engine(bgr)
        lines = []
        for points, text, score in zip(*(_field(result, name) for name in ("boxes", "txts", "scores"))):
            xs = [p[0] for p in points]
            ys = [p[1] for p in points]
            box = Box(x1=min(xs), y1=min(ys), x2=max(xs), y2=max(ys)).clip(image.width, image.height)
            if float(score) >= self.min_score and str(text).strip():
                lines.append(Detection(box=box, score=float(score), text=str(text).strip()))
        return lines


def _field(result: Any, name: str) -> Any:
    """One field of the engine's output; empty when it found nothing (its output's fields are None)."""
    values = getattr(result, name, None)
    return () if values is None else values
