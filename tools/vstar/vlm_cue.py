"""The `vlm` cue: a VLM's yes-probability per sub-patch (ZoomEye-style), for users without a detector.

For each cell of a small grid over the patch, the VLM is asked "is there a {target} here?" and
P(yes) becomes that cell's heat. The grid follows SEAL's split rule (2x2, or 1x4 / 4x1 for
elongated patches), so each question is about exactly the sub-image the search would visit next.

A VLM gives no boxes, so a search would never see a detection and would only end by exhausting
the tree. To end it sensibly, a cell becomes a detection (its box, score = P(yes)) once it is
small enough to be the final crop: longer side <= `max_box_side` (default 448 px, the native
input size of common VLM vision encoders, so the VLM already sees such a cell at full resolution
and zooming further adds little). Larger cells only guide the search.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from lookcloser.tools.vstar.cue import CueCalibration, CueOutput, check_cue_input
from lookcloser.core.types import Box, Detection

DEFAULT_PROMPT = "Is there a {target} in the image? Answer Yes or No."


def grid_shape(width: int, height: int, grid: int) -> tuple[int, int]:
    """(columns, rows) of cells: SEAL's split rule scaled by `grid`, never more cells than pixels."""
    if height >= 2 * width:
        cols, rows = 1, grid * grid
    elif width >= 2 * height:
        cols, rows = grid * grid, 1
    else:
        cols, rows = grid, grid
    return max(1, min(cols, width)), max(1, min(rows, height))


def grid_cells(width: int, height: int, cols: int, rows: int) -> list[tuple[int, int, int, int]]:
    """Row-major cell boxes (x1, y1, x2, y2); the last row/column absorbs the remainder."""
    cw, ch = width // cols, height // rows
    cells = []
    for r in range(rows):
        for c in range(cols):
            x1, y1 = c * cw, r * ch
            x2 = width if c == cols - 1 else x1 + cw
            y2 = height if r == rows - 1 else y1 + ch
            cells.append((x1, y1, x2, y2))
    return cells


class VLMCue:
    """ZoomEye-style cue from any VLM backend that implements `yes_probability(image, prompt)`.

    Units and calibration (probabilities, not logits):
    * heatmap: P(yes) per grid cell, shape (rows, cols); peak = the largest P(yes).
    * stop_confidence 0.8: a small cell the VLM is sure about ends the search; accept 0.5: the
      best small cell is kept at the end when the VLM leaned "yes" at all.
    * strong peak: max(0.5, 0.8 * 0.85 ** (level - 1)): at the root a cell must reach 0.8 to be
      trusted (the whole image is seen downscaled, so a lukewarm yes is weak evidence), relaxing
      to "more likely yes than no" deeper down.
    Cost: one VLM forward per cell, i.e. 4 per visited patch at the default grid (`vlm_calls`).
    """

    name = "vlm"
    calibration = CueCalibration(
        stop_confidence=0.8,
        accept_confidence=0.5,
        strong_peak_base=0.8,
        strong_peak_decay=0.85,
        strong_peak_floor=0.5,
    )

    def __init__(
        self,
        vlm: Any,
        prompt: str = DEFAULT_PROMPT,
        grid: int = 2,
        *,
        max_box_side: int = 448,
        min_score: float = 0.1,
        calibration: CueCalibration | None = None,
    ) -> None:
        from lookcloser.core.vlm_protocol import supports

        if vlm is None or not supports(vlm, "yes_probability"):
            name = getattr(vlm, "name", type(vlm).__name__)
            raise TypeError(
                f"the 'vlm' cue needs a VLM backend with yes_probability(image, prompt); '{name}' has none "
                "(use a local transformers VLM, or the 'owlv2' / 'detector' cue)"
            )
        if "{target}" not in prompt:
            raise ValueError(f"the vlm cue prompt must contain '{{target}}', got {prompt!r}")
        if not isinstance(grid, int) or grid < 1:
            raise ValueError(f"grid must be a positive integer, got {grid!r}")
        self.vlm = vlm
        self.prompt = prompt
        self.grid = grid
        self.max_box_side = max_box_side
        self.min_score = min_score
        if calibration is not None:
            self.calibration = calibration
        self.vlm_calls = 0

    def __call__(self, patch: Image.Image, phrase: str) -> CueOutput:
        phrase = check_cue_input("vlm", patch, phrase)
        width, height = patch.size
        cols, rows = grid_shape(width, height, self.grid)
        question = self.prompt.format(target=phrase)
        probabilities = []
        detections = []
        for x1, y1, x2, y2 in grid_cells(width, height, cols, rows):
            p = float(self.vlm.yes_probability(patch.crop((x1, y1, x2, y2)), question))
            self.vlm_calls += 1
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{getattr(self.vlm, 'name', 'the VLM')} returned yes_probability {p}, not in [0, 1]")
            probabilities.append(p)
            if max(x2 - x1, y2 - y1) <= self.max_box_side and p >= self.min_score:
                detections.append(Detection(box=Box(x1=x1, y1=y1, x2=x2, y2=y2), score=p, label=phrase))
        heatmap = np.asarray(probabilities, dtype=np.float32).reshape(rows, cols)
        detections.sort(key=lambda d: -d.score)
        return CueOutput(
            heatmap=heatmap,
            peak=float(heatmap.max()),
            detections=detections,
            extra={"grid": [rows, cols], "vlm_calls": rows * cols},
        )
