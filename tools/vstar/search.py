"""The V* best-first heatmap search (SEAL, arXiv 2312.14135), training-free and cue-agnostic.

One global priority queue holds the whole frontier. Each visited patch is shown to a cue model,
which returns a heatmap over the patch and scored detections. Children get the official
ancestor-weighted priority, so a deep branch is dropped as soon as a shallower patch elsewhere
looks better. Two modes:

* ``find`` (objects): stop at the first detection >= calibration.stop_confidence; when the queue
  runs dry accept the best detection seen if >= calibration.accept_confidence, else not found.
* ``read_all`` (text): the text map is phrase-agnostic, so keep expanding patches while the map
  shows text that has not been read legibly yet, and return every line read (deduplicated).

Everything here is pure apart from tracing spans and usage counters: no model is loaded, the
image is only cropped. Boxes in the result are original-image pixels.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import numpy as np
from PIL import Image

from lookcloser import usage
from lookcloser.tracing.core import trace_run
from lookcloser.types import Box, Detection
from lookcloser.tools.vstar.config import SearchConfig
from lookcloser.tools.vstar.cue import CueModel, CueOutput

SearchMode = Literal["find", "read_all"]
StopReason = Literal["confident", "best_seen", "exhausted", "budget"]
ContextCue = Callable[[Image.Image, str], "np.ndarray | None"]

#: Side of the small uint8 copy of each step's heatmap kept for visualisation.
_THUMB_SIDE = 128


@dataclass
class SearchStep:
    """One visited patch. `box` and `detections` are original-image pixels."""

    order: int
    level: int
    box: Box
    priority: float
    peak: float
    strong: bool
    detections: list[Detection]
    context: str  # "not_needed" | "used" | "skipped" | "no_prior" | "not_used_in_read_all"
    leaf: bool
    children: int = 0
    heatmap: np.ndarray | None = field(default=None, repr=False)  # uint8 thumbnail, 255 = node max

    def to_dict(self) -> dict[str, Any]:
        return {
            "order": self.order,
            "level": self.level,
            "box": self.box.to_list(),
            "priority": round(float(self.priority), 6),
            "peak": round(float(self.peak), 4),
            "strong": bool(self.strong),
            "detections": [_det_dict(d) for d in self.detections],
            "context": self.context,
            "leaf": self.leaf,
            "children": self.children,
        }


@dataclass
class SearchResult:
    """What a search did and found. `best` is the find-mode answer; `lines` the read-all lines."""

    phrase: str
    mode: SearchMode
    cue: str
    image_size: tuple[int, int]
    min_patch_size: int
    best: Detection | None
    found: bool
    stop_reason: StopReason
    steps: list[SearchStep]
    cue_calls: int
    context_calls: int
    seconds: float
    lines: list[Detection] = field(default_factory=list)
    skipped_read: int = 0  # read-all: queued patches dropped because their text was read meanwhile

    def summary(self) -> dict[str, Any]:
        """JSON-safe record for Finding.search and traces."""
        return {
            "phrase": self.phrase,
            "mode": self.mode,
            "cue": self.cue,
            "image_size": list(self.image_size),
            "min_patch_size": self.min_patch_size,
            "found": self.found,
            "stop_reason": self.stop_reason,
            "best": _det_dict(self.best) if self.best else None,
            "lines": [_det_dict(d) for d in self.lines],
            "cue_calls": self.cue_calls,
            "context_calls": self.context_calls,
            "skipped_read": self.skipped_read,
            "seconds": round(self.seconds, 3),
            "steps": [s.to_dict() for s in self.steps],
        }


def _det_dict(det: Detection) -> dict[str, Any]:
    return {"box": det.box.to_list(), "score": round(float(det.score), 4), "label": det.label}


# --- geometry -------------------------------------------------------------------------------


def split_box(box: Box, config: SearchConfig) -> list[Box]:
    """Split an integer patch box by the official rule; the last row/column takes the remainder.

    Returns [] when the patch cannot be split into parts of at least `min_split_px` on the split axis.
    """
    x1, y1, x2, y2 = (int(round(v)) for v in (box.x1, box.y1, box.x2, box.y2))
    width, height = x2 - x1, y2 - y1
    if width <= 0 or height <= 0:
        return []
    ratio = height / width
    n = config.split_parts
    if ratio >= config.tall_ratio:
        cols, rows = 1, n
    elif ratio <= config.wide_ratio:
        cols, rows = n, 1
    else:
        cols, rows = 2, 2
    if (cols > 1 and width // cols < config.min_split_px) or (rows > 1 and height // rows < config.min_split_px):
        return []
    xs = [x1 + (width // cols) * i for i in range(cols)] + [x2]
    ys = [y1 + (height // rows) * j for j in range(rows)] + [y2]
    return [Box(x1=xs[i], y1=ys[j], x2=xs[i + 1], y2=ys[j + 1]) for j in range(rows) for i in range(cols)]


def is_leaf(box: Box, min_size: int) -> bool:
    """Leaf rule (as the official code): the shorter side is at or below the minimum patch size."""
    return min(box.width, box.height) <= min_size


def _axis_weights(n: int, lo: float, hi: float) -> np.ndarray:
    """Fraction of each unit cell [k, k+1) covered by the interval [lo, hi]."""
    edges = np.arange(n + 1, dtype=np.float64)
    return np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0.0, 1.0)


def rect_mass(heatmap: np.ndarray, box: Box, patch: Box) -> float:
    """Heatmap mass inside `box` (original px) for a heatmap spanning `patch`; exact for fractional cells."""
    h, w = heatmap.shape
    sx, sy = w / patch.width, h / patch.height
    wx = _axis_weights(w, (box.x1 - patch.x1) * sx, (box.x2 - patch.x1) * sx)
    wy = _axis_weights(h, (box.y1 - patch.y1) * sy, (box.y2 - patch.y1) * sy)
    return float(wy @ heatmap @ wx)


def _check_heatmap(output: CueOutput, cue_name: str) -> np.ndarray:
    heatmap = np.asarray(output.heatmap, dtype=np.float64)
    if heatmap.ndim != 2 or heatmap.size == 0:
        raise ValueError(f"cue model '{cue_name}' returned a heatmap of shape {heatmap.shape}; expected (h, w)")
    if not np.all(np.isfinite(heatmap)):
        raise ValueError(f"cue model '{cue_name}' returned a heatmap with NaN or infinite values")
    return np.clip(heatmap, 0.0, None)


def _thumbnail(heatmap: np.ndarray) -> np.ndarray:
    h, w = heatmap.shape
    top = float(heatmap.max())
    scaled = (heatmap / top * 255.0) if top > 0 else np.zeros_like(heatmap)
    step = max(1, int(np.ceil(max(h, w) / _THUMB_SIDE)))
    return np.clip(scaled[::step, ::step], 0, 255).astype(np.uint8)


def _to_original(det: Detection, patch: Box, width: int, height: int) -> Detection:
    return Detection(box=det.box.shift(patch.x1, patch.y1).clip(width, height), score=float(det.score), label=det.label)


# --- the search -------------------------------------------------------------------------------


@dataclass
class _Expanded:
    """An expanded node as an ancestor: its box, level and its normalised guide map."""

    box: Box
    level: int
    guide: np.ndarray
    total: float
    parent: "_Expanded | None"
    evidence: np.ndarray | None = None  # read-all: unread-text evidence map over `box` (0/1)
    px_area: float = 1.0  # read-all: detector-input px per evidence cell
    scale: float = 1.0


@dataclass(order=True)
class _Node:
    sort_key: tuple[float, int]
    core: Box = field(compare=False)  # the node of the official split tree
    box: Box = field(compare=False)  # what is looked at: the core, padded in read-all mode
    level: int = field(compare=False)
    priority: float = field(compare=False)
    parent: _Expanded | None = field(compare=False)


def _normalise(heatmap: np.ndarray) -> np.ndarray:
    """Official V* normalisation: min-max to [0, 1]; a flat map becomes all zeros."""
    low, high = float(heatmap.min()), float(heatmap.max())
    if high <= low:
        return np.zeros_like(heatmap)
    return (heatmap - low) / (high - low)


def _shrink(heatmap: np.ndarray, side: int = 256) -> np.ndarray:
    """Box-filter a guide map down to at most `side` px a side (masses stay proportional)."""
    h, w = heatmap.shape
    if max(h, w) <= side:
        return heatmap
    ratio = side / max(h, w)
    size = (max(1, round(w * ratio)), max(1, round(h * ratio)))
    return np.asarray(Image.fromarray(heatmap.astype(np.float32), mode="F").resize(size, Image.BOX), dtype=np.float64)


def child_priority(child: Box, ancestor: _Expanded, config: SearchConfig) -> float:
    """Official V* priority: sum over the ancestors (the expanded node included) of
    (ancestor map mass inside the child / the ancestor's total mass) / base ** level(ancestor)."""
    total = 0.0
    node: _Expanded | None = ancestor
    while node is not None:
        if node.total > 0:
            total += rect_mass(node.guide, child, node.box) / node.total / config.level_weight_base ** node.level
        node = node.parent
    return total


def search(
    image: Image.Image,
    phrase: str,
    cue: CueModel,
    config: SearchConfig | None = None,
    *,
    mode: SearchMode = "find",
    context_cue: ContextCue | None = None,
) -> SearchResult:
    """Best-first V* search of `image` for `phrase` with `cue`. See the module docstring."""
    config = config or SearchConfig()
    if mode not in ("find", "read_all"):
        raise ValueError(f"search mode must be 'find' or 'read_all', got {mode!r}")
    if not isinstance(phrase, str) or not phrase.strip():
        raise ValueError(f"search phrase must be a non-empty string, got {phrase!r}")
    width, height = image.size
    if width < 1 or height < 1:
        raise ValueError(f"cannot search an empty image ({width}x{height})")
    calibration = cue.calibration
    min_size = config.min_patch_size(width, height)
    start = time.perf_counter()

    counter = 0
    whole = Box(x1=0, y1=0, x2=width, y2=height)
    queue: list[_Node] = [_Node((0.0, counter), whole, whole, 1, 0.0, None)]
    steps: list[SearchStep] = []
    best: Detection | None = None
    lines: list[tuple[Detection, bool]] = []  # read-all: (line read, cut by the patch border)
    legible: list[Detection] = []  # read-all: lines read legibly so far (original px)
    looked: list[tuple[Box, float]] = []  # read-all: boxes looked at and the cue's scale there
    cue_calls = context_calls = skipped_read = 0
    stop_reason: StopReason | None = None

    while queue:
        if len(steps) >= config.max_steps or time.perf_counter() - start >= config.max_seconds:
            stop_reason = "budget"
            break
        node = heapq.heappop(queue)
        if mode == "read_all" and node.parent is not None and (
                not _still_unread(node, legible, config) or _seen_as_close(node.box, looked, cue, config)):
            skipped_read += 1  # read legibly elsewhere meanwhile, or already looked at as closely
            continue
        patch_box = node.box
        leaf = is_leaf(node.core, min_size)
        with trace_run(
            "vstar.step",
            "tool",
            inputs={"box": patch_box.to_list(), "level": node.level, "priority": round(node.priority, 6),
                    "phrase": phrase, "cue": cue.name, "mode": mode},
        ) as run:
            usage.count("search_steps")
            patch = image.crop(tuple(int(v) for v in (patch_box.x1, patch_box.y1, patch_box.x2, patch_box.y2)))
            usage.count("tool_calls")
            cue_calls += 1
            output = cue(patch, phrase)
            heatmap = _check_heatmap(output, cue.name)
            detections = [_to_original(d, patch_box, width, height) for d in output.detections]
            strong = float(output.peak) > calibration.strong_peak(node.level)
            step = SearchStep(
                order=len(steps) + 1, level=node.level, box=patch_box, priority=node.priority,
                peak=float(output.peak), strong=strong, detections=detections,
                context="not_needed" if (strong or leaf) else "skipped", leaf=leaf, heatmap=_thumbnail(heatmap),
            )
            steps.append(step)
            for det in detections:
                if best is None or det.score > best.score:
                    best = det

            children: list[Box] = []
            guide, evidence = heatmap, None
            if mode == "find":
                if best is not None and best.score >= calibration.stop_confidence:
                    stop_reason = "confident"
                elif not leaf:
                    if not strong:
                        if context_cue is not None:
                            context_calls += 1
                            prior = context_cue(patch, phrase)
                            if prior is not None:
                                guide = _check_heatmap(CueOutput(heatmap=prior, peak=0.0), "context cue")
                                step.context = "used"
                            else:
                                step.context = "no_prior"
                        if step.context == "skipped":
                            run.add_event("context cue skipped", reason="no context cue (no VLM)")
                    children = split_box(node.core, config)
            else:
                step.context = "not_used_in_read_all"
                scale = float(output.extra.get("scale", 1.0))
                looked.append((patch_box, scale))
                for det in detections:
                    cut = _cut(det.box, patch_box, width, height)
                    if det.label and det.score >= calibration.accept_confidence:
                        lines.append((det, cut))
                    if not cut and _legible(det, scale, config):
                        legible.append(det)
                if not leaf:
                    guide, evidence, read_children = _read_all_children(
                        heatmap, scale, patch_box, node.core, legible, config, cue, (width, height), min_size)
                    children = [core for core, _view, _depth in read_children]

            if children:
                guide = _shrink(_normalise(guide))
                expanded = _Expanded(patch_box, node.level, guide, float(guide.sum()), node.parent)
                if evidence is not None:
                    scale = float(output.extra.get("scale", 1.0))
                    expanded.evidence = evidence
                    expanded.scale = scale
                    expanded.px_area = (scale * patch_box.width / evidence.shape[1]) * (scale * patch_box.height / evidence.shape[0])
                if mode == "read_all":
                    queued = read_children
                else:
                    queued = [(child, child, 1) for child in children]
                for child, view, depth in queued:
                    counter += 1
                    priority = child_priority(child, expanded, config)
                    heapq.heappush(queue, _Node((-priority, counter), child, view, node.level + depth, priority, expanded))
            step.children = len(children)
            run.outputs = {"peak": step.peak, "strong": strong, "context": step.context,
                           "detections": [_det_dict(d) for d in detections], "children": len(children)}
        if stop_reason is not None:
            break

    if stop_reason is None:
        stop_reason = "exhausted"
    if mode == "find":
        found = best is not None and best.score >= calibration.accept_confidence
        if found and stop_reason == "exhausted":
            stop_reason = "best_seen"
    else:
        lines = dedupe_lines([d for d, _ in lines], config.read_dedupe_overlap, cut=[c for _, c in lines])
        found = bool(lines)
        best = lines[0] if lines else None
    return SearchResult(
        phrase=phrase, mode=mode, cue=cue.name, image_size=(width, height), min_patch_size=min_size,
        best=best if (found or mode == "find") else None, found=found, stop_reason=stop_reason, steps=steps,
        cue_calls=cue_calls, context_calls=context_calls, seconds=time.perf_counter() - start,
        lines=lines if mode == "read_all" else [],
        skipped_read=skipped_read,
    )


def _legible(det: Detection, scale: float, config: SearchConfig) -> bool:
    """Read legibly: confident enough, and tall enough at the detector's input to trust."""
    return bool(det.label) and det.score >= config.read_legible_confidence and det.box.height * scale >= config.read_min_text_px


def _pad(box: Box, fraction: float, width: int, height: int) -> Box:
    if fraction <= 0:
        return box
    pad_x, pad_y = box.width * fraction, box.height * fraction
    return Box(x1=np.floor(box.x1 - pad_x), y1=np.floor(box.y1 - pad_y),
               x2=np.ceil(box.x2 + pad_x), y2=np.ceil(box.y2 + pad_y)).clip(width, height)


def _read_all_children(
    heatmap: np.ndarray, scale: float, patch: Box, core: Box, legible: list[Detection], config: SearchConfig,
    cue: CueModel, image_size: tuple[int, int], min_size: int,
) -> tuple[np.ndarray, np.ndarray | None, list[tuple[Box, Box, int]]]:
    """The unread-text map (the guide for priorities) and the children to look at next, each as
    (core box of the split tree, box to look at, levels below this node).

    Unread map = the heatmap with every line read legibly so far (here or in any earlier patch)
    blanked out. A patch the detector saw at < read_resolved_scale is not "resolved": text smaller
    than the detector can see leaves no trace there, so every child is looked at whole (padded by
    read_child_overlap). In a resolved patch a child is expanded only when its unread text
    (map > read_text_threshold) covers >= read_min_blob_px detector-input px, and it is looked at
    only around that text (`_focus`). A focused look the cue would not see any closer than this
    patch (input scale gain < read_focus_min_gain) shows nothing new: that child's own children
    are queued in its place, down to the leaf size.
    """
    width, height = image_size
    h, w = heatmap.shape
    unread = heatmap.copy()
    # all text, read or not (map blobs and the larger boxes of lines read): a close look takes
    # whole lines, so a line read only in part is looked at whole
    text = heatmap > config.read_text_threshold
    sx, sy = w / patch.width, h / patch.height
    for det in legible:
        bx1 = int(np.floor((det.box.x1 - patch.x1) * sx))
        by1 = int(np.floor((det.box.y1 - patch.y1) * sy))
        bx2 = int(np.ceil((det.box.x2 - patch.x1) * sx))
        by2 = int(np.ceil((det.box.y2 - patch.y1) * sy))
        if bx2 > 0 and by2 > 0 and bx1 < w and by1 < h:
            unread[max(by1, 0):by2, max(bx1, 0):bx2] = 0.0
            text[max(by1, 0):by2, max(bx1, 0):bx2] = True
    evidence = (unread > config.read_text_threshold).astype(np.float64)
    if scale < config.read_resolved_scale:
        # The detector saw this patch too small: small text leaves no trace in its map, so the
        # absence of evidence proves nothing. Look at every child (the map still orders them).
        return unread, None, [(child, _pad(child, config.read_child_overlap, width, height), 1)
                              for child in split_box(core, config)]
    px_area = (scale / sx) * (scale / sy)  # detector-input px per heatmap cell
    input_scale = getattr(cue, "input_scale", None)

    def gain(view: Box) -> float:
        if input_scale is not None:
            return float(input_scale(int(view.width), int(view.height))) / max(scale, 1e-9)
        return max(patch.width, patch.height) / max(view.width, view.height, 1.0)

    queued: list[tuple[Box, Box, int]] = []

    def visit(box: Box, depth: int) -> None:
        for child in split_box(box, config):
            if rect_mass(evidence, child, patch) * px_area < config.read_min_blob_px:
                continue
            view = _focus(evidence, text, patch, child, config.read_focus_margin, width, height) if config.read_focus \
                else _pad(child, config.read_child_overlap, width, height)
            if gain(view) >= config.read_focus_min_gain:
                queued.append((child, view, depth))
            elif not is_leaf(child, min_size) and depth < 8:
                visit(child, depth + 1)  # no closer look here: go one level down
            # else: a leaf that would show the same pixels at the same scale again: nothing to gain

    visit(core, 1)
    return unread, evidence, queued


def _focus(evidence: np.ndarray, text: np.ndarray, patch: Box, child: Box, margin: float, width: int,
           height: int) -> Box:
    """The box to look at for `child`: its unread text, grown over the text map (read or not) to
    whole blobs -- a line cut by the split, or half read, is taken whole -- but at most a quarter
    of the child's size beyond it, plus `margin` original px of context, clipped to the image."""
    h, w = evidence.shape
    sx, sy = w / patch.width, h / patch.height

    def cells(box: Box) -> tuple[int, int, int, int]:
        return (max(0, int(np.floor((box.x1 - patch.x1) * sx))), max(0, int(np.floor((box.y1 - patch.y1) * sy))),
                min(w, int(np.ceil((box.x2 - patch.x1) * sx))), min(h, int(np.ceil((box.y2 - patch.y1) * sy))))

    bbox = _nonzero_bbox(evidence, *cells(child))
    if bbox is None:
        return child
    lx1, ly1, lx2, ly2 = cells(_pad(child, 0.25, width, height))
    # grow by half a line height per round: joins words and line parts the DB map keeps apart
    step = max(4, (bbox[3] - bbox[1]) // 2)
    for _ in range(max(h, w) // step + 1):
        x1, y1, x2, y2 = bbox
        grown = _nonzero_bbox(text, max(lx1, x1 - step), max(ly1, y1 - step), min(lx2, x2 + step), min(ly2, y2 + step))
        if grown is None:
            break
        grown = (min(grown[0], x1), min(grown[1], y1), max(grown[2], x2), max(grown[3], y2))
        if grown == bbox:
            break
        bbox = grown
    x1, y1, x2, y2 = bbox
    return Box(x1=np.floor(patch.x1 + x1 / sx - margin), y1=np.floor(patch.y1 + y1 / sy - margin),
               x2=np.ceil(patch.x1 + x2 / sx + margin), y2=np.ceil(patch.y1 + y2 / sy + margin)).clip(width, height)


def _nonzero_bbox(mask: np.ndarray, x1: int, y1: int, x2: int, y2: int) -> tuple[int, int, int, int] | None:
    window = mask[y1:y2, x1:x2]
    if window.size == 0:
        return None
    rows = np.flatnonzero(window.any(axis=1))
    cols = np.flatnonzero(window.any(axis=0))
    if rows.size == 0:
        return None
    return (x1 + int(cols[0]), y1 + int(rows[0]), x1 + int(cols[-1]) + 1, y1 + int(rows[-1]) + 1)


def _seen_as_close(view: Box, looked: list[tuple[Box, float]], cue: CueModel, config: SearchConfig) -> bool:
    """A view (almost) inside a box already looked at, at a scale the view would not beat by
    read_focus_min_gain, would show the same pixels again (two siblings grown to one blob)."""
    input_scale = getattr(cue, "input_scale", None)
    if input_scale is None or view.area <= 0:
        return False
    scale = float(input_scale(int(view.width), int(view.height)))
    for box, seen_scale in looked:
        ix = max(0.0, min(view.x2, box.x2) - max(view.x1, box.x1))
        iy = max(0.0, min(view.y2, box.y2) - max(view.y1, box.y1))
        if ix * iy >= 0.9 * view.area and scale < seen_scale * config.read_focus_min_gain:
            return True
    return False


def _cut(box: Box, patch: Box, width: int, height: int, tolerance: float = 2.0) -> bool:
    """A line touching a border of the patch that is not the image's border was cut by the crop."""
    return ((patch.x1 > 0 and box.x1 - patch.x1 <= tolerance) or (patch.y1 > 0 and box.y1 - patch.y1 <= tolerance)
            or (patch.x2 < width and patch.x2 - box.x2 <= tolerance)
            or (patch.y2 < height and patch.y2 - box.y2 <= tolerance))


def _still_unread(node: _Node, legible: list[Detection], config: SearchConfig) -> bool:
    """Re-check a queued read-all child against lines read legibly since it was queued."""
    parent = node.parent
    if parent is None or parent.evidence is None:
        return True
    evidence = parent.evidence
    h, w = evidence.shape
    sx, sy = w / parent.box.width, h / parent.box.height
    blanked = None
    for det in legible:
        if not _touches(det.box, node.core):
            continue
        if blanked is None:
            blanked = evidence.copy()
        bx1, by1 = int(np.floor((det.box.x1 - parent.box.x1) * sx)), int(np.floor((det.box.y1 - parent.box.y1) * sy))
        bx2, by2 = int(np.ceil((det.box.x2 - parent.box.x1) * sx)), int(np.ceil((det.box.y2 - parent.box.y1) * sy))
        if bx2 > 0 and by2 > 0 and bx1 < w and by1 < h:
            blanked[max(by1, 0):by2, max(bx1, 0):bx2] = 0.0
    if blanked is None:
        return True
    return rect_mass(blanked, node.core, parent.box) * parent.px_area >= config.read_min_blob_px


def _touches(a: Box, b: Box) -> bool:
    return a.x1 < b.x2 and b.x1 < a.x2 and a.y1 < b.y2 and b.y1 < a.y2


def dedupe_lines(lines: list[Detection], overlap: float, cut: list[bool] | None = None) -> list[Detection]:
    """Keep the best read of each line: boxes overlapping by more than `overlap` (IoU, or
    intersection over the smaller box) are the same line. A whole read beats one cut by a patch
    border (`cut[i]`), then the most confident wins. Sorted by (cut, -confidence)."""
    flags = list(cut) if cut is not None else [False] * len(lines)
    if len(flags) != len(lines):
        raise ValueError(f"dedupe_lines: {len(lines)} lines but {len(flags)} cut flags")
    kept: list[Detection] = []
    order = sorted(range(len(lines)), key=lambda i: (flags[i], -lines[i].score, lines[i].box.y1, lines[i].box.x1))
    for i in order:
        line = lines[i]
        if all(_overlap(line.box, other.box) <= overlap for other in kept):
            kept.append(line)
    return kept


def _overlap(a: Box, b: Box) -> float:
    ix = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
    iy = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = ix * iy
    smaller = min(a.area, b.area)
    return max(a.iou(b), inter / smaller if smaller > 0 else 0.0)
