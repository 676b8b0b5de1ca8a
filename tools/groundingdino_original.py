"""GroundingDINO through the ORIGINAL package (`groundingdino-py`, IDEA-Research's code), for users who
have its checkpoints (`groundingdino_swint_ogc.pth`) rather than a transformers export.

Same tool as `grounding_dino` (detector and batching localizer, one "a . b ." forward per image,
boxes split back per phrase), only the model comes from the original code: its config file, its
checkpoint, and its BERT text encoder. The text encoder is a required local directory (the original
code would otherwise fetch `bert-base-uncased` from the hub at load time; here nothing is downloaded).
The package is the `[groundingdino]` extra; its sdist needs torch at build time, so install it with
`pip install --no-build-isolation 'lookcloser[groundingdino]'` into an environment that has torch.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated, Any

from PIL import Image
from pydantic import Field

from lookcloser.core.errors import ModelLoadError
from lookcloser.core.hub import resolve_device, shared
from lookcloser.tools.grounding_dino import GroundingDinoDetector, _assign, _phrase_spans
from lookcloser.core.types import Box, Detection

__all__ = ["INSTALL", "OriginalGroundingDino"]

INSTALL = "pip install --no-build-isolation 'lookcloser[groundingdino]'"
#: ImageNet normalisation of the original inference transform.
_MEAN, _STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


class OriginalGroundingDino(GroundingDinoDetector):
    """checkpoint: the original `.pth` (a dict with "model"); text_encoder: a local directory holding
    the BERT model and tokenizer the checkpoint was trained with (bert-base-uncased, save_pretrained
    output); config: the original config `.py` (default: the package's GroundingDINO_SwinT_OGC.py)."""

    name = "groundingdino"

    def __init__(self, checkpoint: str | Path | None = None, text_encoder: str | Path | None = None,
                 config: str | Path | None = None, device: str = "auto", *, box_threshold: Annotated[float, Field(ge=0, le=1)] = 0.35,
                 text_threshold: Annotated[float, Field(ge=0, le=1)] = 0.25, max_per_phrase: Annotated[int, Field(ge=1)] = 20) -> None:
        super().__init__(model=str(checkpoint), device=device, box_threshold=box_threshold,
                         text_threshold=text_threshold, max_per_phrase=max_per_phrase)
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        self.text_encoder = None if text_encoder is None else str(text_encoder)
        self.config = None if config is None else str(config)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "backend": "groundingdino (original)", "checkpoint": self.checkpoint,
                "text_encoder": self.text_encoder, "config": self.config}

    # ----------------------------------------------------------------- loading
    def load(self) -> tuple[Any, Any]:
        """(tokenizer, model): built from the original code once per process per settings."""
        if self._loaded is not None:
            return self._loaded
        if importlib.util.find_spec("groundingdino") is None:
            raise ModelLoadError(f"the `groundingdino` tool runs the original GroundingDINO package, which is not "
                                 f"installed: {INSTALL} (or use `grounding_dino`, the transformers port)")
        checkpoint = _existing(self.checkpoint, "checkpoint", "file", "/models/groundingdino_swint_ogc.pth",
                               "the original GroundingDINO checkpoint (.pth)")
        text_encoder = _existing(self.text_encoder, "text_encoder", "dir", "/models/bert-base-uncased",
                                 "a local directory with the BERT text encoder and its tokenizer (bert-base-uncased "
                                 "saved with save_pretrained); it is never downloaded")
        config = _existing(self.config or str(Path(importlib.util.find_spec("groundingdino").origin).parent
                                              / "config" / "GroundingDINO_SwinT_OGC.py"),
                           "config", "file", "/models/GroundingDINO_SwinT_OGC.py", "the original config file (.py)")
        import torch

        device = resolve_device(self.device_spec, torch, "GroundingDINO", mps=False)
        model = shared(("groundingdino", checkpoint, text_encoder, config, str(device)),
                       lambda: _build(config, checkpoint, text_encoder, device))
        self._loaded = (model.tokenizer, model)
        return self._loaded

    # ---------------------------------------------------------------- detector
    def _detect_unique(self, image: Image.Image, phrases: list[str]) -> dict[str, list[Detection]]:
        tokenizer, model = self.load()  # first: a missing package is one clear error
        import groundingdino.datasets.transforms as T
        import torch
        from groundingdino.util.utils import get_phrases_from_posmap

        caption = " . ".join(phrases) + " ."  # the original prompt format
        spans, offsets = _phrase_spans(tokenizer, caption, phrases)
        if len(offsets) > model.max_text_len:
            raise ValueError(f"{len(phrases)} phrases make {len(offsets)} tokens, more than GroundingDINO's "
                             f"max_text_len {model.max_text_len}; ask for fewer targets at once")
        # the original inference transform (its load_image): shorter side 800, longer at most 1333
        transform = T.Compose([T.RandomResize([800], max_size=1333), T.ToTensor(), T.Normalize(_MEAN, _STD)])
        pixels, _ = transform(image.convert("RGB"), None)
        pixels = pixels.to(next(model.parameters()).device)
        with torch.inference_mode():
            outputs = model(pixels[None], captions=[caption])
        with self._count_lock:
            self.forward_calls += 1
        probs = outputs["pred_logits"].float().sigmoid()[0].cpu()  # (queries, max_text_len)
        boxes = outputs["pred_boxes"].float()[0].cpu()  # (queries, 4): normalised cx, cy, w, h
        keep = probs.max(dim=-1).values > self.box_threshold
        tokenized = tokenizer(caption)
        found: dict[str, list[Detection]] = {p: [] for p in phrases}
        for prob, (cx, cy, w, h) in zip(probs[keep], boxes[keep].tolist()):
            label = get_phrases_from_posmap(prob > self.text_threshold, tokenized, tokenizer).replace(".", "")
            phrase = _assign(label, prob, phrases, spans)
            box = Box(x1=(cx - w / 2) * image.width, y1=(cy - h / 2) * image.height,
                      x2=(cx + w / 2) * image.width, y2=(cy + h / 2) * image.height).clip(image.width, image.height)
            if box.area > 0:
                found[phrase].append(Detection(box=box, score=float(prob.max()), label=phrase))
        for dets in found.values():
            dets.sort(key=lambda d: -d.score)
            del dets[self.max_per_phrase:]
        return found


def _existing(path: str | None, option: str, kind: str, example: str, what: str) -> str:
    """`path` when it names an existing file/dir, else one ModelLoadError naming the option to set."""
    ok = path is not None and (Path(path).expanduser().is_file() if kind == "file" else Path(path).expanduser().is_dir())
    if not ok:
        given = "is not set" if path is None else f"'{path}' is not an existing {'file' if kind == 'file' else 'directory'}"
        raise ModelLoadError(f"the `groundingdino` tool's {option} {given}: it must be {what}", option=option,
                             example=example)
    return str(Path(path).expanduser())


def _build(config: str, checkpoint: str, text_encoder: str, device: Any) -> Any:
    """The original model from its config, with the BERT from `text_encoder`; missing weights are an error."""
    import torch
    from groundingdino.models import build_model
    from groundingdino.util.misc import clean_state_dict
    from groundingdino.util.slconfig import SLConfig

    try:
        args = SLConfig.fromfile(config)
        args.device = str(device)
        args.text_encoder_type = text_encoder
        model = build_model(args)
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        weights = clean_state_dict(state["model"] if isinstance(state, dict) and "model" in state else state)
        missing = model.load_state_dict(weights, strict=False).missing_keys
    except AttributeError as exc:
        if "get_extended_attention_mask" not in str(exc):
            raise ModelLoadError(f"could not build the original GroundingDINO from {config}: {exc}") from exc
        import transformers

        raise ModelLoadError(
            f"groundingdino-py cannot build its text encoder with transformers {transformers.__version__}: it calls "
            "BertModel.get_extended_attention_mask, which transformers 5 removed; run the original package in an "
            "environment with transformers<5, or use `grounding_dino` (the transformers port of the same model)"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - every load failure becomes one clear line
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"could not build the original GroundingDINO from {config} and {checkpoint} "
                             f"({type(exc).__name__}: {reason})", option="checkpoint",
                             example="/models/groundingdino_swint_ogc.pth") from exc
    if missing:
        raise ModelLoadError(f"the checkpoint {checkpoint} does not fit the config {config}: {len(missing)} weights "
                             f"missing (e.g. {missing[0]})", option="checkpoint",
                             example="/models/groundingdino_swint_ogc.pth")
    return model.to(device).eval()
