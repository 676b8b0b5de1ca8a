"""Can a cheap look rule out small text? The floor under the V* read-all search's time.

The PP-OCRv4 detector (the numbers in docs/vstar.md were measured with it; the text cue now runs
PP-OCRv6 small) needs a native-scale look to see 10-35 px text, and that one look over the whole photo already costs ~0.53x of tiling OCR's detector pixels. The search can only go lower
if something cheaper tells it where small text can NOT be. This script measures candidate cues
on every labelled string of both splits of benchmarks/text_search.py:

* `map@S`: the detector's own probability map on the photo scaled by S (cost S^2 of a native
  look); a string is seen if the map passes 0.3 (the search's text threshold) inside its box.
* `logits@S`: the same network's pre-sigmoid output at scale S, thresholded at the lowest value
  any labelled string reaches (an oracle threshold, chosen on these very strings: recall is 100 %
  by construction and the area is a lower bound on what such a cue must keep).
* `contrast`: the 95th percentile of the 3x3 morphological gradient per 32-px block (no network),
  thresholded the same oracle way.

"area to look at" is the share of the photo within 32 px of a flagged pixel / block: what a
native look would still have to cover. For a cue to take the search below 0.4x of tiling's time
at equal recall, that share must be well under ~0.6.

    .venv/bin/python benchmarks/small_text_cues.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from text_search import DATA_ROOT, SPLITS, load_items  # noqa: E402

BLOCK = 32
MARGIN_PX = 32
MAP_THRESHOLD = 0.3  # the search's read_text_threshold


def logits_model(threads: int):
    """The detector with its last Sigmoid's input as the output (an edited copy of the wheel's ONNX)."""
    import onnx

    from lookcloser.tools.vstar.ocr_runtime import load_model
    from lookcloser.tools.vstar.text_cue import detector_path

    model = onnx.load(str(detector_path()))
    sigmoid = next(node for node in reversed(model.graph.node) if node.op_type == "Sigmoid")
    model.graph.output[0].name = sigmoid.input[0]
    path = Path(tempfile.mkdtemp()) / "det_logits.onnx"
    onnx.save(model, str(path))
    return load_model(str(path), "onnxruntime", threads)


def run_scaled(model, rgb: np.ndarray, scale: float) -> np.ndarray:
    """Model output on the photo scaled by `scale` (sides multiples of 32), row bands of <= 1 MP."""
    import cv2

    from lookcloser.tools.vstar.ppocr import detector_normalisation

    mean, std = (np.asarray(v, dtype=np.float32) for v in detector_normalisation())
    height, width = rgb.shape[:2]
    w, h = max(32, round(width * scale / 32) * 32), max(32, round(height * scale / 32) * 32)
    small = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    band = max(32, (1024 * 1024 // w) // 32 * 32)
    rows = []
    for y in range(0, h, band):  # bands overlap by 32 px of context, then trimmed
        y0, y1 = max(0, y - 32), min(h, y + band + 32)
        chunk = ((small[y0:y1, :, ::-1].astype(np.float32) / 255 - mean) / std).transpose(2, 0, 1)[None]  # as TextCue
        rows.append(model(np.ascontiguousarray(chunk))[0, 0][y - y0:y - y0 + min(band, h - y)])
    return np.concatenate(rows, axis=0)


def box_max(values: np.ndarray, box: list[float], size: tuple[int, int]) -> float:
    sx, sy = values.shape[1] / size[0], values.shape[0] / size[1]
    x1, y1, x2, y2 = box
    return float(values[int(y1 * sy):int(np.ceil(y2 * sy)) + 1, int(x1 * sx):int(np.ceil(x2 * sx)) + 1].max())


def area_kept(flags: np.ndarray, size: tuple[int, int]) -> float:
    import cv2

    k = max(1, int(round(MARGIN_PX * flags.shape[1] / size[0])))
    grown = cv2.dilate(flags.astype(np.uint8), np.ones((2 * k + 1, 2 * k + 1), np.uint8))
    return float(grown.mean())


def contrast_blocks(rgb: np.ndarray) -> np.ndarray:
    import cv2

    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    gradient = cv2.morphologyEx(gray, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    hb, wb = gray.shape[0] // BLOCK, gray.shape[1] // BLOCK
    blocks = gradient[:hb * BLOCK, :wb * BLOCK].reshape(hb, BLOCK, wb, BLOCK).transpose(0, 2, 1, 3).reshape(hb, wb, -1)
    return np.percentile(blocks, 95, axis=2).astype(np.float32)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=DATA_ROOT)
    parser.add_argument("--scales", default="0.5,0.7")
    args = parser.parse_args()
    from PIL import Image

    from lookcloser.tools.vstar.ocr_runtime import load_model
    from lookcloser.tools.vstar.text_cue import default_threads, detector_path

    threads = default_threads()
    probability, logits = load_model(str(detector_path()), "onnxruntime", threads), logits_model(threads)
    scales = [float(s) for s in args.scales.split(",")]
    rows: dict[str, list] = {}  # cue -> [(split, seen, per-image value maps...)]
    for split in SPLITS:
        loaded = load_items(split, args.data_root)
        if loaded is None:
            print(f"note: no data for split '{split}'; skipped", file=sys.stderr)
            continue
        items, base = loaded
        by_image: dict[str, list[dict]] = {}
        for item in items:
            by_image.setdefault(item["image"], []).append(item)
        for name, expected in by_image.items():
            rgb = np.asarray(Image.open(base / name).convert("RGB"))
            size = (rgb.shape[1], rgb.shape[0])
            maps = {f"map@{s}": run_scaled(probability, rgb, s) for s in scales}
            maps.update({f"logits@{s}": run_scaled(logits, rgb, s) for s in scales[:1]})
            maps["contrast"] = contrast_blocks(rgb)
            for cue, values in maps.items():
                peaks = [box_max(values, item["box_xyxy"], size) for item in expected]
                if cue.startswith("map@"):  # fixed threshold: the area now, not the map
                    values = area_kept(values >= MAP_THRESHOLD, size)
                rows.setdefault(cue, []).append((split, peaks, values, size))
            print(f"{split}: {name}", file=sys.stderr, flush=True)
    print("| cue | cost (native looks) | threshold | strings seen (tuned) | strings seen (untuned) | area to look at |")
    print("|---|---|---|---|---|---|")
    for cue, images in rows.items():
        if cue.startswith("map@"):
            threshold, note = MAP_THRESHOLD, str(MAP_THRESHOLD)
        else:  # oracle: the lowest value any labelled string reaches
            threshold = min(p for _, peaks, _, _ in images for p in peaks)
            note = f"{threshold:.3g} (oracle, in-sample)"
        seen = {split: [0, 0] for split in SPLITS}
        for split, peaks, _, _ in images:
            seen[split][0] += sum(p >= threshold for p in peaks)
            seen[split][1] += len(peaks)
        area = np.mean([values if isinstance(values, float) else area_kept(values >= threshold, size)
                        for _, _, values, size in images])
        cost = f"{float(cue.split('@')[1]) ** 2:.2f}" if "@" in cue else "~0 (no network)"
        print(f"| `{cue}` | {cost} | {note} | {seen['tuned'][0]}/{seen['tuned'][1]} | "
              f"{seen['untuned'][0]}/{seen['untuned'][1]} | {area:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
