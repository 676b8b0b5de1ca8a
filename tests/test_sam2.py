"""The `sam2` segmenter on a tiny random-weight SAM 2 (no hub).

Random weights make the masks meaningless, so the tests check what does not depend on them: the
masks and scores equal transformers' own forward + post-processing (best of the three proposals
by predicted IoU), every box of an image goes through ONE forward, and masks are image-sized RLE.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from lookcloser.core.errors import ModelLoadError  # noqa: E402
from lookcloser.tools.base import Segmenter  # noqa: E402
from lookcloser.tools.registry import registry  # noqa: E402
from lookcloser.tools.sam2 import Sam2Segmenter  # noqa: E402
from lookcloser.core.types import Box, Mask  # noqa: E402
from tiny_sam2 import build_tiny_sam2  # noqa: E402

BOXES = [Box(x1=10, y1=10, x2=50, y2=60), Box(x1=100, y1=20, x2=180, y2=110), Box(x1=0, y1=0, x2=200, y2=120)]


@pytest.fixture(scope="session")
def tiny_sam2_path(tmp_path_factory):
    return build_tiny_sam2(tmp_path_factory.mktemp("tiny_sam2"))


def _photo(width: int = 200, height: int = 120, seed: int = 0) -> Image.Image:
    return Image.fromarray((np.random.RandomState(seed).rand(height, width, 3) * 255).astype("uint8"))


def _count_forwards(monkeypatch, segmenter: Sam2Segmenter) -> list[int]:
    _processor, model = segmenter.load()
    calls: list[int] = []
    original = model.forward

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "forward", counted)
    return calls


def _reference(path, image: Image.Image, boxes: list[Box], **prompts):
    """transformers' own forward + post-processing; the best proposal per box by predicted IoU."""
    from transformers import Sam2Model, Sam2Processor

    processor = Sam2Processor.from_pretrained(path)
    model = Sam2Model.from_pretrained(path).eval()
    inputs = processor(images=image, input_boxes=[[b.to_list(None) for b in boxes]], return_tensors="pt", **prompts)
    with torch.no_grad():
        outputs = model(**inputs, multimask_output=True)
    masks = processor.post_process_masks(outputs.pred_masks, inputs["original_sizes"])[0]
    ious = outputs.iou_scores[0]
    best = ious.argmax(-1)
    return [(masks[i, best[i]].numpy(), float(ious[i, best[i]])) for i in range(len(boxes))]


def test_all_boxes_in_one_forward_equal_transformers_post_processing(tiny_sam2_path, monkeypatch):
    segmenter = Sam2Segmenter(model=tiny_sam2_path, device="cpu")
    assert isinstance(segmenter, Segmenter)
    image = _photo()
    calls = _count_forwards(monkeypatch, segmenter)
    results = segmenter.segment(image, BOXES)
    assert len(calls) == 1 and segmenter.calls == 1  # three boxes, one forward
    reference = _reference(tiny_sam2_path, image, BOXES)
    assert len(results) == len(BOXES)
    for det, (mask, score), prompt in zip(results, reference, BOXES):
        assert isinstance(det.mask, Mask) and (det.mask.height, det.mask.width) == (image.height, image.width)
        np.testing.assert_array_equal(det.mask.to_array(), mask)
        assert det.score == pytest.approx(score, abs=1e-6)
        if mask.any():  # the box is the mask's tight box
            ys, xs = np.nonzero(mask)
            assert det.box.to_list(None) == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        else:
            assert det.box == prompt


def test_points_with_the_boxes(tiny_sam2_path, monkeypatch):
    segmenter = Sam2Segmenter(model=tiny_sam2_path, device="cpu")
    image = _photo(seed=1)
    points = [[(30, 30)], [(140, 60)], [(20, 100)]]
    calls = _count_forwards(monkeypatch, segmenter)
    results = segmenter.segment(image, BOXES, points=points, point_labels=[[1], [1], [0]])
    assert len(calls) == 1
    reference = _reference(tiny_sam2_path, image, BOXES, input_points=[[[list(p) for p in ps] for ps in points]],
                           input_labels=[[[1], [1], [0]]])
    for det, (mask, score) in zip(results, reference):
        np.testing.assert_array_equal(det.mask.to_array(), mask)
        assert det.score == pytest.approx(score, abs=1e-6)
    with pytest.raises(ValueError, match="one list per box"):
        segmenter.segment(image, BOXES, points=points[:2])
    with pytest.raises(ValueError, match="same"):
        segmenter.segment(image, BOXES, points=[[(1, 1)], [(1, 1), (2, 2)], [(3, 3)]])
    with pytest.raises(ValueError, match="without points"):
        segmenter.segment(image, BOXES, point_labels=[[1], [1], [1]])


def test_plain_lists_registry_and_no_boxes(tiny_sam2_path, monkeypatch):
    segmenter = registry.create("segmenter", "sam2", model=str(tiny_sam2_path), device="cpu")
    assert segmenter.name == "sam2"
    image = _photo()
    [det] = segmenter.segment(image, [[10, 10, 50, 60]])
    assert det.mask.height == 120 and det.mask.width == 200
    assert segmenter.load()[1] is Sam2Segmenter(model=tiny_sam2_path, device="cpu").load()[1]  # loaded once
    calls = _count_forwards(monkeypatch, segmenter)
    assert segmenter.segment(image, []) == [] and calls == []


def test_missing_model_is_one_clear_error(tmp_path):
    with pytest.raises(ModelLoadError) as err:
        Sam2Segmenter(model=tmp_path / "nope", device="cpu").segment(_photo(), BOXES)
    assert "`model` option" in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="could not load SAM 2 model") as err:
        Sam2Segmenter(model=tmp_path / "empty", device="cpu").segment(_photo(), BOXES)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError):
        Sam2Segmenter(dtype="int3")
