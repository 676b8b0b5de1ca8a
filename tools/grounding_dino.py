"""GroundingDINO (transformers) as an open-vocabulary detector and a whole-image localizer.

All phrases of one image go through ONE forward pass, as one "a. b. c." prompt (the format
transformers' processor builds from a list of labels), and the boxes are split back per phrase:
a box goes to the phrase its label text (the tokens above `text_threshold`, decoded by
transformers' post-processing) spells; when the label is partial or spans several phrases, to
the phrase holding the box's highest token probability.

The model is loaded lazily, once per process per (model, device, dtype), and shared by every
instance (the `detector` and the `localizer` built from the same settings use one copy) and
thread. torch / transformers are imported inside, so importing this module is cheap.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Any, Sequence

from PIL import Image
from pydantic import Field

from lookcloser.core.hub import check_dtype, load_shared
from lookcloser.core.types import Box, Detection, Finding, Target

__all__ = ["DEFAULT_MODEL", "GroundingDinoDetector"]

DEFAULT_MODEL = "IDEA-Research/grounding-dino-tiny"
_HINT = ("point the `model` option at a local directory holding a saved GroundingDINO model and processor "
         "(save_pretrained output)")
_EXAMPLE = "/models/grounding-dino-tiny"



class GroundingDinoDetector:
    """Detector (`detect`) and whole-image localizer (`locate`) over a transformers GroundingDINO.

    box_threshold: a box is kept when its best token probability is above it (transformers'
    `threshold`); text_threshold: the tokens above it make the box's label text. The defaults are
    the ones GroundingDINO's authors use (0.35 / 0.25). `max_per_phrase` keeps the best boxes of
    each phrase.
    """

    name = "grounding_dino"

    def __init__(
        self,
        model: str | Path = DEFAULT_MODEL,
        device: str = "auto",
        dtype: Any = "auto",
        *,
        box_threshold: Annotated[float, Field(ge=0, le=1)] = 0.35,
        text_threshold: Annotated[float, Field(ge=0, le=1)] = 0.25,
        max_per_phrase: Annotated[int, Field(ge=1)] = 20,
    ) -> None:
        if not 0.0 <= box_threshold <= 1.0 or not 0.0 <= text_threshold <= 1.0:
            raise ValueError(f"box_threshold and text_threshold must be in [0, 1], got {box_threshold}, {text_threshold}")
        if max_per_phrase < 1:
            raise ValueError(f"max_per_phrase must be >= 1, got {max_per_phrase}")
        check_dtype(dtype, "GroundingDINO")
        self.model_name = str(model)
        self.device_spec = device
        self.dtype_spec = dtype
        self.box_threshold = float(box_threshold)
        self.text_threshold = float(text_threshold)
        self.max_per_phrase = int(max_per_phrase)
        self.forward_calls = 0
        self._count_lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None  # (processor, model), from hub.load_shared's process cache

    # ----------------------------------------------------------------- loading
    def load(self) -> tuple[Any, Any]:
        """(processor, model), loaded on first use and shared with every instance of the same settings."""
        if self._loaded is not None:
            return self._loaded
        from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

        # auto: CUDA, else CPU (MPS lacks ops the deformable attention needs); float32 unless asked
        # (the multi-scale deformable attention is not reliable in half precision)
        processor, model = load_shared(
            AutoProcessor, AutoModelForZeroShotObjectDetection, self.model_name, what="GroundingDINO", hint=_HINT,
            option="model", example=_EXAMPLE, device=self.device_spec, dtype=self.dtype_spec, mps=False,
            cuda_default="float32")
        self._loaded = (processor, model)
        return self._loaded

    # ---------------------------------------------------------------- detector
    def detect(self, image: Image.Image, phrases: Sequence[str]) -> list[list[Detection]]:
        """One list of detections per phrase, in phrase order; boxes in `image` pixels, best first."""
        if isinstance(phrases, str):
            raise TypeError("phrases must be a list of strings, not one string")
        cleaned = [_clean(p) for p in phrases]
        if not cleaned:
            return []
        unique = [p for i, p in enumerate(cleaned) if p and p not in cleaned[:i]]
        if not unique:
            return [[] for _ in phrases]
        per_phrase = self._detect_unique(image.convert("RGB"), unique)
        return [list(per_phrase.get(p, [])) for p in cleaned]

    def _detect_unique(self, image: Image.Image, phrases: list[str]) -> dict[str, list[Detection]]:
        import torch

        processor, model = self.load()
        prompt = ". ".join(phrases) + "."
        spans, offsets = _phrase_spans(processor.tokenizer, prompt, phrases)
        limit = getattr(model.config, "max_text_len", None)
        if limit is not None and len(offsets) > limit:
            raise ValueError(f"{len(phrases)} phrases make {len(offsets)} tokens, more than GroundingDINO's "
                             f"max_text_len {limit}; ask for fewer targets at once")
        inputs = processor(images=image, text=prompt, return_tensors="pt").to(model.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
        with torch.inference_mode():
            outputs = model(**inputs)
        with self._count_lock:
            self.forward_calls += 1
        outputs.logits = outputs.logits.float()
        outputs.pred_boxes = outputs.pred_boxes.float()
        results = processor.post_process_grounded_object_detection(
            outputs, inputs["input_ids"], threshold=self.box_threshold, text_threshold=self.text_threshold,
            target_sizes=[(image.height, image.width)],
        )[0]
        # the queries post-processing kept, in its order (it keeps the queries whose best token beats the threshold)
        probs = torch.sigmoid(outputs.logits[0])
        kept = probs[probs.max(dim=-1).values > self.box_threshold].cpu()
        labels = results["text_labels"] if "text_labels" in results else results["labels"]
        found: dict[str, list[Detection]] = {p: [] for p in phrases}
        for box, score, label, prob in zip(results["boxes"].tolist(), results["scores"].tolist(), labels, kept):
            phrase = _assign(label, prob, phrases, spans)
            clipped = Box.from_list(box).clip(image.width, image.height)
            if clipped.area > 0:
                found[phrase].append(Detection(box=clipped, score=float(score), label=phrase))
        for phrase, dets in found.items():
            dets.sort(key=lambda d: -d.score)
            del dets[self.max_per_phrase:]
        return found

    # --------------------------------------------------------------- localizer
    def locate(self, image: Image.Image, target: Target) -> list[Finding]:
        """Whole-image detection of the target's name: the best box, or not_found."""
        return self.locate_many(image, [target])[0]

    def locate_many(self, image: Image.Image, targets: Sequence[Target]) -> list[list[Finding]]:
        """Every target of the image in ONE forward pass: per target, its best box or not_found."""
        per_phrase = self.detect(image, [t.name for t in targets])
        return [[Finding(target=t, status="found", box=found[0].box, score=found[0].score, tool=self.name)
                 if found else Finding(target=t, status="not_found", tool=self.name)]
                for t, found in zip(targets, per_phrase)]


# ----------------------------------------------------------------- helpers
def _clean(phrase: str) -> str:
    """Lower-case, one space between words, no dots (a dot separates phrases in the prompt)."""
    return " ".join(str(phrase).replace(".", " ").lower().split())


def _phrase_spans(tokenizer: Any, prompt: str, phrases: list[str]) -> tuple[list[tuple[int, int]], list[Any]]:
    """Token index range [start, end) of each phrase in the tokenized prompt (found by character offsets)."""
    encoded = tokenizer(prompt, return_offsets_mapping=True)
    offsets = encoded["offset_mapping"]
    spans = []
    position = 0
    for phrase in phrases:
        start_char = prompt.index(phrase, position)
        end_char = start_char + len(phrase)
        position = end_char
        tokens = [i for i, (a, b) in enumerate(offsets) if b > a and a >= start_char and b <= end_char]
        spans.append((min(tokens), max(tokens) + 1) if tokens else (0, 0))
    return spans, offsets


def _assign(label: str, prob: Any, phrases: list[str], spans: list[tuple[int, int]]) -> str:
    """The phrase a box belongs to: the one its label text spells, else the one with its best token."""
    text = _clean(label.replace(" ##", "").replace("[SEP]", "").replace("[CLS]", ""))
    for phrase in phrases:
        if text == phrase or text == " ".join(phrase.replace("-", " - ").split()):
            return phrase
    best, best_prob = phrases[0], -1.0
    for phrase, (start, end) in zip(phrases, spans):
        if end > start:
            value = float(prob[start:end].max())
            if value > best_prob:
                best, best_prob = phrase, value
    return best
