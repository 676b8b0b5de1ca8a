"""Registers the built-in tools. Factories import their heavy modules only when called."""

from __future__ import annotations

from typing import Any

from lookcloser.tools.registry import registry


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


def _grounding_dino(**options: Any):
    from lookcloser.tools.grounding_dino import GroundingDinoDetector

    return GroundingDinoDetector(**options)


def _sam2(**options: Any):
    from lookcloser.tools.sam2 import Sam2Segmenter

    return Sam2Segmenter(**options)


def register_builtins() -> None:
    registry.register("ocr", "rapidocr", _rapidocr, replace=True)
    registry.register("ocr", "tesseract", _tesseract, replace=True)
    registry.register("ocr", "paddleocr", _paddleocr, replace=True)
    registry.register("localizer", "whole_image", _whole_image, replace=True)
    registry.register("localizer", "vstar", _vstar, replace=True)
    registry.register("detector", "grounding_dino", _grounding_dino, replace=True)
    registry.register("localizer", "grounding_dino", _grounding_dino, replace=True)
    registry.register("segmenter", "sam2", _sam2, replace=True)


register_builtins()

#: The tools an Agent uses when the user names none. No detector/segmenter by default:
#: they need weights from the hub; name them explicitly when you have them.
DEFAULT_TOOLS: dict[str, str] = {"localizer": "vstar", "ocr": "rapidocr"}
