"""The `detector` cue: any registered open-vocabulary detector, its boxes splatted into a heatmap.

A detector gives boxes, not a map; the searcher needs a map to rank sub-patches. Each box is
drawn as a score-weighted blob (a Gaussian over the box, or the filled box) and overlapping
blobs are combined with max, not sum, so ten duplicates of a weak box do not outrank one strong
box and the map's peak equals the best score. The detections pass through unchanged (clipped
to the patch), so the search stops on the detector's own confidence.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from PIL import Image

from lookcloser.tools.vstar.cue import CueCalibration, CueOutput, check_cue_input
from lookcloser.core.types import Detection

#: Longer side of the splatted map; the search resizes it to the patch.
MAP_SIDE = 64


class DetectorCue:
    """Wraps a Detector (`detect(image, phrases) -> list[list[Detection]]`) as a cue model.

    splat: "gaussian" (default) puts a Gaussian at each box centre with standard deviation
    `splat_sigma` x the box's width/height, so the heat fades toward the box edges and the mass
    sits where the object is; "box" fills the box with its score.

    Calibration (detector scores, tuned for GroundingDINO-like models whose usual box threshold is
    0.35): stop 0.5, accept 0.3 (SEAL's values, which suit calibrated detectors); the map's peak
    is the best score, trusted above max(0.3, 0.5 * 0.8 ** (level - 1)). Pass `calibration=` for
    a detector with a different score scale.
    """

    name = "detector"
    calibration = CueCalibration(
        stop_confidence=0.5,
        accept_confidence=0.3,
        strong_peak_base=0.5,
        strong_peak_decay=0.8,
        strong_peak_floor=0.3,
    )

    def __init__(
        self,
        detector: Any,
        splat_sigma: float = 0.5,
        *,
        splat: Literal["gaussian", "box"] = "gaussian",
        calibration: CueCalibration | None = None,
    ) -> None:
        if not callable(getattr(detector, "detect", None)):
            raise TypeError(
                f"the 'detector' cue needs a detector with detect(image, phrases); got {type(detector).__name__}"
            )
        if splat not in ("gaussian", "box"):
            raise ValueError(f"splat must be 'gaussian' or 'box', got {splat!r}")
        if not splat_sigma > 0:
            raise ValueError(f"splat_sigma must be > 0, got {splat_sigma!r}")
        self.detector = detector
        self.splat_sigma = float(splat_sigma)
        self.splat = splat
        if calibration is not None:
            self.calibration = calibration
        self.detector_name = str(getattr(detector, "name", type(detector).__name__))
        self.detector_calls = 0

    def __call__(self, patch: Image.Image, phrase: str) -> CueOutput:
        phrase = check_cue_input("detector", patch, phrase)
        width, height = patch.size
        results = self.detector.detect(patch, [phrase])
        self.detector_calls += 1
        if len(results) != 1:
            raise ValueError(f"detector '{self.detector_name}' returned {len(results)} result lists for 1 phrase")
        detections = []
        for det in results[0]:
            box = det.box.clip(width, height)
            if box.area > 0:
                detections.append(Detection(box=box, score=float(det.score), label=det.label or phrase))
        detections.sort(key=lambda d: -d.score)
        heatmap = self.splat_map(detections, width, height)
        return CueOutput(
            heatmap=heatmap,
            peak=float(heatmap.max()),
            detections=detections,
            extra={"detector": self.detector_name, "raw_detections": len(results[0])},
        )

    def splat_map(self, detections: list[Detection], width: int, height: int) -> np.ndarray:
        """A (rows, cols) float32 map with the patch's aspect; each cell holds the max blob value."""
        scale = MAP_SIDE / max(width, height)
        cols = max(1, min(width, round(width * scale)))
        rows = max(1, min(height, round(height * scale)))
        sx, sy = cols / width, rows / height
        xs = (np.arange(cols) + 0.5) / sx  # cell centres in patch pixels
        ys = (np.arange(rows) + 0.5) / sy
        heat = np.zeros((rows, cols), dtype=np.float32)
        for det in detections:
            b = det.box
            if self.splat == "box":
                inside_x = (xs >= b.x1) & (xs <= b.x2)
                inside_y = (ys >= b.y1) & (ys <= b.y2)
                blob = np.outer(inside_y, inside_x).astype(np.float32)
                if not blob.any():  # a box smaller than a cell still marks its cell
                    cx, cy = b.center
                    blob[min(int(cy * sy), rows - 1), min(int(cx * sx), cols - 1)] = 1.0
            else:
                cx, cy = b.center
                # at least half a map cell wide, so a tiny box is not lost between cell centres
                gx = max(self.splat_sigma * b.width, 0.5 / sx)
                gy = max(self.splat_sigma * b.height, 0.5 / sy)
                blob = np.outer(np.exp(-0.5 * ((ys - cy) / gy) ** 2), np.exp(-0.5 * ((xs - cx) / gx) ** 2))
                blob = (blob / blob.max()).astype(np.float32)
            np.maximum(heat, det.score * blob, out=heat)
        return heat
