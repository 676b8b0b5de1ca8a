"""SAM 2 (transformers) as a segmenter: box prompts (and optional points) -> one mask per box.

All boxes of one image go through ONE batched call (one image encoding, one mask-decoder pass
over every prompt). SAM 2 proposes three masks per prompt with a predicted IoU each; the best
(highest predicted IoU) is kept, resized to the image by transformers' own post-processing, and
returned as a `Detection` with that IoU as its score, the mask's tight box and the mask as RLE.

The model is loaded lazily, once per process per (model, device, dtype), and shared by every
instance and thread. torch / transformers are imported inside, so importing this module is cheap.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from lookcloser.core.hub import check_dtype, load_shared
from lookcloser.core.types import Box, Detection, Mask

__all__ = ["DEFAULT_MODEL", "Sam2Segmenter"]

DEFAULT_MODEL = "facebook/sam2.1-hiera-tiny"
_HINT = ("point the `model` option at a local directory holding a saved SAM 2 model and processor "
         "(save_pretrained output)")
_EXAMPLE = "/models/sam2.1-hiera-tiny"


Point = tuple[float, float]


class Sam2Segmenter:
    """Segmenter over a transformers SAM 2 (`Sam2Model` + `Sam2Processor`).

    mask_threshold: the logit above which a pixel is in the mask (transformers' default 0.0).
    """

    name = "sam2"

    def __init__(
        self,
        model: str | Path = DEFAULT_MODEL,
        device: str = "auto",
        dtype: Any = "auto",
        *,
        mask_threshold: float = 0.0,
    ) -> None:
        check_dtype(dtype, "SAM 2")
        self.model_name = str(model)
        self.device_spec = device
        self.dtype_spec = dtype
        self.mask_threshold = float(mask_threshold)
        self.calls = 0
        self._count_lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None  # (processor, model), from hub.load_shared's process cache

    def load(self) -> tuple[Any, Any]:
        """(processor, model), loaded on first use and shared with every instance of the same settings."""
        if self._loaded is not None:
            return self._loaded
        from transformers import Sam2Model, Sam2Processor

        processor, model = load_shared(
            Sam2Processor, Sam2Model, self.model_name, what="SAM 2", hint=_HINT, option="model", example=_EXAMPLE,
            device=self.device_spec, dtype=self.dtype_spec, mps=False, cuda_default="float32")
        self._loaded = (processor, model)
        return self._loaded

    def segment(
        self,
        image: Image.Image,
        boxes: Sequence[Box],
        points: Sequence[Sequence[Point]] | None = None,
        point_labels: Sequence[Sequence[int]] | None = None,
    ) -> list[Detection]:
        """One Detection per box, in order (one batched SAM 2 call for all of them).

        points: optional extra clicks per box (the same number for every box), in image pixels;
        point_labels: 1 = foreground (default), 0 = background, one per point.
        """
        boxes = list(boxes)
        if not boxes:
            return []
        if points is not None:
            points = [list(p) for p in points]
            if len(points) != len(boxes):
                raise ValueError(f"points must give one list per box: {len(points)} lists for {len(boxes)} boxes")
            counts = {len(p) for p in points}
            if len(counts) != 1 or 0 in counts:
                raise ValueError("every box needs the same (non-zero) number of points")
            if point_labels is None:
                point_labels = [[1] * len(p) for p in points]
            point_labels = [list(map(int, labels)) for labels in point_labels]
            if [len(labels) for labels in point_labels] != [len(p) for p in points]:
                raise ValueError("point_labels must give one label per point")
        elif point_labels is not None:
            raise ValueError("point_labels given without points")

        import torch

        processor, model = self.load()
        image = image.convert("RGB")
        prompts: dict[str, Any] = {"input_boxes": [[[float(v) for v in _xyxy(b)] for b in boxes]]}
        if points is not None:
            prompts["input_points"] = [[[[float(x), float(y)] for x, y in p] for p in points]]
            prompts["input_labels"] = [point_labels]
        inputs = processor(images=image, return_tensors="pt", **prompts).to(model.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
        with torch.inference_mode():
            outputs = model(**inputs, multimask_output=True)
        with self._count_lock:
            self.calls += 1
        masks = processor.post_process_masks(
            outputs.pred_masks.float().cpu(), inputs["original_sizes"].cpu(), mask_threshold=self.mask_threshold
        )[0]  # (boxes, candidates, H, W) bool
        ious = outputs.iou_scores[0].float().cpu()  # (boxes, candidates)
        best = ious.argmax(dim=-1)
        results = []
        for i, prompt in enumerate(boxes):
            mask = masks[i, int(best[i])].numpy().astype(bool)
            score = float(ious[i, int(best[i])])
            results.append(Detection(box=_mask_box(mask) or prompt, score=score, mask=Mask.from_array(mask)))
        return results


def _xyxy(box: Any) -> list[float]:
    if isinstance(box, Box):
        return [box.x1, box.y1, box.x2, box.y2]
    values = list(box)
    if len(values) != 4:
        raise ValueError(f"a box is [x1, y1, x2, y2], got {values!r}")
    return values


def _mask_box(mask: np.ndarray) -> Box | None:
    """The tight box (pixel edges) around a mask's pixels; None for an empty mask."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return Box(x1=float(cols[0]), y1=float(rows[0]), x2=float(cols[-1] + 1), y2=float(rows[-1] + 1))
