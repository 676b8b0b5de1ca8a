"""Read-all strategy of the V* search (text): read every line, looking closer only where needed.

The text cue's map is phrase-agnostic, so the search keeps expanding patches while the map shows
text not yet read legibly, and returns every line read (deduplicated, `dedupe_lines`).

* A line is legible when read at >= read_legible_confidence, at least read_min_text_px tall at
  the detector's input, and not cut by the patch border (`_cut`).
* The unread map (the heatmap with every legible line blanked out) ranks the children.
* A patch seen below read_resolved_scale proves nothing about small text: every child is looked
  at, padded by read_child_overlap. In a resolved patch a child is expanded only where its unread
  text covers >= read_min_blob_px detector-input px, and looked at only around that text (`_focus`).
* A queued child is dropped (`skipped_read`) when its text was read legibly meanwhile or an
  earlier look saw it as closely.
* The root is a *plain look* where the cue offers one (`TextCue(plain=True)`: RapidOCR's own
  whole-image pass on a photo it sees at native scale or larger), and every line it reads is kept
  (`dedupe_lines(keep=)`: a closer look's different read of the same line is kept beside it, not
  instead), so the search never reads less than one plain pass of the same OCR.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image

from lookcloser.core.geometry import box_intersection_batch, boxes_intersect, is_leaf, line_overlap_batch
from lookcloser.tools.vstar.config import SearchConfig
from lookcloser.tools.vstar.cue import CueModel
from lookcloser.tools.vstar.search import (Expansion, Look, Node, Outcome, SearchResult, StopReason, rect_mass, search,
                                           split_patch)
from lookcloser.tools.vstar.text_match import reading
from lookcloser.core.types import Box, Detection

__all__ = ["ReadAll", "dedupe_lines", "read_all"]

#: How many split levels a closer look may go down inside one visited patch.
_MAX_DEPTH = 8


@dataclass
class _Maps:
    """A resolved patch's maps at the cue's resolution: unread text (0/1) and all text (read or not)."""

    patch: Box
    evidence: np.ndarray
    text: np.ndarray
    scale: float
    px_area: float  # detector-input px per map cell


def read_all(image: Image.Image, cue: CueModel, config: SearchConfig | None = None, phrase: str = "text") -> SearchResult:
    """Read every line of text in `image` with the text `cue` (the V* search with this strategy)."""
    config = config or SearchConfig()
    return search(image, phrase, cue, config, strategy=ReadAll(cue, config, image.size))


class ReadAll:
    """The read-all policy: keeps every line read, the legible ones, and the boxes looked at."""

    mode = "read_all"

    def __init__(self, cue: CueModel, config: SearchConfig, image_size: tuple[int, int],
                 after_root: Callable[[Look, Expansion], Expansion | None] | None = None) -> None:
        self.cue = cue
        self.after_root = after_root  # the text cost model (text_plan): may replace the root's children
        self.config = config
        self.width, self.height = image_size
        self.min_size = config.min_patch_size(*image_size)
        self.accept_confidence = cue.calibration.accept_confidence
        self.lines: list[tuple[Detection, bool]] = []  # (line read, cut by the patch border)
        self.plain: set[int] = set()  # indices into `lines` read by a plain look (always kept)
        self.look_of: list[int] = []  # the look (visit number) each line of `lines` came from
        self.legible: list[Detection] = []  # lines read legibly so far (original px)
        self.looked: list[tuple[Box, float]] = []  # boxes looked at and the cue's scale there
        self.skipped = 0
        self.stop_reason: StopReason | None = None

    def skip(self, node: Node) -> bool:
        """Read legibly elsewhere since it was queued, or already looked at as closely."""
        if node.parent is None:
            return False
        if _still_unread(node, self.legible, self.config) and not _seen_as_close(
                node.box, self.looked, self.cue, self.config):
            return False
        self.skipped += 1
        return True

    def cue_hints(self, node: Node) -> dict:
        """Lines read legibly inside the patch (patch pixels) for a cue that can reuse reads
        (`reuses_reads`): a line seen again in a closer look is not recognised twice."""
        if node.parent is None:
            return {"plain": True} if hasattr(self.cue, "plain_fits") else {}
        if not getattr(self.cue, "reuses_reads", False):
            return {}
        box = node.box
        known = [Detection(box=d.box.shift(-box.x1, -box.y1), score=d.score, label=d.label, text=d.text)
                 for d in self.legible if boxes_intersect(d.box, box)]
        return {"known": known} if known else {}

    def visit(self, look: Look) -> Expansion | None:
        step, patch = look.step, look.node.box
        step.context = "not_used_in_read_all"
        scale = float(look.output.extra.get("scale", 1.0))
        plain = bool(look.output.extra.get("plain", False))
        self.looked.append((patch, scale))
        visit = len(self.looked)
        for det in step.detections:
            cut = _cut(det.box, patch, self.width, self.height)
            if det.text and det.score >= self.accept_confidence:
                if plain and not cut:
                    self.plain.add(len(self.lines))
                self.lines.append((det, cut))
                self.look_of.append(visit)
            if not cut and _legible(det, scale, self.config):
                self.legible.append(det)
        if step.leaf:
            return None
        expansion = self._expansion(look.heatmap, scale, patch, look.node.core)
        if look.node.parent is None and self.after_root is not None:
            return self.after_root(look, expansion)
        return expansion

    def finish(self, stop_reason: StopReason) -> Outcome:
        lines = dedupe_lines([d for d, _ in self.lines], self.config.read_dedupe_overlap,
                             cut=[c for _, c in self.lines], keep=[i in self.plain for i in range(len(self.lines))],
                             looks=self.look_of)
        return Outcome(found=bool(lines), best=lines[0] if lines else None, stop_reason=stop_reason, lines=lines,
                       skipped_read=self.skipped)

    # ------------------------------------------------------------------ children
    def _expansion(self, heatmap: np.ndarray, scale: float, patch: Box, core: Box) -> Expansion:
        """The unread map (the guide for priorities) and the children to look at next."""
        config = self.config
        unread, text = _unread_maps(heatmap, patch, self.legible, config.read_text_threshold)
        evidence = (unread > config.read_text_threshold).astype(np.float64)
        if scale < config.read_resolved_scale:
            # The detector saw this patch too small: small text leaves no trace in its map, so the
            # absence of evidence proves nothing. Look at every child (the map still orders them).
            pad = config.read_child_overlap
            return Expansion(unread, [(child, _pad(child, pad, self.width, self.height), 1)
                                      for child in split_patch(core, config)])
        h, w = heatmap.shape
        sx, sy = w / patch.width, h / patch.height
        maps = _Maps(patch, evidence, text, scale, px_area=(scale / sx) * (scale / sy))
        queued: list[tuple[Box, Box, int]] = []
        if config.read_blob_views:
            for view in self._blob_views(maps):
                if self._gain(view, maps) >= config.read_focus_min_gain:
                    queued.append((view, view, 1))
                elif not is_leaf(view, self.min_size):
                    self._closer_looks(view, 1, maps, queued)
        else:
            self._closer_looks(core, 1, maps, queued)
        return Expansion(unread, queued, state=maps)  # its children are re-checked against `maps` (skip)

    def _blob_views(self, maps: _Maps) -> list[Box]:
        """One view per group of text blobs holding unread text: each blob of the text map (read or
        not: a line half read is taken whole) with >= read_min_blob_px of unread evidence, its box
        grown by read_focus_margin; views that overlap are merged into one."""
        import cv2

        config = self.config
        count, labels, stats, _ = cv2.connectedComponentsWithStats(maps.text.astype(np.uint8), connectivity=8)
        unread = np.bincount(labels[maps.evidence > 0], minlength=count)
        views = []
        for label in range(1, count):
            if unread[label] * maps.px_area < config.read_min_blob_px:
                continue
            x, y, bw, bh = (int(v) for v in stats[label, :4])
            views.append(_cells_to_box((x, y, x + bw, y + bh), maps.patch, maps.text.shape, config.read_focus_margin,
                                       self.width, self.height))
        return _merge_overlapping(views)

    def _closer_looks(self, box: Box, depth: int, maps: _Maps, queued: list[tuple[Box, Box, int]]) -> None:
        """Queue the children of `box` that hold unread text, each as (core, view, depth). A view
        the cue would not see any closer than this patch (gain < read_focus_min_gain) shows nothing
        new: that child's own children are tried in its place, down to the leaf size."""
        config = self.config
        for child in split_patch(box, config):
            if rect_mass(maps.evidence, child, maps.patch) * maps.px_area < config.read_min_blob_px:
                continue
            if config.read_focus:
                view = _focus(maps.evidence, maps.text, maps.patch, child, config.read_focus_margin, self.width,
                              self.height)
            else:
                view = _pad(child, config.read_child_overlap, self.width, self.height)
            if self._gain(view, maps) >= config.read_focus_min_gain:
                queued.append((child, view, depth))
            elif not is_leaf(child, self.min_size) and depth < _MAX_DEPTH:
                self._closer_looks(child, depth + 1, maps, queued)  # no closer look here: one level down
            # else: a leaf that would show the same pixels at the same scale again: nothing to gain

    def _gain(self, view: Box, maps: _Maps) -> float:
        """How much closer the cue would see `view` than it saw the patch."""
        input_scale = getattr(self.cue, "input_scale", None)
        if input_scale is not None:
            return float(input_scale(int(view.width), int(view.height))) / max(maps.scale, 1e-9)
        return max(maps.patch.width, maps.patch.height) / max(view.width, view.height, 1.0)


# --- maps -------------------------------------------------------------------------------------------


def _cells(box: Box, region: Box, shape: tuple[int, ...]) -> tuple[slice, slice] | None:
    """The map cells (rows, cols) a box covers, for a map of `shape` spanning `region`; None if outside."""
    h, w = shape
    sx, sy = w / region.width, h / region.height
    bx1, by1 = int(np.floor((box.x1 - region.x1) * sx)), int(np.floor((box.y1 - region.y1) * sy))
    bx2, by2 = int(np.ceil((box.x2 - region.x1) * sx)), int(np.ceil((box.y2 - region.y1) * sy))
    if bx2 > 0 and by2 > 0 and bx1 < w and by1 < h:
        return slice(max(by1, 0), by2), slice(max(bx1, 0), bx2)
    return None


def _unread_maps(heatmap: np.ndarray, patch: Box, legible: list[Detection],
                 threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(unread, text): the heatmap with every legible line blanked out, and all text, read or not
    (map blobs and the larger boxes of lines read): a close look takes whole lines, so a line read
    only in part is looked at whole."""
    unread = heatmap.copy()
    text = heatmap > threshold
    for det in legible:
        cells = _cells(det.box, patch, heatmap.shape)
        if cells is not None:
            unread[cells] = 0.0
            text[cells] = True
    return unread, text


def _still_unread(node: Node, legible: list[Detection], config: SearchConfig) -> bool:
    """Re-check a queued child against lines read legibly since it was queued."""
    parent = node.parent
    maps: _Maps | None = parent.state if parent is not None else None
    if maps is None:
        return True
    blanked = None
    for det in legible:
        if not boxes_intersect(det.box, node.core):
            continue
        if blanked is None:
            blanked = maps.evidence.copy()
        cells = _cells(det.box, maps.patch, blanked.shape)
        if cells is not None:
            blanked[cells] = 0.0
    if blanked is None:
        return True
    return rect_mass(blanked, node.core, maps.patch) * maps.px_area >= config.read_min_blob_px


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
    return _cells_to_box(bbox, patch, evidence.shape, margin, width, height)


def _cells_to_box(cells: tuple[int, int, int, int], patch: Box, shape: tuple[int, ...], margin: float, width: int,
                  height: int) -> Box:
    """Map cells (x1, y1, x2, y2) of a map of `shape` spanning `patch` as an image box (original px),
    grown by `margin` px and clipped to the image."""
    h, w = shape
    sx, sy = w / patch.width, h / patch.height
    x1, y1, x2, y2 = cells
    return Box(x1=np.floor(patch.x1 + x1 / sx - margin), y1=np.floor(patch.y1 + y1 / sy - margin),
               x2=np.ceil(patch.x1 + x2 / sx + margin), y2=np.ceil(patch.y1 + y2 / sy + margin)).clip(width, height)


def _merge_overlapping(boxes: list[Box]) -> list[Box]:
    """Union boxes that overlap until none do (one look at a cluster of lines, not one per line)."""
    boxes = list(boxes)
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                if boxes_intersect(boxes[i], boxes[j]):
                    a, b = boxes[i], boxes.pop(j)
                    boxes[i] = Box(x1=min(a.x1, b.x1), y1=min(a.y1, b.y1), x2=max(a.x2, b.x2), y2=max(a.y2, b.y2))
                    merged = True
                    break
            if merged:
                break
    return boxes


def _nonzero_bbox(mask: np.ndarray, x1: int, y1: int, x2: int, y2: int) -> tuple[int, int, int, int] | None:
    window = mask[y1:y2, x1:x2]
    if window.size == 0:
        return None
    rows = np.flatnonzero(window.any(axis=1))
    cols = np.flatnonzero(window.any(axis=0))
    if rows.size == 0:
        return None
    return (x1 + int(cols[0]), y1 + int(rows[0]), x1 + int(cols[-1]) + 1, y1 + int(rows[-1]) + 1)


# --- lines ------------------------------------------------------------------------------------------


def _legible(det: Detection, scale: float, config: SearchConfig) -> bool:
    """Read legibly: confident enough, and tall enough at the detector's input to trust."""
    return bool(det.text) and det.score >= config.read_legible_confidence and det.box.height * scale >= config.read_min_text_px


def _pad(box: Box, fraction: float, width: int, height: int) -> Box:
    if fraction <= 0:
        return box
    pad_x, pad_y = box.width * fraction, box.height * fraction
    return Box(x1=np.floor(box.x1 - pad_x), y1=np.floor(box.y1 - pad_y),
               x2=np.ceil(box.x2 + pad_x), y2=np.ceil(box.y2 + pad_y)).clip(width, height)


def _seen_as_close(view: Box, looked: list[tuple[Box, float]], cue: CueModel, config: SearchConfig) -> bool:
    """A view (almost) inside a box already looked at, at a scale the view would not beat by
    read_focus_min_gain, would show the same pixels again (two siblings grown to one blob)."""
    input_scale = getattr(cue, "input_scale", None)
    if input_scale is None or view.area <= 0 or not looked:
        return False
    scale = float(input_scale(int(view.width), int(view.height)))
    inside = box_intersection_batch(view, [box for box, _ in looked])[0]
    return any(area >= 0.9 * view.area and scale < seen * config.read_focus_min_gain
               for area, (_, seen) in zip(inside, looked))


def _cut(box: Box, patch: Box, width: int, height: int, tolerance: float = 2.0) -> bool:
    """A line touching a border of the patch that is not the image's border was cut by the crop."""
    return ((patch.x1 > 0 and box.x1 - patch.x1 <= tolerance) or (patch.y1 > 0 and box.y1 - patch.y1 <= tolerance)
            or (patch.x2 < width and patch.x2 - box.x2 <= tolerance)
            or (patch.y2 < height and patch.y2 - box.y2 <= tolerance))


def dedupe_lines(lines: list[Detection], overlap: float, cut: list[bool] | None = None,
                 keep: list[bool] | None = None, looks: list[int] | None = None) -> list[Detection]:
    """Keep the best read of each line: boxes whose "same line" overlap (`geometry.line_overlap_batch`)
    is above `overlap` are one line. A whole read beats one cut by a patch border (`cut[i]`), then the
    most confident wins. A `keep[i]` line (a plain look's) is dropped only when a kept read of the same
    line says the same (`text_match.reading`: up to case and spaces): another reading of it stays beside it.
    `looks[i]`: the look (detector pass) line i came from; lines of one look are never one line, since
    the detector already told them apart (a tall line between two others overlaps both: "First /
    Canadian / Place" on one sign). Sorted by (cut, -confidence)."""
    flags = list(cut) if cut is not None else [False] * len(lines)
    kept_flags = list(keep) if keep is not None else [False] * len(lines)
    sources = list(looks) if looks is not None else list(range(len(lines)))
    if not len(flags) == len(kept_flags) == len(sources) == len(lines):
        raise ValueError(f"dedupe_lines: {len(lines)} lines but {len(flags)} cut, {len(kept_flags)} keep and "
                         f"{len(sources)} look flags")
    kept: list[Detection] = []
    kept_looks: list[int] = []
    order = sorted(range(len(lines)), key=lambda i: (flags[i], -lines[i].score, lines[i].box.y1, lines[i].box.x1))
    for i in order:
        line = lines[i]
        same = line_overlap_batch(line.box, [k.box for k in kept])[0] > overlap if kept else np.zeros(0, bool)
        if looks is not None and kept:
            same &= np.asarray(kept_looks) != sources[i]
        if not same.any() or (kept_flags[i] and all(reading(kept[j].text or "") != reading(line.text or "")
                                                    for j in np.flatnonzero(same))):
            kept.append(line)
            kept_looks.append(sources[i])
    return kept
