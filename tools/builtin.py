"""Registers the built-in tools, each with its `ToolInfo` (backend, default model, options, what it
needs installed). Factories import their heavy modules only when called."""

from __future__ import annotations

import functools
import importlib
from typing import Annotated, Any, Callable

from lookcloser.tools.grounding_dino import DEFAULT_MODEL as GDINO_MODEL
from lookcloser.tools.info import Binary, Package, ToolInfo, Weights
from lookcloser.tools.options import options_model
from lookcloser.tools.registry import registry
from lookcloser.tools.sam2 import DEFAULT_MODEL as SAM2_MODEL
from lookcloser.tools.vstar.owlv2_cue import DEFAULT_MODEL as OWLV2_MODEL


def _rapidocr(**options: Any):
    from lookcloser.tools.rapidocr import RapidOCRTool

    return RapidOCRTool(**options)


def _tesseract(**options: Any):
    from lookcloser.tools.tesseract import TesseractOCR

    return TesseractOCR(**options)


def _paddleocr(**options: Any):
    from lookcloser.tools.paddleocr import PaddleOCRTool

    return PaddleOCRTool(**options)


def _whole_image(context: Any = None, **options: Any):
    from lookcloser.tools.whole_image import create_whole_image_localizer

    return create_whole_image_localizer(context=context, **options)


def _vstar(context: Any = None, **options: Any):
    from lookcloser.tools.vstar.localizer import create_vstar_localizer

    return create_vstar_localizer(context=context, **options)


def _vlm_grounding(context: Any = None, **options: Any):
    from lookcloser.tools.vlm_grounding import create_vlm_grounding

    return create_vlm_grounding(context=context, **options)


def _grounding_dino(**options: Any):
    from lookcloser.tools.grounding_dino import GroundingDinoDetector

    return GroundingDinoDetector(**options)


def _sam2(**options: Any):
    from lookcloser.tools.sam2 import Sam2Segmenter

    return Sam2Segmenter(**options)


def _groundingdino(**options: Any):
    from lookcloser.tools.groundingdino_original import OriginalGroundingDino

    return OriginalGroundingDino(**options)


def _sam2_original(**options: Any):
    from lookcloser.tools.sam2_original import OriginalSam2Segmenter

    return OriginalSam2Segmenter(**options)


def _options(module: str, name: str, exclude: tuple[str, ...] = ("self", "context")) -> Callable[[], Any]:
    """A built-in's typed options: its class's keyword arguments (tools/options.py) less `exclude`, read when asked."""
    @functools.cache
    def read() -> Any:
        return options_model(getattr(importlib.import_module(module), name), name=f"{name} options", exclude=exclude)

    return read


@functools.cache
def _rapidocr_options() -> Any:
    """`min_score`, typed; any other option is a RapidOCR 3.x config key, checked against its config.yaml
    (`engine_params`) when the agent is built rather than at the first read."""
    from pydantic import ConfigDict, Field, create_model, model_validator

    def engine_keys(model: Any) -> Any:
        extra = dict(model.model_extra or {})
        if extra:
            try:
                from lookcloser.tools.rapidocr import engine_params
            except ImportError:  # the [ocr] extra is missing: the tool says so itself when it is used
                return model
            engine_params(extra)
        return model

    return create_model("rapidocr options", __config__=ConfigDict(extra="allow", allow_inf_nan=False),
                        __validators__={"engine_keys": model_validator(mode="after")(engine_keys)},
                        min_score=(Annotated[float, Field(ge=0, le=1)], 0.5))


@functools.cache
def _vstar_options() -> Any:
    from lookcloser.tools.vstar.localizer import vstar_options

    return vstar_options()


_OCR_EXTRA = "pip install 'lookcloser[ocr]'"
_RAPIDOCR = (Package("rapidocr", _OCR_EXTRA), Package("onnxruntime", _OCR_EXTRA))

INFO = {
    ("ocr", "rapidocr"): ToolInfo(
        "RapidOCR 3.x, ONNX", "PP-OCRv6 small, bundled",
        options=_rapidocr_options, requires=_RAPIDOCR),  # engine options pass on to rapidocr.RapidOCR (tools/rapidocr.py)
    ("ocr", "tesseract"): ToolInfo(
        "tesseract binary", None, options=_options("lookcloser.tools.tesseract", "TesseractOCR"),
        requires=(Binary("tesseract", "apt-get install tesseract-ocr", option="binary"),)),
    ("ocr", "paddleocr"): ToolInfo(
        "PaddleOCR 3.x, worker process", "downloaded on first use",
        options=lambda: None,  # other options pass on to paddleocr.PaddleOCR
        requires=(Package("paddleocr", "pip install 'lookcloser[paddle]'"),
                  Package("paddle", "pip install paddlepaddle (or paddlepaddle-gpu)"))),
    ("localizer", "whole_image"): ToolInfo(
        "one pass of the ocr / detector", None,
        options=_options("lookcloser.tools.whole_image", "WholeImageLocalizer")),
    ("localizer", "vstar"): ToolInfo(
        "V* search: PP-OCRv6 + OWLv2 cues", OWLV2_MODEL, options=_vstar_options,
        requires=(*(Package(p.module, p.install, "text targets") for p in _RAPIDOCR),
                  Weights(OWLV2_MODEL, needed_for="object targets with the owlv2 cue",
                          when=lambda options: options.get("cue", "owlv2") == "owlv2"))),
    ("detector", "grounding_dino"): ToolInfo(
        "transformers", GDINO_MODEL,
        options=_options("lookcloser.tools.grounding_dino", "GroundingDinoDetector"),
        requires=(Weights(GDINO_MODEL),), batches=True),
    ("segmenter", "sam2"): ToolInfo(
        "transformers", SAM2_MODEL, options=_options("lookcloser.tools.sam2", "Sam2Segmenter"),
        requires=(Package("torchvision", "pip install 'lookcloser[vision]'"), Weights(SAM2_MODEL))),
    ("detector", "groundingdino"): ToolInfo(
        "original GroundingDINO package", "your checkpoint + BERT directory",
        options=_options("lookcloser.tools.groundingdino_original", "OriginalGroundingDino"),
        requires=(Package("groundingdino", "pip install --no-build-isolation 'lookcloser[groundingdino]'"),),
        batches=True),
    ("segmenter", "sam2_original"): ToolInfo(
        "original SAM 2 package", "your checkpoint",
        options=_options("lookcloser.tools.sam2_original", "OriginalSam2Segmenter"),
        requires=(Package("sam2", "SAM2_BUILD_CUDA=0 pip install --no-build-isolation 'lookcloser[sam2]'"),)),
}
INFO[("detector", "vlm_grounding")] = ToolInfo(
    "the agent's VLM: its own boxes", None,
    options=_options("lookcloser.tools.vlm_grounding", "VLMGrounding", exclude=("self", "vlm")),
    requires=(Package("supervision", "pip install 'lookcloser[grounding]'"),), batches=True, needs_vlm=True)
INFO[("localizer", "grounding_dino")] = INFO[("detector", "grounding_dino")]
INFO[("localizer", "vlm_grounding")] = INFO[("detector", "vlm_grounding")]
INFO[("localizer", "groundingdino")] = INFO[("detector", "groundingdino")]

_FACTORIES = {
    ("ocr", "rapidocr"): _rapidocr, ("ocr", "tesseract"): _tesseract, ("ocr", "paddleocr"): _paddleocr,
    ("localizer", "whole_image"): _whole_image, ("localizer", "vstar"): _vstar,
    ("detector", "grounding_dino"): _grounding_dino, ("localizer", "grounding_dino"): _grounding_dino,
    ("segmenter", "sam2"): _sam2, ("detector", "groundingdino"): _groundingdino,
    ("localizer", "groundingdino"): _groundingdino, ("segmenter", "sam2_original"): _sam2_original,
    ("localizer", "vlm_grounding"): _vlm_grounding, ("detector", "vlm_grounding"): _vlm_grounding,
}


def register_builtins() -> None:
    for (role, name), factory in _FACTORIES.items():
        registry.register(role, name, factory, replace=True, info=INFO[(role, name)])


register_builtins()

#: The tools an Agent uses when the user names none. No detector/segmenter by default:
#: they need weights from the hub; name them explicitly when you have them.
DEFAULT_TOOLS: dict[str, str] = {"localizer": "vstar", "ocr": "rapidocr"}
