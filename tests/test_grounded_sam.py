"""Grounded-SAM through the real graph: `grounding_dino` finds the boxes, `sam2` turns them into masks.

Both are tiny random-weight models loaded from local directories through the real transformers
path; the VLM is scripted. Checks: every found object finding carries SAM 2's mask for its box,
the masks equal a direct segmenter call on the same boxes; GroundingDINO runs ONE forward for all
targets of the image and SAM 2 gets all found boxes of the image in ONE call.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")
pytest.importorskip("transformers")

from doubles import ScriptedVLM  # noqa: E402
from lookcloser import Agent  # noqa: E402
from lookcloser.tools.grounding_dino import GroundingDinoDetector  # noqa: E402
from lookcloser.tools.sam2 import Sam2Segmenter  # noqa: E402
from tiny_grounding_dino import build_tiny_grounding_dino  # noqa: E402
from tiny_sam2 import build_tiny_sam2  # noqa: E402


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("grounded_sam")
    return build_tiny_grounding_dino(root), build_tiny_sam2(root)


def _agent(targets: list[str], gdino, sam, **detector_options) -> tuple[Agent, ScriptedVLM]:
    show = json.dumps({"answer": None, "missing": [{"name": t, "kind": "object"} for t in targets]})
    vlm = ScriptedVLM(lambda text, images: "done" if "Additional visual information" in text else show)
    agent = Agent(
        vlm=vlm, tools={"localizer": "grounding_dino", "segmenter": "sam2"},
        tool_options={"localizer": {"model": str(gdino), "device": "cpu", **detector_options},
                      "segmenter": {"model": str(sam), "device": "cpu"}},
    )
    return agent, vlm


def test_one_detector_forward_and_one_sam2_call_per_image(model_dirs, monkeypatch):
    gdino, sam = model_dirs
    calls: list[int] = []
    forwards: list[list[str]] = []
    original = Sam2Segmenter.segment
    original_detect = GroundingDinoDetector._detect_unique

    def spy(self, image, boxes, *args, **kwargs):
        calls.append(len(boxes))
        return original(self, image, boxes, *args, **kwargs)

    def spy_detect(self, image, phrases):
        forwards.append(list(phrases))
        return original_detect(self, image, phrases)

    monkeypatch.setattr(Sam2Segmenter, "segment", spy)
    monkeypatch.setattr(GroundingDinoDetector, "_detect_unique", spy_detect)
    photo = Image.fromarray((np.random.RandomState(5).rand(240, 320, 3) * 255).astype("uint8"))
    agent, vlm = _agent(["dog", "red car"], gdino, sam, box_threshold=0.3)
    seen: list[list[Image.Image]] = []
    script = vlm._script
    vlm._script = lambda text, images: seen.append(images) or script(text, images)
    answer = agent.run(photo, "What is on the table?")

    assert answer.text == "done"
    assert [f.target.name for f in answer.findings] == ["dog", "red car"]
    found = [f for f in answer.findings if f.status == "found"]
    assert len(found) == 2
    for finding in found:
        assert finding.tool == "grounding_dino"
        assert finding.mask is not None and (finding.mask.height, finding.mask.width) == (240, 320)
    # one detector forward with both targets ("dog. red car."), one segmenter call with both boxes
    assert forwards == [["dog", "red car"]] and calls == [2]
    assert answer.stats.tool_calls == 2
    # the masks are SAM 2's for those boxes: the same as one direct call with all the boxes
    direct = Sam2Segmenter(model=sam, device="cpu").segment(photo, [f.box for f in found])
    for finding, det in zip(found, direct):
        np.testing.assert_array_equal(finding.mask.to_array(), det.mask.to_array())
    # TELL sees masked crops (Grounded-SAM): the text says so, and outside each mask the crop is dimmed
    tell_text = vlm.calls[-1]["text"]
    assert tell_text.count("its segmentation mask bright, the rest dimmed") == 2
    crops = seen[-1][1:]
    assert len(crops) == 2
    checked = 0
    for finding, shown in zip(sorted(found, key=lambda f: -f.score), crops):
        region = finding.box.expand(1.2, 320, 240, min_size=32)
        plain = photo.crop(tuple(int(v) for v in region.to_list())).resize(shown.size)
        outside = ~np.asarray(Image.fromarray(finding.mask.to_array()).crop(
            tuple(int(v) for v in region.to_list())).resize(shown.size, Image.Resampling.NEAREST))
        if outside.sum() > 100:
            assert np.asarray(shown)[outside].mean() < 0.5 * np.asarray(plain)[outside].mean()
            checked += 1
    assert checked >= 1
        # the boxes are GroundingDINO's best box per target from that one joint prompt
    detector = GroundingDinoDetector(model=gdino, device="cpu", box_threshold=0.3)
    joint = detector.detect(photo, ["dog", "red car"])
    assert [f.box for f in found] == [joint[0][0].box, joint[1][0].box]


def test_not_found_targets_are_not_segmented(model_dirs, monkeypatch):
    gdino, sam = model_dirs
    calls: list[int] = []
    monkeypatch.setattr(Sam2Segmenter, "segment", lambda self, image, boxes, *a, **k: calls.append(len(boxes)) or [])
    photo = Image.fromarray((np.random.RandomState(6).rand(120, 160, 3) * 255).astype("uint8"))
    agent, _vlm = _agent(["dog"], gdino, sam, box_threshold=1.0)
    answer = agent.run(photo, "Is there a dog?")
    [finding] = answer.findings
    assert finding.status == "not_found" and finding.mask is None and calls == []


def test_cli_grounded_sam_from_a_config_file_draws_masks_and_reports_them(model_dirs, tmp_path):
    """The path a CLI user takes: a TOML config naming both experts, `ask --save-vis`, then the report."""
    import subprocess
    import sys
    from pathlib import Path

    from openai_stub import StubServer, prompt_text
    from lookcloser.tracing.report import render_report

    gdino, sam = model_dirs
    config = tmp_path / "lookcloser.toml"
    config.write_text(f'[tools.localizer]\nname = "grounding_dino"\nmodel = "{gdino}"\ndevice = "cpu"\n'
                      f'box_threshold = 0.3\n\n[tools.segmenter]\nname = "sam2"\nmodel = "{sam}"\ndevice = "cpu"\n')
    photo = tmp_path / "photo.png"
    Image.fromarray((np.random.RandomState(5).rand(240, 320, 3) * 255).astype("uint8")).save(photo)
    show = json.dumps({"answer": None, "missing": [{"name": "dog", "kind": "object"}, {"name": "red car", "kind": "object"}]})
    script = Path(sys.executable).parent / "lookcloser"
    with StubServer() as stub:
        stub.script = lambda request: "done" if "Additional visual information" in prompt_text(request) else show
        done = subprocess.run([str(script), "ask", str(photo), "What is on the table?", "--vlm", f"openai:stub@{stub.url}",
                               "--config", str(config), "--save-vis", str(tmp_path / "vis.png"), "--trace-dir",
                               str(tmp_path / "traces"), "--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    masked = [f for f in result["findings"] if f["mask_area"] is not None]
    assert len(masked) == 2 and {f["tool"] for f in masked} == {"grounding_dino"}
    vis = np.asarray(Image.open(tmp_path / "vis.png").convert("RGB")).astype(int)
    assert vis.shape[:2] == (240, 320) and np.abs(vis - np.asarray(Image.open(photo).convert("RGB"))).sum() > 0
    [trace_dir] = [p for p in (tmp_path / "traces").iterdir() if p.is_dir()]
    assert render_report(trace_dir).count('class="mask-overlay"') == 2
