"""The `owlv2` cue: OWLv2's per-patch class logits as the heatmap, its boxes as detections.

OWLv2 predicts one box and one class logit per vision-transformer patch, so the class logits over
the patch grid *are* a heatmap of where the phrase matches. The forward pass is split in two:
the image part (vision tower, box head) depends only on the pixels and is cached per patch; the
text part (text tower) depends only on the phrase and is cached per phrase. Scoring a phrase on
an already-encoded patch is then a few small matrix products, so searching several targets (or
asking again about the same image) does not re-encode any patch.

torch / transformers are imported inside the class, so importing this module is cheap.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lookcloser.core.geometry import nms
from lookcloser.core.hub import check_dtype, load_shared
from lookcloser.tools.vstar.cue import CueCalibration, CueOutput, check_cue_input
from lookcloser.core.types import Box, Detection

__all__ = ["DEFAULT_MODEL", "Owlv2Cue"]

DEFAULT_MODEL = "google/owlv2-base-patch16-ensemble"

#: Each heatmap cell is repeated this many times per side before cropping to the valid region,
#: so the crop follows the patch's true edge to within 1/4 of a grid cell.
_UPSAMPLE = 4
_PATH_HINT = "pass a local directory holding a saved OWLv2 model and processor (save_pretrained output)"
_EXAMPLE = "/models/owlv2-base-patch16-ensemble"


@dataclass
class _ImageEmbedding:
    """What the image half of OWLv2 gives for one patch (tensors stay on the model's device)."""

    feats: Any  # (1, gh*gw, hidden) image features fed to the class head
    boxes: Any  # (1, gh*gw, 4) cxcywh in [0, 1] of the padded square
    grid: tuple[int, int]  # (gh, gw)
    size: tuple[int, int]  # the patch's (width, height)


class Owlv2Cue:
    """OWLv2 (transformers) as a V* cue model, with image- and text-embedding reuse.

    Output units and calibration (no real OWLv2 weights were available to measure on; these are
    reasoned defaults, to be revisited with the object benchmark):

    * heatmap: sigmoid of the class logit of every grid cell inside the patch (the padding OWLv2
      adds to make the image square is cropped off). Raw logits are signed; the searcher needs a
      non-negative mass, and sigmoid keeps background cells near zero so the mass concentrates
      on matches.
    * detections: OWLv2's own boxes with sigmoid scores (as transformers' post-processing), in
      patch pixels, boxes centred in the padding dropped, non-maximum suppressed.
    * stop_confidence 0.3 / accept_confidence 0.15: OWLv2 scores run much lower than SEAL's
      fine-tuned detector (a clear, large object scores ~0.6; small or partly visible ones
      0.2-0.4; the transformers examples threshold at 0.1). 0.3 is a confident hit; under 0.15
      hits are mostly noise: a best-seen box below it is only a weak guess (the localizer marks it
      `below_accept`, or reports not found with keep_best_below_accept=False).
    * peak: max logit minus the median logit of the patch, i.e. how far the best cell stands out
      from the background, in logit units (>= 0). The raw max logit is negative for most
      patches, which SEAL's rule max(floor, base * decay ** (level - 1)) cannot express; the
      contrast can. A background-only patch shows contrasts of about 1-3, an object match 5+,
      so SEAL's own numbers (6.0 at the root, x0.7 per level, floor 3.0) are kept on this scale.
    """

    name = "owlv2"
    calibration = CueCalibration(
        stop_confidence=0.3,
        accept_confidence=0.15,
        strong_peak_base=6.0,
        strong_peak_decay=0.7,
        strong_peak_floor=3.0,
    )

    def __init__(
        self,
        model: str | Path = DEFAULT_MODEL,
        device: str = "auto",
        dtype: Any = "auto",
        *,
        query_template: str = "a photo of a {}",
        min_score: float = 0.05,
        max_detections: int = 10,
        nms_iou: float = 0.5,
        cache_size: int = 16,
    ) -> None:
        if cache_size < 1:
            raise ValueError(f"cache_size must be >= 1, got {cache_size}")
        if "{}" not in query_template:
            raise ValueError(f"query_template must contain '{{}}' for the phrase, got {query_template!r}")
        check_dtype(dtype, "OWLv2 cue")
        self.model_name = str(model)
        self.device_spec = device
        self.dtype_spec = dtype
        self.query_template = query_template
        self.min_score = min_score
        self.max_detections = max_detections
        self.nms_iou = nms_iou
        self.cache_size = cache_size
        self.image_encoder_calls = 0
        self.text_encoder_calls = 0
        self.calls = 0
        self._model = None
        self._processor = None
        self._device = None
        self._load_lock = threading.Lock()
        self._lock = threading.RLock()
        self._images: OrderedDict[str, _ImageEmbedding] = OrderedDict()
        self._texts: dict[str, Any] = {}

    # ----------------------------------------------------------------- loading
    def _load(self) -> None:
        if self._model is not None:
            return
        with self._load_lock:
            if self._model is not None:
                return
            from transformers import Owlv2ForObjectDetection, Owlv2Processor

            # auto: CUDA, else CPU (no MPS); dtype auto: float16 on CUDA (OWLv2 is stable in half precision), else
            # float32. One copy per process (hub.load_shared), whichever tools and agents use it.
            processor, model = load_shared(
                Owlv2Processor, Owlv2ForObjectDetection, self.model_name, what="OWLv2", hint=_PATH_HINT,
                device=self.device_spec, dtype=self.dtype_spec, mps=False, cuda_default="float16",
                option="model", example=_EXAMPLE)
            self._processor = processor
            self._device = str(model.device)
            self._model = model

    # ------------------------------------------------------------ embeddings
    def image_embedding(self, patch: Image.Image) -> _ImageEmbedding:
        """The cached image half of the forward pass for `patch` (encoded once per distinct pixels)."""
        key = _pixel_key(patch)
        with self._lock:
            cached = self._images.get(key)
            if cached is not None:
                self._images.move_to_end(key)
                return cached
            self._load()
            import torch

            pixels = self._processor.image_processor(images=patch.convert("RGB"), return_tensors="pt")["pixel_values"]
            pixels = pixels.to(self._device, dtype=self._model.dtype)
            with torch.inference_mode():
                feature_map, _ = self._model.image_embedder(pixel_values=pixels)
                b, gh, gw, hidden = feature_map.shape
                feats = feature_map.reshape(b, gh * gw, hidden)
                boxes = self._model.box_predictor(feats, feature_map)
            self.image_encoder_calls += 1
            embedding = _ImageEmbedding(feats=feats, boxes=boxes, grid=(gh, gw), size=patch.size)
            self._images[key] = embedding
            while len(self._images) > self.cache_size:
                self._images.popitem(last=False)
            return embedding

    def text_embedding(self, phrase: str) -> Any:
        """The cached text-tower embedding (1, 1, dim) of the query for `phrase`."""
        query = self.query_template.format(phrase)
        with self._lock:
            cached = self._texts.get(query)
            if cached is not None:
                return cached
            self._load()
            import torch

            tokens = self._processor.tokenizer(
                [query], padding="max_length", truncation=True, return_tensors="pt"
            ).to(self._device)
            with torch.inference_mode():
                out = self._model.owlv2.get_text_features(
                    input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
                )
            self.text_encoder_calls += 1
            embedding = out.pooler_output.reshape(1, 1, -1)
            self._texts[query] = embedding
            return embedding

    # ------------------------------------------------------------------- cue
    def __call__(self, patch: Image.Image, phrase: str) -> CueOutput:
        phrase = check_cue_input("owlv2", patch, phrase)
        import torch

        image = self.image_embedding(patch)
        text = self.text_embedding(phrase)
        with self._lock, torch.inference_mode():
            query_mask = torch.ones((1, 1), dtype=torch.bool, device=self._device)
            logits, _ = self._model.class_predictor(image.feats, text.to(image.feats.dtype), query_mask)
            logits = logits[0, :, 0].float().cpu().numpy()
            boxes = image.boxes[0].float().cpu().numpy()
            self.calls += 1
        return self._output(logits, boxes, image, phrase)

    def _output(self, logits: np.ndarray, boxes: np.ndarray, image: _ImageEmbedding, phrase: str) -> CueOutput:
        gh, gw = image.grid
        width, height = image.size
        side = max(width, height)  # OWLv2 pads bottom/right to a square of this side
        grid = logits.reshape(gh, gw)
        valid_rows = max(1, math.ceil(gh * height / side - 1e-9))
        valid_cols = max(1, math.ceil(gw * width / side - 1e-9))
        valid = grid[:valid_rows, :valid_cols]
        fine = np.repeat(np.repeat(grid, _UPSAMPLE, axis=0), _UPSAMPLE, axis=1)
        fine_rows = max(1, round(gh * _UPSAMPLE * height / side))
        fine_cols = max(1, round(gw * _UPSAMPLE * width / side))
        heatmap = _sigmoid(fine[:fine_rows, :fine_cols]).astype(np.float32)

        scores = _sigmoid(logits)
        cx, cy = boxes[:, 0] * side, boxes[:, 1] * side
        inside = (cx < width) & (cy < height) & (scores >= self.min_score)
        xyxy = np.stack(
            [
                np.clip(cx - boxes[:, 2] * side / 2, 0, width),
                np.clip(cy - boxes[:, 3] * side / 2, 0, height),
                np.clip(cx + boxes[:, 2] * side / 2, 0, width),
                np.clip(cy + boxes[:, 3] * side / 2, 0, height),
            ],
            axis=1,
        )
        keep = nms(xyxy[inside], scores[inside], self.nms_iou, self.max_detections)
        picked_boxes, picked_scores = xyxy[inside][keep], scores[inside][keep]
        detections = [
            Detection(box=Box.from_list(b.tolist()), score=float(s), label=phrase)
            for b, s in zip(picked_boxes, picked_scores)
        ]
        max_logit = float(valid.max())
        return CueOutput(
            heatmap=heatmap,
            peak=max_logit - float(np.median(valid)),
            detections=detections,
            extra={
                "max_logit": max_logit,
                "max_score": float(_sigmoid(np.array(max_logit))),
                "grid": [gh, gw],
                "valid_grid": [valid_rows, valid_cols],
            },
        )


# ----------------------------------------------------------------- helpers
def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))


def _pixel_key(patch: Image.Image) -> str:
    """Identity of a patch by content: mode, size and a hash of the pixels."""
    digest = hashlib.blake2b(patch.tobytes(), digest_size=16)
    digest.update(f"{patch.mode}:{patch.width}x{patch.height}".encode())
    return digest.hexdigest()
