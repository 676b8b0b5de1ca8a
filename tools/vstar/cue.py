"""The cue-model protocol of the V* searcher.

A cue model looks at one patch and a phrase and returns (a) a heatmap over the patch saying where
the target (or text) probably is and (b) scored detections in patch pixels. Each cue model carries
its own calibration: an OWLv2 score is not a SEAL logit, so "confident", "acceptable" and "strong
heatmap" are stated per model, not hard-coded in the search.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from lookcloser.core.types import Detection


@dataclass(frozen=True)
class CueCalibration:
    """Per-cue-model thresholds.

    stop_confidence: a detection at or above this ends the search (SEAL: 0.5).
    accept_confidence: when the queue runs dry, the best detection seen is accepted at or above
        this (SEAL: 0.3); below it the target is "not found".
    strong_peak_base / strong_peak_decay / strong_peak_floor: a heatmap is trusted at search level
        L (root = 1) when its peak exceeds max(floor, base * decay ** (L - 1)); SEAL uses
        base 6.0, decay 0.7, floor 3.0 on logits. Below it the contextual cue (ask the VLM) is used.
    """

    stop_confidence: float = 0.5
    accept_confidence: float = 0.3
    strong_peak_base: float = 6.0
    strong_peak_decay: float = 0.7
    strong_peak_floor: float = 3.0

    def strong_peak(self, level: int) -> float:
        return max(self.strong_peak_floor, self.strong_peak_base * self.strong_peak_decay ** (level - 1))


@dataclass
class CueOutput:
    """heatmap: float32 (h, w), non-negative, any resolution (the search resizes it to the patch).
    peak: the heatmap's strength in the cue model's own units, compared with `strong_peak`.
    detections: boxes in patch pixels with confidences in the calibration's units.
    """

    heatmap: np.ndarray
    peak: float
    detections: list[Detection] = field(default_factory=list)
    extra: dict = field(default_factory=dict)


def check_cue_input(cue_name: str, patch: Image.Image, phrase: str) -> str:
    """Shared input check of the object cues: the phrase with white space folded (never empty)
    and a patch of at least 1x1 pixel; a ValueError names the cue otherwise."""
    phrase = " ".join(str(phrase).split())
    if not phrase:
        raise ValueError(f"the {cue_name} cue needs a non-empty phrase to look for")
    if patch.width < 1 or patch.height < 1:
        raise ValueError(f"the {cue_name} cue got an empty patch of size {patch.size}")
    return phrase


@runtime_checkable
class CueModel(Protocol):
    name: str
    calibration: CueCalibration

    def __call__(self, patch: Image.Image, phrase: str) -> CueOutput: ...
