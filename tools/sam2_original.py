"""SAM 2 through the ORIGINAL package (`sam2`, Meta's code), for users who have its checkpoints
(`sam2.1_hiera_tiny.pt`, ...) rather than a transformers export.

Same segmenter as `sam2`: every box of the image in ONE call (`SAM2ImagePredictor`: one image
encoding, all boxes batched through the mask decoder), SAM 2's three proposals per box with the
highest predicted IoU kept, a `Detection` per box (score = that IoU, the mask's tight box, the mask
as RLE). The model is built by the package's own `build_sam2(config, checkpoint)`, which refuses a
checkpoint that does not fit the config. Extra `[sam2]`; its sdist needs torch at build time:
`SAM2_BUILD_CUDA=0 pip install --no-build-isolation 'lookcloser[sam2]'` in an environment with torch.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from lookcloser.core.errors import ModelLoadError
from lookcloser.core.hub import resolve_device, shared
from lookcloser.tools.sam2 import _mask_box, _xyxy
from lookcloser.core.types import Box, Detection, Mask

__all__ = ["DEFAULT_CONFIG", "INSTALL", "OriginalSam2Segmenter"]

INSTALL = "SAM2_BUILD_CUDA=0 pip install --no-build-isolation 'lookcloser[sam2]'"
#: The package's config for SAM 2.1 Hiera-Tiny (a name inside the package, as build_sam2 takes it).
DEFAULT_CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"


class OriginalSam2Segmenter:
    """checkpoint: the original `.pt` (a dict with "model"); config: the package's config name for that
    checkpoint (default Hiera-Tiny 2.1: `configs/sam2.1/sam2.1_hiera_t.yaml`)."""

    name = "sam2_original"

    def __init__(self, checkpoint: str | Path | None = None, config: str = DEFAULT_CONFIG, device: str = "auto") -> None:
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        self.config = str(config)
        self.device_spec = device
        self.calls = 0
        self._loaded: tuple[Any, threading.Lock] | None = None  # (predictor, its lock), shared per settings

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "backend": "sam2 (original)", "checkpoint": self.checkpoint, "config": self.config}

    def load(self) -> tuple[Any, threading.Lock]:
        """(the package's SAM2ImagePredictor, its lock), built once per process per (config, checkpoint,
        device); the lock goes with the predictor because it holds one image at a time for all its users."""
        if self._loaded is not None:
            return self._loaded
        if importlib.util.find_spec("sam2") is None:
            raise ModelLoadError(f"the `sam2_original` tool runs Meta's original SAM 2 package, which is not "
                                 f"installed: {INSTALL} (or use `sam2`, the transformers port)")
        if self.checkpoint is None or not Path(self.checkpoint).expanduser().is_file():
            given = "is not set" if self.checkpoint is None else f"'{self.checkpoint}' is not an existing file"
            raise ModelLoadError(f"the `sam2_original` tool's checkpoint {given}: it must be an original SAM 2 "
                                 f"checkpoint (.pt) matching config '{self.config}'", option="checkpoint",
                                 example="/models/sam2.1_hiera_tiny.pt")
        import torch

        device = resolve_device(self.device_spec, torch, "SAM 2", mps=False)
        key = (self.config, str(Path(self.checkpoint).expanduser()), str(device))
        self._loaded = shared(("sam2_original", *key), lambda: (_build(*key), threading.Lock()))
        return self._loaded

    def segment(self, image: Image.Image, boxes: Sequence[Box]) -> list[Detection]:
        """One Detection per box, in order; one image encoding and one batched decoder pass for all."""
        boxes = list(boxes)
        if not boxes:
            return []
        import torch

        predictor, lock = self.load()
        prompts = np.array([_xyxy(b) for b in boxes], dtype=np.float32)
        with lock, torch.inference_mode():
            predictor.set_image(np.array(image.convert("RGB")))
            masks, ious, _ = predictor.predict(box=prompts, multimask_output=True)
            self.calls += 1
        if masks.ndim == 3:  # one box: (candidates, H, W)
            masks, ious = masks[None], ious[None]
        results = []
        for prompt, box_masks, box_ious in zip(boxes, masks, ious):
            best = int(np.argmax(box_ious))
            mask = np.asarray(box_masks[best]).astype(bool)
            results.append(Detection(box=_mask_box(mask) or prompt, score=float(box_ious[best]),
                                     mask=Mask.from_array(mask)))
        return results


def _build(config: str, checkpoint: str, device: str) -> Any:
    try:
        from sam2.build_sam import build_sam2
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        return SAM2ImagePredictor(build_sam2(config, checkpoint, device=device))
    except Exception as exc:  # noqa: BLE001 - every load failure becomes one clear line
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "the checkpoint does not fit the config"
        raise ModelLoadError(f"could not build the original SAM 2 from config '{config}' and {checkpoint} "
                             f"({type(exc).__name__}: {reason})", option="checkpoint",
                             example="/models/sam2.1_hiera_tiny.pt") from exc
