"""The text cue on onnxruntime (default) and on OpenVINO: the same model files give the same maps
and the same reads on a real photo, and a bad or missing runtime is one clear line."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookcloser.errors import ModelLoadError
from lookcloser.tools.vstar import ocr_runtime
from lookcloser.tools.vstar.text_cue import TextCue

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.slow
def test_openvino_and_onnxruntime_give_the_same_map_and_reads_on_a_real_photo():
    pytest.importorskip("openvino")
    # the vending machine's sign panel: several printed lines (SEAL demo photo, MIT)
    patch = Image.open(EXAMPLES / "vending_machine.jpg").convert("RGB").crop((1700, 700, 2500, 1200))
    fast, reference = TextCue(runtime="openvino"), TextCue(runtime="onnxruntime")
    a, b = fast(patch, "text"), reference(patch, "text")
    assert a.heatmap.shape == b.heatmap.shape
    assert float(np.abs(a.heatmap - b.heatmap).max()) < 1e-3  # measured 1.4e-5 on a 1-MP input
    reads_a = [(d.text, round(d.score, 3), d.box.to_list()) for d in a.detections]
    reads_b = [(d.text, round(d.score, 3), d.box.to_list()) for d in b.detections]
    assert len(reads_a) >= 3 and any(text for text, _, _ in reads_a)
    assert reads_a == reads_b


def test_unknown_runtime_names_the_choices():
    with pytest.raises(ValueError, match="onnxruntime, openvino.*'tensorrt'"):
        TextCue(runtime="tensorrt")


def test_missing_openvino_says_how_to_install_or_switch(monkeypatch):
    ocr_runtime.load_model.cache_clear()
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ImportError
    try:
        with pytest.raises(ModelLoadError, match=r"lookcloser\[ocr-openvino\].*runtime=onnxruntime"):
            TextCue(runtime="openvino")
    finally:
        ocr_runtime.load_model.cache_clear()
