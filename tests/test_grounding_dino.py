"""The `grounding_dino` detector / localizer on a tiny random-weight GroundingDINO (no hub).

Random weights make the boxes meaningless, so the tests check what does not depend on them: the
detections equal transformers' own forward + post-processing, every phrase of a call shares ONE
forward, boxes are in the given image's pixels, and (as the V* `detector` cue) the boxes found on
the search's patches come back in original-image pixels.
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from doubles import ScriptedVLM  # noqa: E402
from lookcloser import Agent  # noqa: E402
from lookcloser.core.errors import ModelLoadError  # noqa: E402
from lookcloser.tools.base import Detector, Localizer  # noqa: E402
from lookcloser.tools.grounding_dino import GroundingDinoDetector  # noqa: E402
from lookcloser.tools.registry import registry  # noqa: E402
from lookcloser.core.types import Target  # noqa: E402
from tiny_grounding_dino import build_tiny_grounding_dino  # noqa: E402

PHRASES = ["red car", "dog", "blue cup"]


@pytest.fixture(scope="session")
def tiny_gdino_path(tmp_path_factory):
    return build_tiny_grounding_dino(tmp_path_factory.mktemp("tiny_gdino"))


def _photo(width: int = 200, height: int = 120, seed: int = 0) -> Image.Image:
    return Image.fromarray((np.random.RandomState(seed).rand(height, width, 3) * 255).astype("uint8"))


def _count_forwards(monkeypatch, detector: GroundingDinoDetector) -> list[int]:
    """Wrap the (shared) model's forward to count the passes; monkeypatch restores it."""
    _processor, model = detector.load()
    calls: list[int] = []
    original = model.forward

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "forward", counted)
    return calls


def _reference(path, image: Image.Image, phrases: list[str], box_threshold: float, text_threshold: float):
    """transformers' own full forward + post-processing of the same "a. b. c." prompt."""
    from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForZeroShotObjectDetection.from_pretrained(path).eval()
    inputs = processor(images=image, text=[phrases], return_tensors="pt")  # the processor merges the labels
    with torch.no_grad():
        outputs = model(**inputs)
    [result] = processor.post_process_grounded_object_detection(
        outputs, inputs["input_ids"], threshold=box_threshold, text_threshold=text_threshold,
        target_sizes=[(image.height, image.width)],
    )
    return result


def test_all_phrases_in_one_forward_equal_transformers_post_processing(tiny_gdino_path, monkeypatch):
    detector = GroundingDinoDetector(model=tiny_gdino_path, device="cpu", box_threshold=0.5, text_threshold=0.5,
                                     max_per_phrase=1000)
    assert isinstance(detector, Detector) and isinstance(detector, Localizer)
    image = _photo()
    calls = _count_forwards(monkeypatch, detector)
    results = detector.detect(image, PHRASES)
    assert len(calls) == 1 and detector.forward_calls == 1  # three phrases, one forward
    assert len(results) == 3

    ref = _reference(tiny_gdino_path, image, PHRASES, 0.5, 0.5)
    ref_boxes = ref["boxes"].numpy()
    ref_boxes[:, 0::2] = ref_boxes[:, 0::2].clip(0, image.width)
    ref_boxes[:, 1::2] = ref_boxes[:, 1::2].clip(0, image.height)
    ours = sorted((tuple(d.box.to_list(None)), d.score, d.label) for dets in results for d in dets)
    theirs = sorted((tuple(b), float(s)) for b, s in zip(ref_boxes.tolist(), ref["scores"].tolist())
                    if (b[2] - b[0]) * (b[3] - b[1]) > 0)
    assert len(ours) == len(theirs) > 0
    for (box, score, _), (ref_box, ref_score) in zip(ours, theirs):
        np.testing.assert_allclose(box, ref_box, atol=1e-3)
        assert score == pytest.approx(ref_score, abs=1e-5)
    # split back per phrase: a label that spells a phrase puts its box under that phrase
    by_box = {tuple(np.round(d.box.to_list(None), 2)): phrase for phrase, dets in zip(PHRASES, results) for d in dets}
    for box, label in zip(ref_boxes.tolist(), ref["text_labels"]):
        spelled = " ".join(label.replace(".", " ").split())
        if spelled in PHRASES and tuple(np.round(box, 2)) in by_box:
            assert by_box[tuple(np.round(box, 2))] == spelled
    for phrase, dets in zip(PHRASES, results):
        assert all(d.label == phrase for d in dets)
        assert [d.score for d in dets] == sorted((d.score for d in dets), reverse=True)
        for d in dets:
            assert 0 <= d.box.x1 <= d.box.x2 <= image.width and 0 <= d.box.y1 <= d.box.y2 <= image.height


def test_boxes_follow_the_image_size(tiny_gdino_path):
    detector = GroundingDinoDetector(model=tiny_gdino_path, device="cpu", box_threshold=0.3, max_per_phrase=1000)
    small, big = _photo(160, 96, seed=1), _photo(160, 96, seed=1).resize((640, 384), Image.NEAREST)
    [on_big] = detector.detect(big, ["dog"])
    for d in on_big:
        assert d.box.x2 <= 640 and d.box.y2 <= 384
    assert max((d.box.x2 for d in on_big), default=641) > 160 or not on_big  # not stuck in model-input pixels
    assert detector.detect(small, ["dog"])  # boxes on the small image too


def test_duplicate_empty_and_odd_phrases(tiny_gdino_path, monkeypatch):
    detector = GroundingDinoDetector(model=tiny_gdino_path, device="cpu", box_threshold=0.3)
    calls = _count_forwards(monkeypatch, detector)
    image = _photo()
    results = detector.detect(image, ["Dog", "dog.", "", "red  car"])
    assert len(results) == 4 and len(calls) == 1
    assert results[0] == results[1] and results[2] == []
    assert all(d.label == "red car" for d in results[3])
    assert detector.detect(image, []) == [] and len(calls) == 1
    with pytest.raises(TypeError):
        detector.detect(image, "dog")


def test_locate_returns_the_best_box_or_not_found(tiny_gdino_path):
    image = _photo()
    detector = GroundingDinoDetector(model=tiny_gdino_path, device="cpu", box_threshold=0.3)
    [finding] = detector.locate(image, Target(name="dog"))
    [dets] = detector.detect(image, ["dog"])
    assert finding.status == "found" and finding.tool == "grounding_dino"
    assert finding.box == dets[0].box and finding.score == dets[0].score == max(d.score for d in dets)
    strict = GroundingDinoDetector(model=tiny_gdino_path, device="cpu", box_threshold=1.0)
    [missing] = strict.locate(image, Target(name="dog"))
    assert missing.status == "not_found" and missing.box is None


def test_one_model_shared_by_instances_and_threads(tiny_gdino_path):
    a = GroundingDinoDetector(model=tiny_gdino_path, device="cpu")
    b = registry.create("localizer", "grounding_dino", model=str(tiny_gdino_path), device="cpu")
    c = registry.create("detector", "grounding_dino", model=str(tiny_gdino_path), device="cpu")
    assert a.load()[1] is b.load()[1] is c.load()[1]
    image = _photo()
    expected = a.detect(image, PHRASES)
    out: list = []
    threads = [threading.Thread(target=lambda: out.append(b.detect(image, PHRASES))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == [expected] * 3


def test_missing_model_is_one_clear_error(tmp_path):
    with pytest.raises(ModelLoadError) as err:
        GroundingDinoDetector(model=tmp_path / "nope", device="cpu").detect(_photo(), ["dog"])
    assert "`model` option" in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="could not load GroundingDINO model") as err:
        GroundingDinoDetector(model=tmp_path / "empty", device="cpu").detect(_photo(), ["dog"])
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError):
        GroundingDinoDetector(box_threshold=2.0)
    with pytest.raises(ValueError):
        GroundingDinoDetector(dtype="int3")


def test_as_the_vstar_detector_cue_boxes_map_back_through_the_patches(tiny_gdino_path, tmp_path):
    photo = _photo(1200, 900, seed=3)
    options = {"model": str(tiny_gdino_path), "device": "cpu", "box_threshold": 0.66}
    show = json.dumps({"answer": None, "missing": [{"name": "dog", "kind": "object"}]})

    def reply(text: str, images: list) -> str:
        if "most likely to be" in text:
            return "bottom-right"
        if "Additional visual information" in text:
            return "done"
        return show

    agent = Agent(vlm=ScriptedVLM(reply), tools={"localizer": "vstar", "detector": "grounding_dino"},
                  tool_options={"localizer": {"cue": "detector"}, "detector": options})
    answer = agent.run(photo, "Where is the dog?")
    [finding] = answer.findings
    assert finding.tool == "vstar"
    steps = finding.search["steps"]
    assert len(steps) > 1  # it zoomed: boxes on sub-patches had to be mapped back
    check = GroundingDinoDetector(**options)
    shifted = 0
    for step in steps:
        x1, y1, x2, y2 = step["box"]
        patch = photo.crop((int(x1), int(y1), int(x2), int(y2)))
        [dets] = check.detect(patch, ["dog"])
        expected = sorted([round(d.box.x1 + int(x1), 1), round(d.box.y1 + int(y1), 1),
                           round(d.box.x2 + int(x1), 1), round(d.box.y2 + int(y1), 1)] for d in dets)
        recorded = sorted(d["box"] for d in step["detections"])
        assert len(recorded) == len(expected)
        for got, want in zip(recorded, expected):
            np.testing.assert_allclose(got, want, atol=0.11)
            assert x1 - 0.1 <= got[0] <= got[2] <= x2 + 0.1 and y1 - 0.1 <= got[1] <= got[3] <= y2 + 0.1
        shifted += bool(dets) and (x1 > 0 or y1 > 0)
    assert shifted  # at least one patch away from the origin had detections
    if finding.status == "found":
        assert any(np.allclose(finding.box.to_list(), d["box"], atol=0.11) for s in steps for d in s["detections"])
