"""The `detector` cue with a scripted detector whose boxes are known."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lookcloser.tools.vstar.cue import CueModel
from lookcloser.tools.vstar.detector_cue import MAP_SIDE, DetectorCue
from lookcloser.core.types import Box, Detection


class ScriptedDetector:
    """Returns fixed boxes (patch pixels) for every phrase; records the calls."""

    name = "scripted-det"

    def __init__(self, boxes: list[tuple[list[float], float]]) -> None:
        self.boxes = boxes
        self.calls: list[list[str]] = []

    def detect(self, image, phrases):
        self.calls.append(list(phrases))
        return [[Detection(box=Box.from_list(b), score=s, label=p) for b, s in self.boxes] for p in phrases]


def _cell_of(heatmap: np.ndarray, x: float, y: float, width: int, height: int) -> tuple[int, int]:
    rows, cols = heatmap.shape
    return min(int(y / height * rows), rows - 1), min(int(x / width * cols), cols - 1)


@pytest.mark.parametrize("splat", ["gaussian", "box"])
def test_map_peaks_on_the_best_box_and_detections_pass_through(splat):
    detector = ScriptedDetector([([100, 100, 140, 160], 0.4), ([600, 300, 700, 380], 0.8)])
    cue = DetectorCue(detector, splat=splat)
    assert isinstance(cue, CueModel)
    out = cue(Image.new("RGB", (800, 400)), "cat")
    assert detector.calls == [["cat"]]
    assert out.heatmap.shape == (MAP_SIDE // 2, MAP_SIDE) and out.heatmap.dtype == np.float32
    assert out.heatmap.min() >= 0
    assert out.peak == pytest.approx(0.8, abs=1e-6)
    assert out.heatmap[_cell_of(out.heatmap, 650, 340, 800, 400)] == pytest.approx(0.8, abs=0.02)
    weak_cell = _cell_of(out.heatmap, 120, 130, 800, 400)
    assert out.heatmap[weak_cell] == pytest.approx(0.4, abs=0.05)
    assert out.heatmap[_cell_of(out.heatmap, 400, 50, 800, 400)] < 1e-3  # far from both boxes
    assert [(d.box.to_list(), d.score) for d in out.detections] == [
        ([600.0, 300.0, 700.0, 380.0], 0.8),
        ([100.0, 100.0, 140.0, 160.0], 0.4),
    ]


def test_overlapping_boxes_combine_with_max_not_sum():
    one = DetectorCue(ScriptedDetector([([10, 10, 50, 50], 0.5)]))(Image.new("RGB", (100, 100)), "cup")
    many = DetectorCue(ScriptedDetector([([10, 10, 50, 50], 0.5)] * 5))(Image.new("RGB", (100, 100)), "cup")
    np.testing.assert_allclose(one.heatmap, many.heatmap)


def test_boxes_are_clipped_to_the_patch_and_empty_ones_dropped():
    detector = ScriptedDetector([([-20, -20, 30, 30], 0.6), ([200, 200, 300, 300], 0.9)])
    out = DetectorCue(detector)(Image.new("RGB", (100, 100)), "cup")
    assert [d.box.to_list() for d in out.detections] == [[0.0, 0.0, 30.0, 30.0]]
    assert out.peak == pytest.approx(0.6, abs=1e-6)


def test_no_detections_gives_an_all_zero_map_and_tiny_boxes_are_not_lost():
    out = DetectorCue(ScriptedDetector([]))(Image.new("RGB", (20000, 200)), "cup")
    assert out.heatmap.shape == (1, MAP_SIDE) and out.peak == 0.0 and out.detections == []
    tiny = DetectorCue(ScriptedDetector([([5000, 100, 5002, 102], 0.7)]))(Image.new("RGB", (20000, 200)), "cup")
    assert tiny.peak == pytest.approx(0.7, abs=0.05)
    one_px = DetectorCue(ScriptedDetector([([0, 0, 1, 1], 0.7)]), splat="box")(Image.new("RGB", (1, 1)), "cup")
    assert one_px.heatmap.shape == (1, 1) and one_px.peak == pytest.approx(0.7)


def test_bad_arguments():
    with pytest.raises(TypeError, match="detect"):
        DetectorCue(object())
    with pytest.raises(ValueError, match="splat"):
        DetectorCue(ScriptedDetector([]), splat="disc")
    with pytest.raises(ValueError, match="splat_sigma"):
        DetectorCue(ScriptedDetector([]), splat_sigma=0)
    with pytest.raises(ValueError, match="non-empty phrase"):
        DetectorCue(ScriptedDetector([]))(Image.new("RGB", (8, 8)), "")


def test_cue_modules_import_without_torch():
    """The cue modules load torch/transformers only when a model is used, so `lookcloser` starts fast."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import lookcloser.tools.vstar.owlv2_cue, lookcloser.tools.vstar.vlm_cue\n"
        "import lookcloser.tools.vstar.detector_cue, lookcloser.tools.vstar.context_cue\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
