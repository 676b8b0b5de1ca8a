"""The `vlm` cue: a VLM's yes-probability per sub-patch (ZoomEye-style), for users without a detector.

For each cell of a small grid over the patch, the VLM is asked "is there a {target} here?" and
P(yes) becomes that cell's heat. The grid follows SEAL's split rule (2x2, or 1x4 / 4x1 for
elongated patches), so each question is about exactly the sub-image the search would visit next.

A VLM gives no boxes, so a search would never see a detection and would only end by exhausting
the tree. To end it sensibly, a cell becomes a detection (its box, score = P(yes)) once it is
small enough to be the final crop: longer side <= `max_box_side` (default 448 px, the native
input size of common VLM vision encoders, so the VLM already sees such a cell at full resolution
and zooming further adds little). Larger cells only guide the search.

Called by the ZoomEye strategy (zoomeye.py) with the hint `zoomeye=ZoomEyeAsk(...)`, the cue asks
ZoomEye's questions instead: existence and latent confidences (2·P(yes) − 1, in [-1, 1]) of each
child the strategy names, each shown as ZoomEye shows a node (the whole photo with the region
outlined in red, plus the region's enlarged view), and the answering confidence of the patch itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from lookcloser.tools.vstar.cue import CueCalibration, CueOutput, check_cue_input
from lookcloser.core.types import Box, Detection

DEFAULT_PROMPT = "Is there a {target} in the image? Answer Yes or No."

# ZoomEye's three questions (zoom_model.py, init_prompts), in our words with the same meaning. The whole
# image is asked the "global" form; any other node the "zoom" form, after the two images are introduced.
ZOOMEYE_GLOBAL = {
    "existence": DEFAULT_PROMPT,
    "latent": "Using common sense and what the image shows, could a {target} be found by zooming into the image? "
              "Answer Yes or No, then give the reason.",
}
ZOOMEYE_ZOOM_INTRO = ("The first image is the whole photo; the red rectangle marks the region in focus. "
                      "The second image shows that region enlarged.\n")
ZOOMEYE_ZOOM = {
    "existence": "Is there a {target} in the enlarged region? Answer Yes or No.",
    "latent": "Using common sense, the enlarged region and where it lies in the photo, could a {target} be found "
              "by zooming further into this region? Answer Yes or No, then give the reason.",
}
ZOOMEYE_ANSWERING = "Question: {question}\nCan the question be answered from the visual information available? " \
                    "Answer Yes or No."


def confidence(p_yes: float) -> float:
    """ZoomEye's confidence (zoom_model.py, _cal_confidence): P(yes) over the yes/no tokens mapped to [-1, 1]."""
    return 2.0 * (float(p_yes) - 0.5)


def view_box(box: Box, width: int, height: int, patch_size: int, patch_scale: float | None) -> tuple[int, int, int, int]:
    """The window ZoomEye shows for a node (zoom_model.py, get_patch): centred on the node, at least
    `patch_size` a side, times `patch_scale`; clipped at the left/top first, then cut at the right/bottom
    (not shifted back, so a node at the edge gets a smaller window)."""
    side_w = max(int(np.ceil(box.width)), patch_size)
    side_h = max(int(np.ceil(box.height)), patch_size)
    if patch_scale is not None:
        side_w, side_h = int(side_w * patch_scale), int(side_h * patch_scale)
    cx, cy = int(box.x1 + box.width / 2), int(box.y1 + box.height / 2)
    left, top = max(0, cx - side_w // 2), max(0, cy - side_h // 2)
    return left, top, min(left + side_w, width), min(top + side_h, height)


@dataclass(frozen=True)
class ZoomEyeAsk:
    """The ZoomEye strategy's hint for one visited patch (see the module docstring).

    image: the whole photo; box: the patch (original pixels); children: the nodes to rank (original
    pixels, may be empty); question: asked of the patch itself (answering confidence); answer_stop:
    an answering confidence at or above it ends the search, so the children are not asked (None: always
    asked); patch_size / patch_scale: the node window (`view_box`) and the side of the main image."""

    image: Image.Image
    box: Box
    children: tuple[Box, ...]
    question: str
    answer_stop: float | None
    patch_size: int = 448
    patch_scale: float | None = 1.2


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
    Cost: one VLM forward per cell, i.e. 4 per visited patch at the default grid (`vlm_calls`);
    with the `zoomeye` hint, 1 (answering) + 2 per child named (existence, latent).
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
        self._small: tuple[Image.Image, int, Image.Image] | None = None  # (photo, patch_size, shrunk photo)

    def __call__(self, patch: Image.Image, phrase: str, zoomeye: ZoomEyeAsk | None = None) -> CueOutput:
        phrase = check_cue_input("vlm", patch, phrase)
        if zoomeye is not None:
            return self._zoomeye(phrase, zoomeye)
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

    # ------------------------------------------------------------------ ZoomEye
    def _p_yes(self, images: list[Image.Image], prompt: str) -> float:
        p = float(self.vlm.yes_probability(images if len(images) > 1 else images[0], prompt))
        self.vlm_calls += 1
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{getattr(self.vlm, 'name', 'the VLM')} returned yes_probability {p}, not in [0, 1]")
        return p

    def _small_photo(self, ask: ZoomEyeAsk) -> Image.Image:
        """The photo with its longer side `patch_size` (made once per photo, then copied per node; one
        read of the cache, so a search on another thread that replaces it cannot hand this one its photo)."""
        cached = self._small
        if cached is None or cached[0] is not ask.image or cached[1] != ask.patch_size:
            width, height = ask.image.size
            scale = ask.patch_size / max(width, height)
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            cached = (ask.image, ask.patch_size, ask.image.convert("RGB").resize(size, Image.Resampling.BICUBIC))
            self._small = cached
        return cached[2]

    def zoomeye_views(self, ask: ZoomEyeAsk, box: Box) -> tuple[list[Image.Image], bool]:
        """The images ZoomEye shows for node `box` and whether they are the zoom form: the whole photo
        alone for the root; else the photo (longer side `patch_size`) with the node window outlined in red
        (line width 1/120 of the side) and the window itself at native resolution."""
        image = ask.image
        width, height = image.size
        if (box.x1, box.y1, box.x2, box.y2) == (0, 0, width, height):
            return [image], False
        window = view_box(box, width, height, ask.patch_size, ask.patch_scale)
        scale = ask.patch_size / max(width, height)
        main = self._small_photo(ask).copy()
        line = max(1, max(main.size) // 120)
        x1, y1, x2, y2 = (round(v * scale) for v in window)
        outline = (max(0, x1 - line), max(0, y1 - line), min(main.width, x2 + line) - 1, min(main.height, y2 + line) - 1)
        ImageDraw.Draw(main).rectangle(outline, outline=(255, 0, 0), width=line)
        return [main, image.crop(window)], True

    def _zoomeye_ask(self, ask: ZoomEyeAsk, box: Box, kind: str, value: str) -> float:
        images, zoom = self.zoomeye_views(ask, box)
        if kind == "answering":
            prompt = ZOOMEYE_ANSWERING.format(question=value)
        else:
            prompt = (ZOOMEYE_ZOOM[kind] if zoom else ZOOMEYE_GLOBAL[kind]).format(target=value)
        return confidence(self._p_yes(images, (ZOOMEYE_ZOOM_INTRO if zoom else "") + prompt))

    def _zoomeye(self, phrase: str, ask: ZoomEyeAsk) -> CueOutput:
        """ZoomEye's confidences for one visited patch: answering first (as ZoomEye pops a node), then,
        unless that ends the search, existence and latent of each child (as ZoomEye ranks the queue)."""
        calls = self.vlm_calls
        answering = self._zoomeye_ask(ask, ask.box, "answering", ask.question)
        existence: list[float] = []
        latent: list[float] = []
        if ask.answer_stop is None or answering < ask.answer_stop:
            for child in ask.children:
                existence.append(self._zoomeye_ask(ask, child, "existence", phrase))
                latent.append(self._zoomeye_ask(ask, child, "latent", phrase))
        heatmap = _paint(ask.box, ask.children[:len(existence)], [(e + 1) / 2 for e in existence])
        return CueOutput(
            heatmap=heatmap,
            peak=float(heatmap.max()),
            extra={"answering": answering, "existence": existence, "latent": latent,
                   "vlm_calls": self.vlm_calls - calls},
        )


def _paint(patch: Box, children: tuple[Box, ...], values: list[float], side: int = 64) -> np.ndarray:
    """A small map over the patch with each child's region set to its value (for the step's thumbnail)."""
    scale = side / max(patch.width, patch.height, 1.0)
    heatmap = np.zeros((max(1, round(patch.height * scale)), max(1, round(patch.width * scale))), dtype=np.float32)
    for child, value in zip(children, values):
        x1, y1 = int((child.x1 - patch.x1) * scale), int((child.y1 - patch.y1) * scale)
        x2, y2 = round((child.x2 - patch.x1) * scale), round((child.y2 - patch.y1) * scale)
        heatmap[y1:max(y2, y1 + 1), x1:max(x2, x1 + 1)] = value
    return heatmap
