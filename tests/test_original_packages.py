"""Adapters over the original GroundingDINO and SAM 2 packages (`groundingdino`, `sam2_original`).

Neither package is in the dev install (their sdists need torch at build time: --no-build-isolation),
so without them each adapter must fail with one clear line saying how to install it; settings
errors (no checkpoint, no BERT directory) name the option in the caller's words. With `sam2`
installed, the real package runs on a real photo with a random-weight Hiera-Tiny checkpoint.
"""

from __future__ import annotations

import importlib.util
import json

import pytest
from PIL import Image

from doubles import ScriptedVLM
from lookcloser import Agent, Box
from lookcloser.core.errors import ModelLoadError
from lookcloser.tools.groundingdino_original import OriginalGroundingDino
from lookcloser.tools.sam2_original import OriginalSam2Segmenter

HAS_GDINO = importlib.util.find_spec("groundingdino") is not None
HAS_SAM2 = importlib.util.find_spec("sam2") is not None


@pytest.mark.skipif(HAS_GDINO, reason="groundingdino is installed: the not-installed error cannot show")
def test_groundingdino_without_its_package_says_how_to_install_it():
    with pytest.raises(ModelLoadError, match=r"not installed: pip install --no-build-isolation 'lookcloser\[groundingdino\]'"):
        OriginalGroundingDino(checkpoint="/x.pth", text_encoder="/bert").detect(Image.new("RGB", (32, 32)), ["cat"])


@pytest.mark.skipif(HAS_SAM2, reason="sam2 is installed: the not-installed error cannot show")
def test_sam2_original_without_its_package_says_how_to_install_it():
    with pytest.raises(ModelLoadError, match=r"SAM2_BUILD_CUDA=0 pip install --no-build-isolation 'lookcloser\[sam2\]'"):
        OriginalSam2Segmenter(checkpoint="/x.pt").segment(Image.new("RGB", (32, 32)), [Box(x1=0, y1=0, x2=9, y2=9)])


@pytest.mark.skipif(not HAS_GDINO, reason="groundingdino-py not installed (extra [groundingdino])")
def test_groundingdino_names_the_missing_text_encoder_in_cli_words(tmp_path):
    checkpoint = tmp_path / "gdino.pth"
    checkpoint.write_bytes(b"")
    show = json.dumps({"answer": None, "missing": [{"name": "cat", "kind": "object"}]})
    agent = Agent(vlm=ScriptedVLM([show, "no"]), spelling="cli",
                  tools={"localizer": {"name": "groundingdino", "checkpoint": str(checkpoint)}})
    [finding] = agent.run(Image.new("RGB", (64, 64)), "cat?").findings
    assert finding.status == "failed" and "text_encoder is not set" in finding.error
    assert "--tool localizer.text_encoder=/models/bert-base-uncased" in finding.error


def test_the_original_adapters_are_registered_with_what_they_need():
    from lookcloser.tools.registry import registry

    infos = {(role, name): info for role, name, info, _origin in registry.listing()}
    for key in [("detector", "groundingdino"), ("localizer", "groundingdino"), ("segmenter", "sam2_original")]:
        usable = infos[key].usability()
        installed = HAS_GDINO if key[1] == "groundingdino" else HAS_SAM2
        assert (usable.status == "ok") == installed and ("--no-build-isolation" in usable.fix) != installed


@pytest.mark.skipif(not HAS_SAM2, reason="sam2 not installed (extra [sam2])")
def test_sam2_original_segments_every_box_in_one_call_on_a_real_photo(tmp_path):
    from pathlib import Path

    import torch
    from sam2.build_sam import build_sam2

    photo_path = Path(__file__).resolve().parents[2] / "shared/data/sam_notebook_images/truck.jpg"
    if not photo_path.exists():
        pytest.skip("../shared/data is not here")
    torch.manual_seed(0)
    checkpoint = tmp_path / "sam2_random.pt"
    torch.save({"model": build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", None, device="cpu").state_dict()}, checkpoint)
    photo = Image.open(photo_path)
    segmenter = OriginalSam2Segmenter(checkpoint=checkpoint, device="cpu")
    boxes = [Box(x1=75, y1=275, x2=1725, y2=850), Box(x1=400, y1=400, x2=600, y2=600)]
    detections = segmenter.segment(photo, boxes)
    assert segmenter.calls == 1 and len(detections) == 2
    for det in detections:
        assert (det.mask.height, det.mask.width) == (photo.height, photo.width) and 0.0 <= det.score <= 1.5
        assert det.mask.area == int(det.mask.to_array().sum())
    with pytest.raises(ModelLoadError, match="checkpoint 'nope.pt' is not an existing file"):
        OriginalSam2Segmenter(checkpoint="nope.pt").segment(photo, boxes)
