"""Box geometry in one place, pure numpy: IoU, the "same line" overlap, NMS, SEAL's split rule.

Boxes are xyxy in pixels. Every function takes a `Box`, anything with x1/y1/x2/y2 attributes or
four numbers; the batch functions take (n, 4) arrays (or lists of such boxes). Ratios divide by at
least `EPS` px², so empty and degenerate boxes (area < 1e-12 px², which OWLv2 does propose) give 0
or a small overlap, never NaN.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import numpy as np

__all__ = [
    "EPS",
    "SplitRule",
    "as_xyxy",
    "box_intersection_batch",
    "box_iou_batch",
    "boxes_intersect",
    "is_leaf",
    "line_overlap_batch",
    "nms",
    "split_box",
]


#: Smallest area (px²) a ratio divides by.
EPS = 1e-12


class SplitRule(Protocol):
    """The split parameters (a `SearchConfig` has them): see `split_box`."""

    tall_ratio: float
    wide_ratio: float
    split_parts: int
    min_split_px: int


def _xyxy(box: Any) -> tuple[float, float, float, float]:
    if hasattr(box, "x1"):
        return box.x1, box.y1, box.x2, box.y2
    x1, y1, x2, y2 = box
    return x1, y1, x2, y2


def as_xyxy(boxes: Any) -> np.ndarray:
    """An (n, 4) float array from an array, a list of boxes, or one box ((1, 4))."""
    if isinstance(boxes, np.ndarray):
        array = boxes if boxes.ndim == 2 else boxes.reshape(-1, 4)
    else:
        items = [boxes] if hasattr(boxes, "x1") or _is_flat(boxes) else list(boxes)
        array = np.array([_xyxy(b) for b in items], dtype=np.float64).reshape(-1, 4)
    if array.shape[1] != 4:
        raise ValueError(f"boxes must have shape (n, 4), got {array.shape}")
    return array if np.issubdtype(array.dtype, np.floating) else array.astype(np.float64)


def _is_flat(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 4 and all(np.isscalar(v) for v in value)


def _areas(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_intersection_batch(a: Any, b: Any) -> np.ndarray:
    """(n, m) areas of the intersections of boxes `a` (n, 4) and `b` (m, 4)."""
    a, b = as_xyxy(a), as_xyxy(b)
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0.0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0.0, None)
    return ix * iy


def box_iou_batch(a: Any, b: Any) -> np.ndarray:
    """(n, m) intersection over union of boxes `a` (n, 4) and `b` (m, 4); 0 where the union is empty."""
    a, b = as_xyxy(a), as_xyxy(b)
    inter = box_intersection_batch(a, b)
    union = _areas(a)[:, None] + _areas(b)[None, :] - inter
    return inter / np.maximum(union, EPS)


def line_overlap_batch(a: Any, b: Any) -> np.ndarray:
    """(n, m) "same line" overlap: the larger of IoU and intersection over the smaller box.

    Two reads of one text line at different zooms rarely share a box, but the smaller read lies
    (almost) inside the larger one: intersection over the smaller box catches that, IoU the rest.
    """
    a, b = as_xyxy(a), as_xyxy(b)
    inter = box_intersection_batch(a, b)
    smaller = np.minimum(_areas(a)[:, None], _areas(b)[None, :])
    return np.maximum(box_iou_batch(a, b), inter / np.maximum(smaller, EPS))


def nms(boxes: Any, scores: Any, iou_threshold: float, limit: int | None = None) -> list[int]:
    """Greedy non-maximum suppression: indices kept, best score first (ties: lower index first).

    A box is dropped when its IoU with a kept box is above `iou_threshold`; at most `limit` kept.
    """
    boxes, scores = as_xyxy(boxes), np.asarray(scores)
    if len(boxes) != len(scores):
        raise ValueError(f"nms: {len(boxes)} boxes but {len(scores)} scores")
    order = np.argsort(-scores, kind="stable")
    kept: list[int] = []
    while order.size and (limit is None or len(kept) < limit):
        best, order = int(order[0]), order[1:]
        kept.append(best)
        if order.size:
            order = order[box_iou_batch(boxes[best : best + 1], boxes[order])[0] <= iou_threshold]
    return kept


def boxes_intersect(a: Any, b: Any) -> bool:
    """True when the two boxes share interior area (touching edges do not count)."""
    ax1, ay1, ax2, ay2 = _xyxy(a)
    bx1, by1, bx2, by2 = _xyxy(b)
    return ax1 < bx2 and bx1 < ax2 and ay1 < by2 and by1 < ay2


def is_leaf(box: Any, min_size: float) -> bool:
    """V*'s leaf rule (as the official code): the shorter side is at or below `min_size`."""
    x1, y1, x2, y2 = _xyxy(box)
    return min(x2 - x1, y2 - y1) <= min_size


def split_box(box: Any, rule: SplitRule) -> list[tuple[int, int, int, int]]:
    """SEAL / V*'s split of a patch, row-major, as integer xyxy tuples.

    height / width >= rule.tall_ratio: 1 column x rule.split_parts rows; <= rule.wide_ratio:
    split_parts columns x 1 row; otherwise 2 x 2. The last row/column absorbs the integer
    remainder. [] when the parts would be under rule.min_split_px on a split axis (or the box is empty).
    """
    x1, y1, x2, y2 = (int(round(v)) for v in _xyxy(box))
    width, height = x2 - x1, y2 - y1
    if width <= 0 or height <= 0:
        return []
    ratio = height / width
    n = rule.split_parts
    if ratio >= rule.tall_ratio:
        cols, rows = 1, n
    elif ratio <= rule.wide_ratio:
        cols, rows = n, 1
    else:
        cols, rows = 2, 2
    if (cols > 1 and width // cols < rule.min_split_px) or (rows > 1 and height // rows < rule.min_split_px):
        return []
    xs = _cuts(x1, x2, cols)
    ys = _cuts(y1, y2, rows)
    return [(xs[i], ys[j], xs[i + 1], ys[j + 1]) for j in range(rows) for i in range(cols)]


def _cuts(start: int, end: int, parts: int) -> Sequence[int]:
    step = (end - start) // parts
    return [start + step * i for i in range(parts)] + [end]
