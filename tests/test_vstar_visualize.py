"""draw_search: numbered patches, heatmap overlay and final boxes land where the search says."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lookcloser.tools.vstar.localizer import VStarLocalizer
from lookcloser.tools.vstar.find_one import find_one
from lookcloser.tools.vstar.visualize import draw_search
from lookcloser.core.types import Box, Target
from vstar_fakes import Blob, SyntheticCue, Thing, coord_image

TARGET = Box(x1=700, y1=120, x2=740, y2=150)


def test_draw_from_result_and_from_findings(tmp_path):
    image = Image.new("RGB", (896, 896), "white")
    cue = SyntheticCue(blobs=[Blob(720, 135, 40)], things=[Thing(TARGET, 0.9, 500)])
    coords = coord_image(896, 896)
    result = find_one(coords, "cup", cue)
    picture = draw_search(image, result, tmp_path / "vis.png")
    assert (tmp_path / "vis.png").exists() and picture.size == (896, 896)
    pixels = np.asarray(picture).astype(int)
    # the final box is outlined in green just outside the target box
    assert tuple(pixels[int(TARGET.y1) - 4, int(TARGET.x1) + 10]) == (0, 255, 0)
    # the heatmap overlay reddens the hot spot, not a far corner
    assert pixels[135, 720, 0] > pixels[135, 720, 2] + 50 and tuple(pixels[850, 60]) == (255, 255, 255)
    findings = VStarLocalizer(cue=SyntheticCue(blobs=[Blob(720, 135, 40)], things=[Thing(TARGET, 0.9, 500)])).locate(
        coords, Target(name="cup"))
    again = draw_search(image, findings, None)
    assert tuple(np.asarray(again)[int(TARGET.y1) - 4, int(TARGET.x1) + 10]) == (0, 255, 0)
    with pytest.raises(ValueError, match="search record"):
        draw_search(image, [], None)
