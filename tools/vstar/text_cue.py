"""The `text` cue model: PP-OCRv6 small's text detector as the heatmap, its recognizer as the confidence.

We run the detector ONNX model that ships inside the `rapidocr` 3.x wheel directly (with
onnxruntime, or OpenVINO: `ocr_runtime`), because RapidOCR's engine only returns boxes and we need the
per-pixel text probability map (the heatmap the search follows). Boxes come from RapidOCR's own DB
post-processing on that map. Each box is cut from the patch at FULL resolution (the patch is a
crop of the original image; only the detector sees it resized) and read by RapidOCR's
recognizer; a detection's confidence is the recognizer's confidence. `ppocr` holds the model
files and the engine's pieces (normalisation, post-processing parameters, recognizer).

Preprocessing follows RapidOCR: BGR channel order, (x / 255 - mean) / std, both sides a multiple of
32; mean and std are PaddleOCR's (ImageNet), which the `rapidocr` tool also passes to its engine
(`ppocr.DETECTOR_MEAN`: RapidOCR's default 0.5 / 0.5 makes the v6 detector see text in blank areas). The detector input size is ours (`detector_input_size`): a patch
of at most `native_max_pixels` is seen at native resolution (small ones enlarged to `det_side`, at
most `max_upscale` times), and a larger patch gets a coarse look with its longer side at `det_side`, or at `coarse_scale`
if that is larger (the search's coarse-look mode, docs/vstar.md).

A detector input larger than `max_input_pixels` is run in overlapping chunks whose maps are
stitched (each chunk's border is context only), so a native look at a 4-MP patch costs the
memory of a 1-MP one. With `reuse_reads` (default), a line a strategy already read surely (`known`, read at >=
`REUSE_SCORE`) is not read again.

A *plain look* (`plain=True`, what read-all asks for at its root) is RapidOCR's own whole-image pass on a
patch that pass sees at native scale or larger (`ppocr.plain_fits`): RapidOCR's resize (shorter side up
to 736), one detector call, every box it keeps read (no `min_box_px` filter), in its reading order, with
its crop function: the same lines as one plain `rapidocr` pass, so the search never reads less than it
(issue 29: at the cue's own 2x, a 336x235 sign's seven-segment "10" was boxed 2 px smaller and read "1.0").

One loaded model per file, runtime and thread count per process (cached), shared by every TextCue.
"""

from __future__ import annotations

import math
import os
import threading
from typing import Any

import numpy as np
from PIL import Image

from lookcloser.core.geometry import box_iou_batch
from lookcloser.tools.vstar.cue import CueCalibration, CueOutput
from lookcloser.tools.vstar.ocr_runtime import check_runtime, load_model
from lookcloser.tools.vstar.ppocr import (db_postprocess, detector_normalisation, detector_path, plain_fits,
                                          plain_resize, plain_scale, plain_size,
                                          rapidocr_dir, recognizer, recognizer_path, sorted_boxes)
from lookcloser.core.types import Box, Detection

__all__ = ["REUSE_SCORE", "TEXT_CALIBRATION", "TextCue", "chunk_grid", "crop_quad", "detector_input_size", "detector_path", "max_pool",
           "rapidocr_dir", "recognizer_path"]

#: Context (detector-input px) each stitched chunk sees beyond the part of the map it supplies.
CHUNK_MARGIN = 32
#: A detected box with at least this IoU against a line already read surely reuses that read.
REUSE_IOU = 0.7
#: A known line is reused only when it was read at least this confidently; a less sure read is read again (in
#: another look or tile the second read is sometimes the right one: at 0.85 the tuned split lost one string).
REUSE_SCORE = 0.95

#: Text cue calibration. The map is a probability: a "strong" map has a pixel above 0.5 at any
#: level. A line read at >= 0.9 ends a find-one search; >= 0.5 (RapidOCR's own text_score) is kept.
TEXT_CALIBRATION = CueCalibration(
    stop_confidence=0.9,
    accept_confidence=0.5,
    strong_peak_base=0.5,
    strong_peak_decay=1.0,
    strong_peak_floor=0.5,
)


def default_threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def detector_model(threads: int, quantized: bool = False, runtime: str = "onnxruntime"):
    """The PP-OCRv6 small detector (cached per process by `ocr_runtime.load_model`); `quantized` is
    the int8 model built from the wheel's own ONNX file (`det_int8.quantized_detector`)."""
    if quantized:
        from lookcloser.tools.vstar.det_int8 import quantized_detector

        path = quantized_detector(detector_path())
    else:
        path = detector_path()
    return load_model(str(path), runtime, threads)


def detector_input_size(width: int, height: int, det_side: int, max_upscale: float,
                        native_max_pixels: float = 0, coarse_scale: float = 0) -> tuple[int, int]:
    """(w, h) fed to the detector, sides multiples of 32.

    A patch of at most `native_max_pixels` is seen at native resolution or larger: scale
    max(1, min(det_side / longer side, max_upscale)), sides rounded UP so no pixel is lost.
    A larger patch (or any patch when native_max_pixels is 0) is a coarse look: longer side
    scaled to det_side (at most max_upscale up), but never below `coarse_scale` (the lowest scale
    at which the detector's map still shows small text), sides rounded to the nearest multiple of 32.
    """
    width, height = max(int(width), 1), max(int(height), 1)

    def sides(ratio: float, rounding: Any) -> tuple[int, int]:
        return max(32, int(rounding(width * ratio / 32)) * 32), max(32, int(rounding(height * ratio / 32)) * 32)

    if native_max_pixels and width * height <= native_max_pixels:
        return sides(max(1.0, min(det_side / max(width, height), max_upscale)), math.ceil)
    ratio = min(det_side / max(width, height), max_upscale)
    if ratio < coarse_scale:  # rounded up: the look is at least coarse_scale
        return sides(coarse_scale, math.ceil)
    return sides(ratio, round)


def chunk_grid(width: int, height: int, max_pixels: float, margin: int = CHUNK_MARGIN
               ) -> list[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]:
    """Split a detector input of width x height into (chunk, core) boxes (x1, y1, x2, y2): the cores
    tile the input, each chunk is its core plus `margin` px of context inside the input and holds at
    most `max_pixels`. The grid with the fewest total pixels wins (fewest chunks on ties)."""
    if width * height <= max_pixels:
        return [((0, 0, width, height), (0, 0, width, height))]
    best = None
    for nx in range(1, 33):
        for ny in range(1, 33):
            cw, ch = math.ceil(width / nx / 32) * 32, math.ceil(height / ny / 32) * 32
            chunk_w = min(width, cw + margin * (2 if nx > 2 else 1 if nx == 2 else 0))
            chunk_h = min(height, ch + margin * (2 if ny > 2 else 1 if ny == 2 else 0))
            if chunk_w * chunk_h > max_pixels:
                continue
            cost = (nx * ny * chunk_w * chunk_h, nx * ny)
            if best is None or cost < best[0]:
                best = (cost, cw, ch)
    if best is None:
        raise ValueError(f"max_input_pixels={max_pixels} is too small for {margin}-px chunk margins")
    _, cw, ch = best
    grid = []
    for y in range(0, height, ch):
        for x in range(0, width, cw):
            core = (x, y, min(x + cw, width), min(y + ch, height))
            chunk = (max(0, x - margin), max(0, y - margin), min(width, core[2] + margin), min(height, core[3] + margin))
            grid.append((chunk, core))
    return grid


def _order_quad(points: np.ndarray) -> np.ndarray:
    """tl, tr, br, bl (RapidOCR's order_points_clockwise)."""
    xs = points[np.argsort(points[:, 0]), :]
    left, right = xs[:2], xs[2:]
    tl, bl = left[np.argsort(left[:, 1])]
    tr, br = right[np.argsort(right[:, 1])]
    return np.array([tl, tr, br, bl], dtype=np.float32)


def crop_quad(image: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Rectify a text quad (RapidOCR's get_rotate_crop_image): perspective warp, rotate tall crops."""
    import cv2

    width = int(max(np.linalg.norm(quad[0] - quad[1]), np.linalg.norm(quad[2] - quad[3])))
    height = int(max(np.linalg.norm(quad[0] - quad[3]), np.linalg.norm(quad[1] - quad[2])))
    width, height = max(width, 1), max(height, 1)
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(quad.astype(np.float32), target)
    crop = cv2.warpPerspective(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC)
    if crop.shape[0] / crop.shape[1] >= 1.5:
        crop = np.rot90(crop)
    return np.ascontiguousarray(crop)


class TextCue:
    """Cue model for text: heatmap = PP-OCRv6 small's text probability map, detections = lines read
    (the text in `Detection.text`).

    det_side: longer side of the detector input for a coarse look (px), and the size small
        patches are enlarged to. max_upscale: cap on enlarging small patches.
    native_max_pixels: patches up to this many pixels are seen at native resolution (or enlarged);
        larger ones get a coarse look. Default 2048 x 2048: a 2250x1500 photo is one native look
        (4 detector chunks of <= max_input_pixels), because only a native look shows 6-14 px text
        in the map (measured on both splits: docs/vstar.md, "coarse look").
    coarse_scale: a coarse look is at least this scale (detector input px per patch px), rounded
        up; 0 (default) = longer side at det_side. The search's coarse-look mode sets it to 0.7 with
        native_max_pixels = 1 MP and read_resolved_scale = 0.7: PP-OCRv6 small's map at 0.7 shows
        15-16 of the 17 tuned strings (13-35 px), so one 0.7 look can rule a photo's regions out
        (fitted on the tuned split; 0.6 / 0.65 / 0.7 read 13 / 14 / 16 of 17), but not text under
        ~14 px (docs/vstar.md).
    min_box_px: boxes shorter than this at the detector input are not sent to the recognizer
        (they stay in the map as unread text, so a read-all search looks closer).
    max_input_pixels: a larger detector input is run in overlapping chunks of at most this many
        pixels (`chunk_grid`) and the maps stitched: bounds memory (a 4.2-MP input peaked at ~1.7 GB
        RSS; tiling's 1-MP tiles at ~0.7 GB). 0 = never chunk.
    map_max_pixels: the heatmap handed to the search is max-pooled down to at most this many cells
        (boxes come from the full map first): the search keeps several float copies of each map,
        which for a 12-MP native look cost more memory than the detector itself. 0 = never pool.
    reuse_reads: accept `known` lines (read-all and tiling pass the lines they read), so a line read
        at >= REUSE_SCORE and seen again in a closer look or an overlapping tile is not recognised
        twice. On by default: it read as many strings on every split as without it (tuned 16/17,
        untuned 70/120, heldout 38/48) with 13-24% fewer recognizer calls (docs/vstar.md).
    quantized: use the int8 detector built from the wheel's ONNX (`det_int8`), cached on disk.
    runtime: "onnxruntime" (default) or "openvino" (same maps and reads, ~1.5x faster here, ~2x
        the peak memory; `ocr_runtime`).
    Counters `detector_calls` (detector runs, chunks included), `detector_pixels`,
    `recognizer_calls` (text crops read) and `reused_reads` (boxes given a known line's read) are
    kept for benchmarks.
    """

    name = "text"

    def __init__(self, det_side: int = 960, max_upscale: float = 2.0, min_box_px: float = 8.0,
                 native_max_pixels: float = 2048 * 2048, max_input_pixels: float = 1024 * 1024,
                 quantized: bool = False, map_max_pixels: float = 1024 * 1024, threads: int | None = None,
                 runtime: str = "onnxruntime", coarse_scale: float = 0.0, reuse_reads: bool = True,
                 calibration: CueCalibration = TEXT_CALIBRATION) -> None:
        if det_side < 32:
            raise ValueError(f"det_side must be >= 32 px, got {det_side}")
        if max_upscale < 1:
            raise ValueError(f"max_upscale must be >= 1, got {max_upscale}")
        self.det_side = int(det_side)
        self.max_upscale = float(max_upscale)
        self.min_box_px = float(min_box_px)
        if native_max_pixels < 0:
            raise ValueError(f"native_max_pixels must be >= 0, got {native_max_pixels}")
        self.native_max_pixels = float(native_max_pixels)
        if max_input_pixels and max_input_pixels < 256 * 256:
            raise ValueError(f"max_input_pixels must be 0 or >= 65536, got {max_input_pixels}")
        self.max_input_pixels = float(max_input_pixels)
        if not 0 <= coarse_scale <= 1:
            raise ValueError(f"coarse_scale must be within [0, 1], got {coarse_scale}")
        self.coarse_scale = float(coarse_scale)
        self.reuses_reads = bool(reuse_reads)
        self.quantized = bool(quantized)
        self.map_max_pixels = float(map_max_pixels)
        self.threads = int(threads or default_threads())
        self.calibration = calibration
        self.detector_calls = 0
        self.detector_pixels = 0  # total detector input pixels (benchmarks: a fairer cost than calls)
        self.recognizer_calls = 0
        self.reused_reads = 0
        self._lock = threading.Lock()
        self._post = db_postprocess()
        mean, std = detector_normalisation()
        # x * scale + shift == (x / 255 - mean) / std per channel of the BGR input (RapidOCR's DetPreProcess)
        self._scale = np.asarray([1 / (255.0 * s) for s in std], dtype=np.float32)
        self._shift = np.asarray([-m / s for m, s in zip(mean, std)], dtype=np.float32)
        # load both models now: a missing model is a clear error at construction, not mid-search
        self.runtime = check_runtime(runtime)
        self._detector = detector_model(self.threads, self.quantized, self.runtime)
        self._recognizer = recognizer(self.threads, self.runtime)

    def input_size(self, width: int, height: int) -> tuple[int, int]:
        """The detector input (w, h) for a patch of width x height."""
        return detector_input_size(width, height, self.det_side, self.max_upscale, self.native_max_pixels,
                                   self.coarse_scale)

    def input_scale(self, width: int, height: int) -> float:
        """Detector input px per patch px for a patch of width x height (the search asks this
        before queueing a closer look, to skip looks that would not be any closer)."""
        in_w, in_h = self.input_size(width, height)
        return float(np.sqrt((in_w / max(width, 1)) * (in_h / max(height, 1))))

    def probability_map(self, rgb: np.ndarray, plain: bool = False) -> tuple[np.ndarray, tuple[int, int]]:
        """Detector probability map at the detector's input size, and that size (w, h). Takes RGB:
        the BGR order the model wants is made per chunk, not as a copy of the whole patch. `plain`:
        RapidOCR's own resize and one call (the caller checked `plain_fits`)."""
        import cv2

        height, width = rgb.shape[:2]
        if plain:
            resized = plain_resize(rgb)
            size = (resized.shape[1], resized.shape[0])
            grid = [((0, 0, size[0], size[1]), (0, 0, size[0], size[1]))]
        else:
            size = self.input_size(width, height)
            resized = rgb if size == (width, height) else cv2.resize(rgb, size)  # INTER_AREA: 15/17 vs 16/17 tuned
            grid = chunk_grid(size[0], size[1], self.max_input_pixels) if self.max_input_pixels else [
                ((0, 0, size[0], size[1]), (0, 0, size[0], size[1]))]
        prob = np.empty((size[1], size[0]), dtype=np.float32)
        for (x1, y1, x2, y2), (cx1, cy1, cx2, cy2) in grid:
            with self._lock:
                self.detector_calls += 1
                self.detector_pixels += (x2 - x1) * (y2 - y1)
            # normalised per chunk: a float copy of the whole input would cost 12 bytes per pixel
            chunk = np.ascontiguousarray((resized[y1:y2, x1:x2, ::-1] * self._scale + self._shift)
                                         .transpose(2, 0, 1)[None])
            output = self._detector(chunk)[0, 0]
            prob[cy1:cy2, cx1:cx2] = output[cy1 - y1:cy2 - y1, cx1 - x1:cx2 - x1]
        return prob, size

    def read(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        if not crops:
            return []
        with self._lock:
            self.recognizer_calls += len(crops)
        from rapidocr.ch_ppocr_rec import TextRecInput

        output = self._recognizer(TextRecInput(img=crops))
        return [(str(text), float(score)) for text, score in zip(output.txts, output.scores)]

    def look_pixels(self, width: int, height: int, plain: bool = False) -> int:
        """Detector input pixels one look at a width x height patch costs (chunk margins included): the
        unit of the text cost model (`text_plan`)."""
        if plain and plain_fits(width, height):
            w, h = plain_size(width, height)
            return w * h
        w, h = self.input_size(width, height)
        if not self.max_input_pixels:
            return w * h
        return sum((x2 - x1) * (y2 - y1) for (x1, y1, x2, y2), _ in chunk_grid(w, h, self.max_input_pixels))

    def plain_fits(self, width: int, height: int) -> bool:
        """Whether a patch of width x height can get a plain look (RapidOCR's own pass, `ppocr.plain_fits`)."""
        return plain_fits(width, height)

    def __call__(self, patch: Image.Image, phrase: str, known: list[Detection] | None = None,
                 plain: bool = False) -> CueOutput:
        """Map, boxes and reads for one patch. `known`: lines already read (patch pixels); a detected
        box matching one read at >= REUSE_SCORE (IoU >= REUSE_IOU) takes its read instead of a
        recognizer call (with `reuse_reads`; without it `known` is ignored).
        `plain`: a plain look (module docstring) where the patch fits one, else the cue's own look."""
        rgb = np.asarray(patch if patch.mode == "RGB" else patch.convert("RGB"))  # no copy of an RGB patch
        height, width = rgb.shape[:2]
        plain = bool(plain) and plain_fits(width, height)
        prob, (in_w, in_h) = self.probability_map(rgb, plain=plain)
        scale = float(np.sqrt((in_w / width) * (in_h / height)))
        boxes, _scores = self._post(prob[None, None], (height, width))
        if plain:
            return self._plain_output(rgb, prob, sorted_boxes(boxes), known, (in_w, in_h))
        quads, crops = [], []
        for raw in boxes:
            quad = _order_quad(np.asarray(raw, dtype=np.float32))
            quad[:, 0] = np.clip(quad[:, 0], 0, width - 1)
            quad[:, 1] = np.clip(quad[:, 1], 0, height - 1)
            quad_w = np.linalg.norm(quad[0] - quad[1])
            quad_h = np.linalg.norm(quad[0] - quad[3])
            if quad_w <= 3 or quad_h <= 3:  # RapidOCR's filter_tag_det_res
                continue
            if min(quad_w, quad_h) * scale < self.min_box_px:
                continue  # too small to read at this zoom: left in the map as unread text
            quads.append(quad)
            crops.append(np.ascontiguousarray(crop_quad(rgb, quad)[:, :, ::-1]))  # the recognizer wants BGR
        detections = self._read_quads(quads, crops, known, (width, height))
        return self._output(prob, detections, scale, (in_w, in_h), len(boxes))

    def _read_quads(self, quads: list[np.ndarray], crops: list[np.ndarray], known: list[Detection] | None,
                    size: tuple[int, int]) -> list[Detection]:
        """One line per quad (its box clipped to the patch's `size`): a sure known line's read where one
        matches (with `reuse_reads`), else the recognizer's read of its crop (all of those in one call)."""
        boxes = [Box(x1=float(q[:, 0].min()), y1=float(q[:, 1].min()), x2=float(q[:, 0].max()) + 1,
                     y2=float(q[:, 1].max()) + 1).clip(*size) for q in quads]
        reuse = _reuse(boxes, (known or []) if self.reuses_reads else [])
        reads = iter(self.read([crop for crop, prior in zip(crops, reuse) if prior is None]))
        if any(prior is not None for prior in reuse):
            with self._lock:
                self.reused_reads += sum(prior is not None for prior in reuse)
        detections = []
        for box, prior in zip(boxes, reuse):
            text, score = (prior.text or "", prior.score) if prior is not None else next(reads)
            detections.append(Detection(box=box, score=score, text=text.strip() or None))
        return detections

    def _output(self, prob: np.ndarray, detections: list[Detection], scale: float, size: tuple[int, int],
                boxes: int, plain: bool = False) -> CueOutput:
        heatmap = max_pool(prob, self.map_max_pixels)
        extra: dict[str, Any] = {"scale": scale, "detector_input": list(size), "boxes": boxes, "plain": plain}
        return CueOutput(heatmap=heatmap, peak=float(prob.max()) if prob.size else 0.0, detections=detections,
                         extra=extra)

    def _plain_output(self, rgb: np.ndarray, prob: np.ndarray, boxes: Any, known: list[Detection] | None,
                      size: tuple[int, int]) -> CueOutput:
        """The plain look's lines: RapidOCR's crops of every box it keeps, read in its order. Its scale is
        the one RapidOCR intends (shorter side to 736, before rounding to 32), so a photo it sees at 1x
        counts as seen natively."""
        from rapidocr.utils.process_img import get_rotate_crop_image

        height, width = rgb.shape[:2]
        scale = plain_scale(width, height)
        bgr = rgb[:, :, ::-1]
        quads = [np.asarray(raw, dtype=np.float32) for raw in boxes]
        crops = [np.ascontiguousarray(get_rotate_crop_image(bgr, quad.copy())) for quad in quads]
        detections = self._read_quads(quads, crops, known, (width, height))
        return self._output(prob, detections, scale, size, len(quads), plain=True)


def max_pool(prob: np.ndarray, max_cells: float) -> np.ndarray:
    """`prob` max-pooled by the smallest integer factor that leaves at most `max_cells` cells
    (a text pixel stays visible; the search measures areas in detector px through the map's shape)."""
    h, w = prob.shape
    if not max_cells or h * w <= max_cells:
        return prob
    k = int(math.ceil(math.sqrt(h * w / max_cells)))
    while math.ceil(h / k) * math.ceil(w / k) > max_cells:
        k += 1
    padded = np.zeros((math.ceil(h / k) * k, math.ceil(w / k) * k), dtype=prob.dtype)
    padded[:h, :w] = prob
    return padded.reshape(padded.shape[0] // k, k, padded.shape[1] // k, k).max(axis=(1, 3))


def _reuse(boxes: list[Box], known: list[Detection]) -> list[Detection | None]:
    """For each box, the surely read known line it matches (IoU >= REUSE_IOU, the best one), else None."""
    known = [k for k in known if k.text and k.score >= REUSE_SCORE]
    if not boxes or not known:
        return [None] * len(boxes)
    iou = box_iou_batch([b.to_list() for b in boxes], [k.box.to_list() for k in known])
    best = iou.argmax(axis=1)
    return [known[j] if iou[i, j] >= REUSE_IOU else None for i, j in enumerate(best)]
