"""lookcloser.core.geometry: batch IoU, the "same line" overlap, NMS, SEAL's split rule, leaf and intersection tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from lookcloser.core.geometry import (as_xyxy, box_intersection_batch, box_iou_batch, boxes_intersect, is_leaf,
                                 line_overlap_batch, nms, split_box)
from lookcloser.core.types import Box


def _iou(a, b) -> float:
    """Reference IoU, written out once by hand."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _random_boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    xy = rng.uniform(0, 100, size=(n, 2))
    wh = rng.uniform(0, 40, size=(n, 2))
    return np.concatenate([xy, xy + wh], axis=1)


def test_iou_batch_matches_the_pairwise_definition():
    rng = np.random.default_rng(0)
    a, b = _random_boxes(rng, 7), _random_boxes(rng, 5)
    got = box_iou_batch(a, b)
    assert got.shape == (7, 5)
    expected = np.array([[_iou(x, y) for y in b] for x in a])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(box_iou_batch(b, a), got.T)
    np.testing.assert_allclose(np.diag(box_iou_batch(a, a)), np.where((a[:, 2] > a[:, 0]) & (a[:, 3] > a[:, 1]), 1, 0))


def test_iou_known_values_and_degenerate_boxes():
    assert box_iou_batch([0, 0, 10, 10], [5, 0, 15, 10])[0, 0] == pytest.approx(50 / 150)
    assert box_iou_batch([0, 0, 10, 10], [10, 0, 20, 10])[0, 0] == 0.0  # touching edges share no area
    assert box_iou_batch([3, 3, 3, 3], [3, 3, 3, 3])[0, 0] == 0.0  # empty union: 0, not NaN
    assert box_iou_batch(np.zeros((0, 4)), [[0, 0, 1, 1]]).shape == (0, 1)
    # Box.iou is the same function
    a, b = Box(x1=0, y1=0, x2=10, y2=10), Box(x1=5, y1=5, x2=15, y2=15)
    assert a.iou(b) == pytest.approx(25 / 175) == box_iou_batch([a], [b])[0, 0]
    assert box_intersection_batch([a, b], [a])[:, 0].tolist() == [100.0, 25.0]


def test_line_overlap_catches_a_read_inside_a_longer_one():
    whole = [0, 0, 100, 20]
    part = [10, 2, 40, 18]  # a partial read of the same line: small IoU, fully inside
    assert box_iou_batch(whole, part)[0, 0] < 0.3
    assert line_overlap_batch(whole, part)[0, 0] == pytest.approx(1.0)
    other = [0, 40, 100, 60]
    assert line_overlap_batch([whole], [part, other]).tolist() == [[pytest.approx(1.0), 0.0]]
    assert line_overlap_batch([5, 5, 5, 9], [0, 0, 10, 10])[0, 0] == 0.0  # an empty box overlaps nothing


def _nms_reference(boxes, scores, threshold, limit):
    order = sorted(range(len(scores)), key=lambda i: -scores[i])  # stable: ties keep index order
    kept = []
    for i in order:
        if limit is not None and len(kept) >= limit:
            break
        if all(_iou(boxes[i], boxes[k]) <= threshold for k in kept):
            kept.append(i)
    return kept


@pytest.mark.parametrize("threshold,limit", [(0.5, None), (0.3, 4), (0.0, None), (1.0, 3)])
def test_nms_is_greedy_by_score(threshold, limit):
    rng = np.random.default_rng(1)
    boxes = _random_boxes(rng, 40)
    scores = rng.uniform(size=40).round(1)  # ties on purpose
    assert nms(boxes, scores, threshold, limit) == _nms_reference(boxes, scores, threshold, limit)


def test_nms_drops_duplicates_keeps_distinct_and_float32_inputs():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10]], dtype=np.float32)
    scores = np.array([0.9, 0.95, 0.5, 0.9], dtype=np.float32)
    assert nms(boxes, scores, 0.5) == [1, 2]
    assert nms(boxes, scores, 0.5, limit=1) == [1]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5) == []
    with pytest.raises(ValueError, match="3 boxes but 2 scores"):
        nms(boxes[:3], scores[:2], 0.5)


def test_split_rule_and_leaf_rule():
    @dataclass
    class Rule:  # any object with the four fields will do, not only SearchConfig
        tall_ratio: float = 2.0
        wide_ratio: float = 0.5
        split_parts: int = 3
        min_split_px: int = 8

    rule = Rule()
    assert split_box((0, 0, 100, 300), rule) == [(0, 0, 100, 100), (0, 100, 100, 200), (0, 200, 100, 300)]
    assert split_box((0, 0, 301, 100), rule) == [(0, 0, 100, 100), (100, 0, 200, 100), (200, 0, 301, 100)]
    assert split_box((0, 0, 21, 21), rule) == [(0, 0, 10, 10), (10, 0, 21, 10), (0, 10, 10, 21), (10, 10, 21, 21)]
    assert split_box((0, 0, 15, 15), rule) == []  # 7-px parts are under min_split_px
    assert split_box((5, 5, 5, 50), rule) == []  # empty
    parts = split_box(Box(x1=0.4, y1=0, x2=99.6, y2=99), rule)  # coordinates rounded to whole pixels
    assert parts[0] == (0, 0, 50, 49) and parts[-1] == (50, 49, 100, 99)
    assert is_leaf((0, 0, 900, 224), 224) and not is_leaf(Box(x1=0, y1=0, x2=225, y2=225), 224)


def test_intersection_test_and_box_inputs():
    assert boxes_intersect((0, 0, 10, 10), Box(x1=9, y1=9, x2=20, y2=20))
    assert not boxes_intersect((0, 0, 10, 10), (10, 0, 20, 10))  # shared edge only
    assert as_xyxy(Box(x1=1, y1=2, x2=3, y2=4)).tolist() == [[1, 2, 3, 4]]
    assert as_xyxy([(1, 2, 3, 4), Box(x1=0, y1=0, x2=1, y2=1)]).shape == (2, 4)
    assert as_xyxy(np.array([1, 2, 3, 4])).dtype == np.float64
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        as_xyxy(np.zeros((2, 3)))
