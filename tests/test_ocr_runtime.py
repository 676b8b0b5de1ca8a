"""The text cue on onnxruntime (default) and on OpenVINO: the same model files find the same text on a
real photo (within what differs between CPUs), and a bad or missing runtime is one clear line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PIL import Image

from lookcloser.core.errors import ModelLoadError
from lookcloser.core.hub import forget_shared
from lookcloser.tools.vstar.text_cue import TextCue
from lookcloser.tools.vstar.text_match import edit_distance, normalise
from lookcloser.core.types import Box

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.slow
def test_openvino_and_onnxruntime_find_the_same_text_on_a_real_photo():
    """What must hold on any CPU: the two runtimes' float kernels differ (measured on an AMD EPYC: up to
    0.71 at a few map pixels, one line read "E617NT" vs "E617T"), so the maps are compared on their
    thresholded text regions and the reads line by line within a small edit distance, not exactly."""
    pytest.importorskip("openvino")
    # the vending machine's sign panel: several printed lines (SEAL demo photo, MIT)
    patch = Image.open(EXAMPLES / "vending_machine.jpg").convert("RGB").crop((1700, 700, 2500, 1200))
    fast, reference = TextCue(runtime="openvino"), TextCue(runtime="onnxruntime")
    a, b = fast(patch, "text"), reference(patch, "text")
    assert a.heatmap.shape == b.heatmap.shape
    text_a, text_b = a.heatmap > TEXT_LEVEL, b.heatmap > TEXT_LEVEL
    assert text_b.sum() > 1000  # the panel has text: an empty map would agree trivially
    assert (text_a & text_b).sum() / (text_a | text_b).sum() >= MAP_IOU
    lines_a, lines_b = _lines(a), _lines(b)
    assert len(lines_b) >= 3
    for text, box in lines_b:  # every line one runtime reads, the other reads at the same place
        same_place = [other for other, other_box in lines_a if box.iou(other_box) >= 0.5]
        assert same_place, f"openvino found no line where onnxruntime read {text!r} at {box.to_list()}"
        assert min(edit_distance(text, other) for other in same_place) <= max(1, len(text) // 5), (text, same_place)
    assert abs(len(lines_a) - len(lines_b)) <= 1


#: Threshold on the detector's text probability (what the search treats as text) and the agreement
#: the runtimes must reach on it (IoU measured 0.975 on an AMD EPYC; the margin is for other CPUs).
TEXT_LEVEL = 0.3
MAP_IOU = 0.9


def _lines(output) -> list[tuple[str, Box]]:
    return [(normalise(d.text), d.box) for d in output.detections if d.text and normalise(d.text)]


def test_unknown_runtime_names_the_choices():
    with pytest.raises(ValueError, match="onnxruntime, openvino.*'tensorrt'"):
        TextCue(runtime="tensorrt")


def test_missing_openvino_says_how_to_install_or_switch(monkeypatch):
    forget_shared("onnx")
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ImportError
    try:
        with pytest.raises(ModelLoadError, match=r"lookcloser\[ocr-openvino\].*runtime=onnxruntime"):
            TextCue(runtime="openvino")
    finally:
        forget_shared("onnx")
