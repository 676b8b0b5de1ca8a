"""Small text in large photos: whole-image OCR vs exhaustive tiling OCR vs V* read-all search.

Protocol: ../shared/data/text_dev/README.md. Every strategy reads all text in each photo; an
expected string counts as read if some returned text, normalised (casefold, a-z0-9 only),
contains it or is within edit distance max(1, len/10) of it. Each strategy runs in its own
subprocess so its peak memory (ru_maxrss: onnxruntime allocates outside Python, so tracemalloc
would miss it) is its own. "Detector Mpx" is the total number of pixels fed to the text detector
(its input tensors, after each strategy's own resizing): a fairer cost than calls when input sizes
differ.

    .venv/bin/python benchmarks/text_search.py            # all three, prints a markdown table
    .venv/bin/python benchmarks/text_search.py --strategies vstar --verbose
    .venv/bin/python benchmarks/text_search.py --strategies vstar,vstar+tesseract,vstar+paddleocr

The `vstar+READER` strategies compare OCR readers behind the same V* localizer: the search finds the
lines with the text cue, then READER reads each found line region (see docs/tools.md, "OCR
experts"); plain `vstar` is the default reader (RapidOCR, sharing the cue's reads). Reader calls
are added to the recognizer calls (the cue still reads while it searches). `vstar+paddleocr` needs
the `[paddle]` extra and PaddleOCR's models.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "text_dev"
STRATEGIES = {
    "whole": "(a) whole-image OCR (RapidOCR)",
    "tiling": "(b) tiling OCR, 1024 px tiles, 25% overlap",
    "vstar": "(c) V* read-all search, text cue",
    "vstar+tesseract": "(c) V* read-all search, lines read by Tesseract",
    "vstar+paddleocr": "(c) V* read-all search, lines read by PaddleOCR",
}
TILE, OVERLAP = 1024, 0.25


def is_read(expected: str, texts: list[str]) -> bool:
    from lookcloser.tools.vstar.text_match import edit_distance, normalise

    target = normalise(expected)
    limit = max(1, len(target) // 10)
    return any(target in normalise(t) or edit_distance(normalise(t), target) <= limit for t in texts)


def tile_boxes(width: int, height: int, tile: int = TILE, overlap: float = OVERLAP) -> list[tuple[int, int, int, int]]:
    """SAHI-style tiles covering the image; the last row/column is shifted back inside the image."""
    stride = int(tile * (1 - overlap))

    def starts(length: int) -> list[int]:
        if length <= tile:
            return [0]
        positions = list(range(0, length - tile, stride)) + [length - tile]
        return sorted(set(positions))

    return [(x, y, min(x + tile, width), min(y + tile, height)) for y in starts(height) for x in starts(width)]


class CountingEngine:
    """RapidOCR's engine with its detector and recognizer calls counted."""

    def __init__(self) -> None:
        from rapidocr_onnxruntime import RapidOCR

        self.engine = RapidOCR()
        self.detector_calls = 0
        self.detector_pixels = 0
        self.recognizer_calls = 0
        det, rec = self.engine.text_det, self.engine.text_rec
        infer = det.infer

        def counted_infer(tensor):
            self.detector_pixels += int(tensor.shape[-1]) * int(tensor.shape[-2])
            return infer(tensor)

        det.infer = counted_infer

        def counted_det(img):
            self.detector_calls += 1
            return det(img)

        def counted_rec(imgs, *args, **kwargs):
            self.recognizer_calls += len(imgs) if isinstance(imgs, list) else 1
            return rec(imgs, *args, **kwargs)

        self.engine.text_det = counted_det
        self.engine.text_rec = counted_rec

    def read(self, rgb: np.ndarray) -> list[str]:
        result, _ = self.engine(np.ascontiguousarray(rgb[:, :, ::-1]))
        return [text for _box, text, _score in (result or [])]


class CountingReader:
    """An OCR reader whose calls are added to the text cue's recognizer count."""

    def __init__(self, inner, cue) -> None:
        self.inner, self.cue, self.name = inner, cue, inner.name

    def read(self, image):
        self.cue.recognizer_calls += 1
        return self.inner.read(image)


def run_worker(strategy: str, data: Path, verbose: bool, options: dict | None = None) -> dict:
    from PIL import Image

    items = [json.loads(line) for line in (data / "items.jsonl").read_text().splitlines() if line.strip()]
    by_image: dict[str, list[dict]] = {}
    for item in items:
        by_image.setdefault(item["image"], []).append(item)
    if strategy.startswith("vstar"):
        from lookcloser.tools.vstar.localizer import VStarLocalizer
        from lookcloser.tools.vstar.text_cue import TextCue
        from lookcloser.types import Target

        from lookcloser.tools.vstar.config import SearchConfig

        options = dict(options or {})
        cue_fields = {"det_side", "max_upscale", "min_box_px", "native_max_pixels"}
        cue = TextCue(**{k: v for k, v in options.items() if k in cue_fields})
        config = SearchConfig().with_options(**{k: v for k, v in options.items() if k not in cue_fields})
        reader = None
        if strategy == "vstar+tesseract":
            from lookcloser.tools.tesseract import TesseractOCR

            reader = CountingReader(TesseractOCR(), cue)
        elif strategy == "vstar+paddleocr":
            from lookcloser.tools.paddleocr import PaddleOCRTool

            reader = CountingReader(PaddleOCRTool(), cue)
        localizer = VStarLocalizer(text_cue=cue, config=config, ocr=reader)
        counter = cue
    else:
        engine = CountingEngine()
        counter = engine
    hits, per_image = 0, []
    start = time.perf_counter()
    for name, expected in by_image.items():
        image = Image.open(data / name).convert("RGB")
        t0 = time.perf_counter()
        d0, r0, p0 = counter.detector_calls, counter.recognizer_calls, counter.detector_pixels
        if strategy == "whole":
            texts = engine.read(np.asarray(image))
        elif strategy == "tiling":
            rgb = np.asarray(image)
            texts = []
            for x1, y1, x2, y2 in tile_boxes(*image.size):
                texts.extend(engine.read(rgb[y1:y2, x1:x2]))
        else:
            findings = localizer.locate(image, Target(name="text", kind="text"))
            texts = [f.text for f in findings if f.text]
        read = [is_read(item["text"], texts) for item in expected]
        hits += sum(read)
        row = {"image": name, "read": read, "expected": [i["text"] for i in expected],
               "det": counter.detector_calls - d0, "det_mpx": round((counter.detector_pixels - p0) / 1e6, 2),
               "rec": counter.recognizer_calls - r0,
               "seconds": round(time.perf_counter() - t0, 2)}
        per_image.append(row)
        if verbose:
            print(json.dumps(row, ensure_ascii=False), file=sys.stderr, flush=True)
    return {
        "strategy": strategy, "read": hits, "total": len(items),
        "detector_calls": counter.detector_calls, "detector_mpx": round(counter.detector_pixels / 1e6, 1),
        "recognizer_calls": counter.recognizer_calls,
        "seconds": round(time.perf_counter() - start, 1),
        # the larger of this process and its largest child (the PaddleOCR worker, Tesseract runs)
        "peak_rss_mb": round(max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                                 resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024, 0),
        "per_image": per_image,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--strategies", default="whole,tiling,vstar")
    parser.add_argument("--worker", choices=sorted(STRATEGIES), help=argparse.SUPPRESS)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--vstar-option", action="append", default=[], metavar="NAME=VALUE",
                        help="a TextCue or SearchConfig option for the V* run (repeatable), e.g. read_focus=false")
    args = parser.parse_args()
    if not (args.data / "items.jsonl").exists():
        print(f"no benchmark data at {args.data} (expected items.jsonl); pass --data", file=sys.stderr)
        return 2
    options = {}
    for item in args.vstar_option:
        name, sep, value = item.partition("=")
        if not sep:
            print(f"--vstar-option needs NAME=VALUE, got {item!r}", file=sys.stderr)
            return 2
        options[name.strip()] = json.loads(value) if value.strip() not in ("", "None") else None
    if args.worker:
        print(json.dumps(run_worker(args.worker, args.data, args.verbose, options), ensure_ascii=False))
        return 0
    results = []
    for strategy in [s.strip() for s in args.strategies.split(",") if s.strip()]:
        if strategy not in STRATEGIES:
            print(f"unknown strategy '{strategy}'; known: {', '.join(STRATEGIES)}", file=sys.stderr)
            return 2
        command = [sys.executable, __file__, "--worker", strategy, "--data", str(args.data)]
        if args.verbose:
            command.append("--verbose")
        command += [f"--vstar-option={item}" for item in args.vstar_option]
        done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"done: {strategy}", file=sys.stderr, flush=True)
    print("| strategy | read | detector calls | detector Mpx | recognizer calls | seconds | peak memory (RSS) |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {STRATEGIES[r['strategy']]} | {r['read']}/{r['total']} | {r['detector_calls']} | "
              f"{r['detector_mpx']} | {r['recognizer_calls']} | {r['seconds']} | {r['peak_rss_mb']:.0f} MB |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
