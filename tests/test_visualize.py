"""agent/imaging/draw.py: boxes, labels and run-length masks drawn over the image."""

import numpy as np
from PIL import Image

from lookcloser.core.types import Box, Finding, Mask, Target
from lookcloser.imaging.draw import draw_findings


def _finding(box, mask=None, text=None, status="found"):
    return Finding(target=Target(name="cup"), status=status, box=Box.from_list(box), score=0.9, mask=mask,
                   text=text, tool="test")


def test_mask_from_finding_is_drawn_inside_its_area_only():
    image = Image.new("RGB", (100, 80), (0, 0, 0))
    area = np.zeros((80, 100), bool)
    area[40:60, 10:30] = True
    drawn = draw_findings(image, [_finding([5, 35, 35, 65], mask=Mask.from_array(area))])
    assert drawn.size == (100, 80) and drawn.mode == "RGB"
    inside, outside = np.asarray(drawn)[50, 20], np.asarray(drawn)[10, 80]
    assert inside.sum() > 0 and outside.sum() == 0


def test_mask_of_another_size_is_skipped_and_text_labels_drawn():
    image = Image.new("RGB", (64, 48), (0, 0, 0))
    small = Mask.from_array(np.ones((4, 4), bool))
    drawn = draw_findings(image, [_finding([20, 20, 40, 30], mask=small, text="EXIT"),
                                  Finding(target=Target(name="dog"), status="not_found", tool="test")])
    assert np.asarray(drawn)[25, 30].sum() == 0  # inside the box, not covered by the mis-sized mask


def test_large_images_are_shrunk_to_max_side():
    drawn = draw_findings(Image.new("RGB", (4000, 1000)), [_finding([100, 100, 900, 900])], max_side=1000)
    assert drawn.size == (1000, 250)
