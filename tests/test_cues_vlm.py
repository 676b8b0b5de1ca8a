"""The ZoomEye-style `vlm` cue with a scripted VLM that 'sees' red pixels."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lookcloser.tools.vstar.cue import CueModel
from lookcloser.tools.vstar.vlm_cue import VLMCue, grid_cells, grid_shape
from lookcloser.core.vlm_protocol import VLMReply


class RedSquareVLM:
    """Says yes (0.95) when an image holds a pure red pixel, no (0.05) otherwise; logs every prompt."""

    name = "scripted-red"

    def __init__(self) -> None:
        self.prompts: list[str] = []
        self.sizes: list[tuple[int, int]] = []

    def generate(self, messages, *, max_new_tokens=256):
        return VLMReply(text="Yes")

    def yes_probability(self, image, prompt):
        self.prompts.append(prompt)
        self.sizes.append(image.size)
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
        red = np.any((pixels[:, 0] > 200) & (pixels[:, 1] < 50) & (pixels[:, 2] < 50))
        return 0.95 if red else 0.05


class GenerateOnlyVLM:
    name = "chat-only"

    def generate(self, messages, *, max_new_tokens=256):
        return VLMReply(text="No")


def _scene(width: int, height: int, square: tuple[int, int, int, int] | None) -> Image.Image:
    image = Image.new("RGB", (width, height), (40, 90, 40))
    if square:
        ImageDraw.Draw(image).rectangle(square, fill=(255, 0, 0))
    return image


def test_heat_is_on_the_cell_with_the_red_square():
    vlm = RedSquareVLM()
    cue = VLMCue(vlm)
    assert isinstance(cue, CueModel)
    out = cue(_scene(800, 600, (600, 400, 640, 440)), "red square")  # bottom-right cell
    assert out.heatmap.shape == (2, 2) and out.heatmap.dtype == np.float32
    assert int(np.argmax(out.heatmap)) == 3
    assert out.peak == pytest.approx(0.95)
    assert out.heatmap.min() >= 0
    assert cue.vlm_calls == 4 and len(vlm.prompts) == 4
    assert vlm.prompts[0] == "Is there a red square in the image? Answer Yes or No."
    assert vlm.sizes == [(400, 300)] * 4
    # 400x300 cells fit the default 448 px final-crop size: the red cell is also a detection
    assert [(d.box.to_list(), d.score) for d in out.detections] == [([400.0, 300.0, 800.0, 600.0], 0.95)]


def test_small_cells_become_detections_large_ones_only_guide():
    vlm = RedSquareVLM()
    big = VLMCue(vlm, max_box_side=300)(_scene(800, 600, (600, 400, 640, 440)), "red square")
    assert big.detections == []  # 400x300 cells are larger than 300 px: keep zooming
    small = VLMCue(vlm)(_scene(400, 400, (250, 250, 260, 260)), "red square")
    assert [d.box.to_list() for d in small.detections] == [[200.0, 200.0, 400.0, 400.0]]
    assert small.detections[0].score == pytest.approx(0.95)  # 0.05 cells are below min_score 0.1


def test_grid_follows_the_seal_split_rule_for_elongated_patches():
    assert grid_shape(1000, 200, 2) == (4, 1)
    assert grid_shape(200, 1000, 2) == (1, 4)
    assert grid_shape(300, 200, 2) == (2, 2)
    assert grid_shape(1, 1, 2) == (1, 1)
    assert grid_shape(3, 1, 2) == (3, 1)
    cells = grid_cells(10, 7, 2, 2)
    assert cells == [(0, 0, 5, 3), (5, 0, 10, 3), (0, 3, 5, 7), (5, 3, 10, 7)]
    vlm = RedSquareVLM()
    out = VLMCue(vlm)(_scene(2000, 200, (1700, 50, 1720, 70)), "red square")
    assert out.heatmap.shape == (1, 4) and int(np.argmax(out.heatmap)) == 3


def test_tiny_patch_and_bad_inputs():
    vlm = RedSquareVLM()
    cue = VLMCue(vlm)
    out = cue(Image.new("RGB", (1, 1), (255, 0, 0)), "red square")
    assert out.heatmap.shape == (1, 1) and out.peak == pytest.approx(0.95)
    assert [d.box.to_list() for d in out.detections] == [[0.0, 0.0, 1.0, 1.0]]
    with pytest.raises(ValueError, match="non-empty phrase"):
        cue(Image.new("RGB", (8, 8)), " ")


def test_needs_a_vlm_with_yes_probability():
    with pytest.raises(TypeError, match="yes_probability.*chat-only"):
        VLMCue(GenerateOnlyVLM())
    with pytest.raises(ValueError, match="target"):
        VLMCue(RedSquareVLM(), prompt="Is it there?")
    with pytest.raises(ValueError, match="grid"):
        VLMCue(RedSquareVLM(), grid=0)


def test_out_of_range_probability_is_reported():
    class Broken(RedSquareVLM):
        def yes_probability(self, image, prompt):
            return 1.5

    with pytest.raises(ValueError, match="1.5"):
        VLMCue(Broken())(Image.new("RGB", (8, 8)), "dog")
