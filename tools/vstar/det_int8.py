"""An int8 copy of the PP-OCR text detector, built on this machine from the wheel's own ONNX file.

Why: the detector is most of the read-all search's cost. Static int8 quantisation (onnxruntime's
QOperator format, per-channel weights) runs its convolutions through int8 kernels. Nothing is
downloaded and no model is shipped: the copy is made once from `PP-OCRv6_det_small.onnx` in
the installed `rapidocr` 3.x wheel (Apache-2.0) and cached under the user's cache folder
(`$LOOKCLOSER_CACHE`, else `$XDG_CACHE_HOME/lookcloser`, else `~/.cache/lookcloser`), keyed by
the source file's hash and this recipe's version.

Recipe (what keeps small text detected): the model is converted to opset 13 (per-channel
quantisation needs it); the DB head (from the last concat on: its conv and the two transposed convs
that make the probability map) and the first conv stay float; activations are calibrated (min-max) on
synthetic text images made here with a fixed seed -- printed words at 10-60 px on smooth and
textured backgrounds -- so calibration needs no data set. Needs the `onnx` package (the `[ocr-int8]` extra).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path

import numpy as np

from lookcloser.core.errors import ModelLoadError

__all__ = ["RECIPE_VERSION", "cache_dir", "calibration_images", "quantized_detector"]

RECIPE_VERSION = "2"  # 2: the DB head found as the last Concat (PP-OCRv6)
_LOCK = threading.Lock()
_WORDS = ("EXIT", "OPEN", "Parking", "Cafe", "STAND-BY", "+1 800 451", "www.example.com", "Straße 12",
          "TICKETS", "No Entry", "Bus 42", "Pharmacy", "Hotel", "SALE 50%", "Apotheke", "ENTRANCE")


def cache_dir() -> Path:
    root = os.environ.get("LOOKCLOSER_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "lookcloser")
    return Path(root)


def calibration_images(count: int = 12, side: int = 640, seed: int = 0) -> list[np.ndarray]:
    """Synthetic BGR uint8 images with printed words of 10-60 px on varied backgrounds (fixed seed)."""
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        base = rng.uniform(0, 255, size=(4, 4, 3)).astype(np.uint8)
        background = Image.fromarray(base).resize((side, side), Image.BICUBIC)
        noise = rng.normal(0, rng.uniform(2, 25), size=(side, side, 3))
        canvas = Image.fromarray(np.clip(np.asarray(background, dtype=np.float64) + noise, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(canvas)
        for _ in range(int(rng.integers(3, 9))):  # texture: blocks and bars
            x, y = rng.integers(0, side, size=2)
            w, h = rng.integers(20, side // 2, size=2)
            draw.rectangle((int(x), int(y), int(x + w), int(y + h)), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        for _ in range(int(rng.integers(6, 16))):  # words of many sizes
            size = int(rng.integers(10, 61))
            font = ImageFont.load_default(size)
            word = _WORDS[int(rng.integers(len(_WORDS)))]
            x, y = int(rng.integers(0, side - size * 2)), int(rng.integers(0, side - size))
            draw.text((x, y), word, font=font, fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        if rng.uniform() < 0.5:
            canvas = canvas.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.2))))
        images.append(np.ascontiguousarray(np.asarray(canvas)[:, :, ::-1]))
    return images


def _tensor(bgr: np.ndarray) -> np.ndarray:
    """The detector's preprocessing (the same as TextCue's: `ppocr.detector_normalisation`)."""
    from lookcloser.tools.vstar.ppocr import detector_normalisation

    mean, std = (np.asarray(v, dtype=np.float32) for v in detector_normalisation())
    return ((bgr.astype(np.float32) / 255.0 - mean) / std).transpose(2, 0, 1)[None]


def quantized_detector(source: Path) -> Path:
    """The cached int8 model for the float detector at `source`, built on first use (~10-30 s)."""
    digest = hashlib.sha256(Path(source).read_bytes()).hexdigest()[:16]
    target = cache_dir() / f"ppocr_det_int8_{digest}_r{RECIPE_VERSION}.onnx"
    if target.exists():
        return target
    with _LOCK:
        if not target.exists():
            _build(Path(source), target)
    return target


def _build(source: Path, target: Path) -> None:
    try:
        import onnx
        from onnx import version_converter
        from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                              quantize_static)
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ModelLoadError("the int8 text detector needs the onnx package (pip install 'lookcloser[ocr-int8]')") from exc

    class Reader(CalibrationDataReader):
        def __init__(self, name: str) -> None:
            self._items = iter([{name: _tensor(image)} for image in calibration_images()])

        def get_next(self):
            return next(self._items, None)

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        opset13, prepared = Path(tmp) / "opset13.onnx", Path(tmp) / "prepared.onnx"
        model = onnx.load(str(source))
        onnx.save(version_converter.convert_version(model, 13), str(opset13))
        quant_pre_process(str(opset13), str(prepared), skip_symbolic_shape=True)
        nodes = list(onnx.load(str(prepared)).graph.node)
        # the DB head starts at the last Concat (the neck joins its scales there; v6's backbone has one early too)
        head = max(i for i, node in enumerate(nodes) if node.op_type == "Concat")
        keep_float = [nodes[0].name] + [node.name for node in nodes[head:]]
        partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")  # same folder: os.replace is atomic
        quantize_static(str(prepared), str(partial), Reader(model.graph.input[0].name),
                        quant_format=QuantFormat.QOperator, per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, nodes_to_exclude=keep_float,
                        calibrate_method=CalibrationMethod.MinMax)
        os.replace(partial, target)  # atomic: a half-written file never looks cached
