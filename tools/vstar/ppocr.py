"""The PP-OCR models the text cue runs, and RapidOCR 3.x's own pieces around them.

The `rapidocr` wheel (3.x, the `[ocr]` extra) ships PP-OCRv6 small (detector and recognizer) and the
v2.0 angle classifier inside its package folder, so nothing is downloaded. The text cue runs the
detector itself because it needs the probability map, but takes everything else from the engine's
own code and `config.yaml` (Det and Rec sections): the DB post-processing parameters and the
recognizer (its resize and normalisation, the character list embedded in the ONNX file's metadata,
CTC decoding). So the cue's maps and reads are RapidOCR's for the same input and settings.

One setting differs from RapidOCR's config, in the cue and in the `rapidocr` tool alike: the
detector's input normalisation. RapidOCR normalises with mean = std = 0.5; PaddleOCR's own
inference config for its PP-OCR detectors uses the ImageNet mean/std (`DETECTOR_MEAN`,
`DETECTOR_STD`), the statistics the detector was trained with. With 0.5 the v6 detector marks flat
saturated areas as text (a blank white 1024x768 input: peak 0.42-0.58, 17% of it above the DB
threshold 0.3, in a 4-px lattice); with the ImageNet values its peak there is 0.001. Both the cue
and the tool pass the same values to the same code, so their maps stay identical.

Only these files ship: the older PP-OCRv4 models are a download in 3.x, so there is no model
choice here (downloads fail offline).
"""

from __future__ import annotations

import copy
import functools
import importlib.metadata
import logging
from pathlib import Path
from typing import Any

from lookcloser.core.errors import ModelLoadError

__all__ = ["CLASSIFIER_FILE", "DETECTOR_FILE", "RECOGNIZER_FILE", "classifier_path", "db_postprocess",
           "DETECTOR_MEAN", "DETECTOR_STD", "detector_normalisation", "detector_path", "engine_config", "plain_fits",
           "plain_resize", "plain_scale", "plain_size", "rapidocr_dir", "recognizer", "recognizer_path", "sorted_boxes"]

DETECTOR_FILE = "PP-OCRv6_det_small.onnx"
RECOGNIZER_FILE = "PP-OCRv6_rec_small.onnx"
CLASSIFIER_FILE = "ch_ppocr_mobile_v2.0_cls_mobile.onnx"  # RapidOCR's angle classifier (the tool uses it)
#: The detector's input normalisation, per channel of x / 255 (PaddleOCR's inference config; see above).
DETECTOR_MEAN = (0.485, 0.456, 0.406)
DETECTOR_STD = (0.229, 0.224, 0.225)
REQUIRED = "rapidocr 3.x (pip install 'lookcloser[ocr]', which pins rapidocr==3.10.0)"


def rapidocr_dir() -> Path:
    """The installed rapidocr 3.x package folder (its `models/` holds the bundled ONNX files)."""
    try:
        import rapidocr
    except ImportError as exc:
        raise ModelLoadError(f"the PP-OCR text models need {REQUIRED}") from exc
    version = importlib.metadata.version("rapidocr")
    if not version.startswith("3."):
        raise ModelLoadError(f"rapidocr {version} is installed; the PP-OCRv6 models ship only with {REQUIRED}")
    return Path(rapidocr.__file__).resolve().parent


def _model(name: str) -> Path:
    path = rapidocr_dir() / "models" / name
    if not path.is_file():
        raise ModelLoadError(f"{name} not found at {path}: the rapidocr 3.x wheel ships it; reinstall "
                             "it with pip install --force-reinstall 'rapidocr==3.10.0'")
    return path


def detector_path() -> Path:
    return _model(DETECTOR_FILE)


def recognizer_path() -> Path:
    return _model(RECOGNIZER_FILE)


def classifier_path() -> Path:
    return _model(CLASSIFIER_FILE)


@functools.lru_cache(maxsize=1)
def engine_config() -> Any:
    """RapidOCR's own default configuration (its config.yaml as the engine loads it). Its logger is
    set to warnings: at its default (info) it prints every model path it loads."""
    rapidocr_dir()
    from rapidocr.main import DEFAULT_CFG_PATH
    from rapidocr.utils.parse_parameters import ParseParams

    logging.getLogger("RapidOCR").setLevel(logging.WARNING)
    return ParseParams.load(DEFAULT_CFG_PATH)


def detector_normalisation() -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per channel of the detector's input on x / 255, in the order the engine applies
    them (to BGR pixels, as PaddleOCR and RapidOCR both do)."""
    return DETECTOR_MEAN, DETECTOR_STD


def plain_fits(width: int, height: int) -> bool:
    """Whether RapidOCR's whole-image pass sees a width x height image at native scale or larger, unpadded:
    it neither shrinks it (longer side <= Global.max_side_len) nor grows or pads it before detection
    (shorter side >= min_side_len, height > min_height, width / height <= width_height_ratio). Such an
    image (or patch) gets the plain pass's own detector input (`plain_resize`) at the search's root."""
    config = engine_config().Global
    if not config.use_preprocess_img:
        return False
    ratio = config.width_height_ratio
    return (max(width, height) <= config.max_side_len and min(width, height) >= config.min_side_len
            and height > config.min_height and (ratio == -1 or width / max(height, 1) <= ratio))


def plain_resize(image):
    """`image` resized as RapidOCR's detector resizes it: its own `DetPreProcess.resize` (shorter side up to
    Det.limit_side_len, sides rounded to multiples of 32)."""
    from rapidocr.ch_ppocr_det.utils import DetPreProcess

    det = engine_config().Det
    return DetPreProcess(det.limit_side_len, det.limit_type).resize(image)


def plain_size(width: int, height: int) -> tuple[int, int]:
    """The detector input (w, h) `plain_resize` makes of a width x height image (its arithmetic, no pixels)."""
    ratio = plain_scale(width, height)
    return (max(32, int(round(int(width * ratio) / 32) * 32)), max(32, int(round(int(height * ratio) / 32) * 32)))


def plain_scale(width: int, height: int) -> float:
    """The scale RapidOCR's detector intends for a width x height image (before rounding to 32)."""
    det = engine_config().Det
    short, long_ = min(width, height), max(width, height)
    if det.limit_type == "max":
        return float(det.limit_side_len / long_) if long_ > det.limit_side_len else 1.0
    return float(det.limit_side_len / short) if short < det.limit_side_len else 1.0


def sorted_boxes(boxes):
    """Boxes in RapidOCR's reading order (its detector's own sort), so the recognizer gets its crops in
    the order the plain pass gives them (a batch's crops are padded to its widest: the order can matter)."""
    from rapidocr.ch_ppocr_det import TextDetector

    return TextDetector.sorted_boxes(boxes) if len(boxes) else boxes


def db_postprocess():
    """RapidOCR's DB post-processing with the engine's defaults (thresh, box_thresh, unclip_ratio, ...)."""
    from rapidocr.ch_ppocr_det.utils import DBPostProcess

    det = engine_config().Det
    return DBPostProcess(thresh=det.thresh, box_thresh=det.box_thresh, max_candidates=det.max_candidates,
                         unclip_ratio=det.unclip_ratio, score_mode=det.score_mode, use_dilation=det.use_dilation)


@functools.lru_cache(maxsize=4)
def recognizer(threads: int, runtime: str = "onnxruntime"):
    """RapidOCR's TextRecognizer for the bundled recognizer (its own preprocessing, character list and
    CTC decoding), cached. The session RapidOCR builds (it reads the character list from the model's
    metadata) is then swapped for `ocr_runtime.load_model`'s: same file, the cue's runtime and memory
    settings. Call it with `rapidocr.ch_ppocr_rec.TextRecInput(img=[BGR crops])`."""
    from rapidocr.ch_ppocr_rec import TextRecognizer

    from lookcloser.tools.vstar.ocr_runtime import load_model

    config = engine_config()
    rec = copy.deepcopy(config.Rec)  # the cached config stays the engine's defaults
    path = recognizer_path()
    rec.model_path = str(path)
    rec.engine_cfg = config.EngineConfig.onnxruntime
    rec.font_path = None
    engine = TextRecognizer(rec)
    model = load_model(str(path), runtime, threads)
    engine.session = model  # TextRecognizer calls session(batch) and uses the first output
    return engine
