"""Small text in large photos: whole-image OCR vs exhaustive tiling OCR vs V* read-all search.

Protocol: ../shared/data/text_dev/README.md. Every strategy reads all text in each photo; an
expected string counts as read if some returned text, normalised (casefold, a-z0-9 only),
contains it or is within edit distance max(1, len/10) of it.

Three splits: `tuned` = ../shared/data/text_dev (the read-all constants were fitted on it),
`untuned` = benchmarks/text_holdout.jsonl (other V* Bench photos in ../shared/data, labelled by eye; see
the file's protocol in docs/vstar.md) and `heldout` = benchmarks/text_heldout_small.jsonl (photos of
signs, boards and street scenes from the other folders of ../shared/data, most of them 1024-2250 px,
labelled by eye after the search and its constants were fixed). One run: one worker process per strategy, each loading its
models once; the coordinator hands every photo to every worker in turn (the order rotates per
photo), so timing noise from other jobs on the machine hits all strategies alike. Peak memory is
each worker's own peak RSS (VmHWM; fresh workers per split: onnxruntime allocates outside Python,
so tracemalloc would miss it, and an allocator keeps what earlier photos needed). Seconds are wall time; CPU seconds (the worker's user + system
time, all threads) are printed beside them because they barely move when other jobs share the cores. "Detector Mpx" is the total number of pixels fed to the
text detector (its input tensors, after each strategy's own resizing): a fairer cost than calls
when input sizes differ.

    .venv/bin/python benchmarks/text_search.py            # whole, tiling, vstar on the three splits
    .venv/bin/python benchmarks/text_search.py --strategies tiling,vstar,vstar@read_focus=false --splits untuned
    .venv/bin/python benchmarks/text_search.py --strategies vstar,vstar+tesseract,vstar+paddleocr
    .venv/bin/python benchmarks/text_search.py --limit 4 --splits tuned   # a quick check on 4 photos
    .venv/bin/python benchmarks/text_search.py --strategies whole,tiling,vstar,vstar@mode=search,vstar@mode=tile

The last table (issue 29) is, per split, lookcloser's default (`vstar`: the localizer as `find` runs it,
the text cost model included) against plain tiling and one whole-image pass, the time ratio from this
run, and what the cost model chose for each photo (`vstar@mode=...` forces one way: text_plan.py).

A strategy `vstar@NAME=VALUE@...` is the V* search with TextCue / SearchConfig options (value as
JSON), so variants run side by side. The `vstar+READER` strategies compare OCR readers behind the
same V* localizer: the search finds the lines with the text cue, then READER reads each found
line region (see docs/tools.md, "OCR experts"); plain `vstar` is the default reader (RapidOCR 3.x,
sharing the cue's reads). Reader calls are added to the recognizer calls (the cue still reads
while it searches). `vstar+paddleocr` needs the `[paddle]` extra and PaddleOCR's models.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = ROOT.parent / "shared" / "data"
#: split name -> (items file, folder its image paths are relative to, given the data root)
SPLITS = {
    "tuned": (lambda root: root / "text_dev" / "items.jsonl", lambda root: root / "text_dev"),
    "untuned": (lambda root: ROOT / "benchmarks" / "text_holdout.jsonl", lambda root: root),
    "heldout": (lambda root: ROOT / "benchmarks" / "text_heldout_small.jsonl", lambda root: root),
}
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
    """RapidOCR's engine, set up as the `rapidocr` tool sets it up (bundled PP-OCRv6 small models, the
    text cue's detector normalisation, no angle classifier), with its detector and recognizer calls
    counted. `runtime="openvino"` runs the same ONNX files with OpenVINO instead of onnxruntime: same
    pipeline, same files, to show what the runtime alone changes."""

    def __init__(self, runtime: str = "onnxruntime", models: tuple[str, str] | None = None) -> None:
        from rapidocr import RapidOCR

        from lookcloser.tools.rapidocr import engine_params

        files = {"Det.model_path": models[0], "Rec.model_path": models[1]} if models else {}
        self.engine = RapidOCR(params=engine_params(files))
        det, rec = self.engine._load_det_model(), self.engine._load_rec_model()  # loaded now, then wrapped
        if runtime != "onnxruntime":
            _swap_runtime(det, rec, runtime)
        self.detector_calls = 0
        self.detector_pixels = 0
        self.recognizer_calls = 0
        infer = det.session

        def counted_infer(tensor):
            self.detector_pixels += int(tensor.shape[-1]) * int(tensor.shape[-2])
            return infer(tensor)

        det.session = counted_infer

        def counted_det(img):
            self.detector_calls += 1
            return det(img)

        def counted_rec(rec_input):
            self.recognizer_calls += len(rec_input.img) if isinstance(rec_input.img, list) else 1
            return rec(rec_input)

        self.engine.text_det = counted_det
        self.engine.text_rec = counted_rec

    def read(self, rgb: np.ndarray) -> list[str]:
        result = self.engine(np.ascontiguousarray(rgb[:, :, ::-1]))
        return list(getattr(result, "txts", None) or [])


def _swap_runtime(det, rec, runtime: str) -> None:
    from lookcloser.tools.vstar.ocr_runtime import load_model
    from lookcloser.tools.vstar.text_cue import default_threads, detector_path, recognizer_path

    for part, path in ((det, detector_path()), (rec, recognizer_path())):
        part.session = load_model(str(path), runtime, default_threads())  # called as session(batch) -> output


class CountingReader:
    """An OCR reader whose calls are added to the text cue's recognizer count."""

    def __init__(self, inner, cue) -> None:
        self.inner, self.cue, self.name = inner, cue, inner.name

    def read(self, image):
        self.cue.recognizer_calls += 1
        return self.inner.read(image)


CUE_FIELDS = {"det_side", "max_upscale", "min_box_px", "native_max_pixels", "max_input_pixels", "map_max_pixels",
              "quantized", "runtime", "coarse_scale", "reuse_reads"}
#: How the localizer reads a photo's text (text_options of `find --tool localizer.text_options=...`):
#: mode auto (the cost model, default) | search | tile | tile_marked; tile, tile_overlap.
PLAN_FIELDS = {"mode", "tile", "tile_overlap"}


def parse_strategy(spec: str) -> tuple[str, dict]:
    """'vstar@a=1@b=true@runtime=openvino' -> ('vstar', {'a': 1, 'b': True, 'runtime': 'openvino'}):
    options are JSON values, or plain text where not JSON."""
    name, *items = spec.split("@")
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"strategy option needs NAME=VALUE, got {item!r} in {spec!r}")
        options[key.strip()] = _json_or_text(value)
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy '{name}'; known: {', '.join(STRATEGIES)}")
    if not name.startswith("vstar") and set(options) - {"runtime", "models"}:
        raise ValueError(f"whole and tiling take only the runtime and models options, got {spec!r}")
    if options.get("models", "v6") not in MODEL_GENERATIONS:
        raise ValueError(f"models must be one of {', '.join(MODEL_GENERATIONS)}, got {options['models']!r}")
    return name, options


#: PP-OCR generations the benchmark can run: v6 small ships in the rapidocr 3.x wheel (the default);
#: v4 comes from the rapidocr-onnxruntime 1.4.4 wheel, unpacked by hand (no install: it conflicts
#: with nothing, but the project no longer depends on it):
#:   pip download rapidocr-onnxruntime==1.4.4 --no-deps -d /tmp/v4 && unzip -q -d /tmp/v4 /tmp/v4/*.whl
#:   benchmarks/text_search.py --v4-models /tmp/v4/rapidocr_onnxruntime/models --strategies tiling@models=v4,...
MODEL_GENERATIONS = {"v6": None, "v4": ("ch_PP-OCRv4_det_infer.onnx", "ch_PP-OCRv4_rec_infer.onnx")}
V4_MODELS_ENV = "TEXT_SEARCH_V4_MODELS"  # the --v4-models folder, handed to the workers


def use_models(generation: str) -> tuple[str, str] | None:
    """Point the text cue (and return the paths for RapidOCR's engine) at `generation`'s detector and
    recognizer files; the same pipeline (normalisation, DB post-processing, recogniser code) runs them."""
    files = MODEL_GENERATIONS[generation]
    if files is None:
        return None
    folder = Path(os.environ.get(V4_MODELS_ENV, ""))
    det, rec = (folder / name for name in files)
    if not (det.is_file() and rec.is_file()):
        raise SystemExit(f"models={generation} needs --v4-models FOLDER holding {files[0]} and {files[1]} "
                         "(see MODEL_GENERATIONS in this script)")
    from lookcloser.tools.vstar import ppocr, text_cue

    ppocr.detector_path = text_cue.detector_path = lambda: det
    ppocr.recognizer_path = text_cue.recognizer_path = lambda: rec
    return str(det), str(rec)


def _json_or_text(value: str):
    """A JSON value, or the bare text itself (runtime=openvino), or None for "" / None."""
    if value.strip() in ("", "None"):
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value.strip()


def peak_rss_mb() -> float:
    """This process's peak RSS since the last reset_peak_rss (VmHWM), or since start."""
    try:
        status = Path("/proc/self/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024
    except (OSError, AttributeError):  # not Linux: since start
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> None:
    try:  # Linux >= 4.0: writing 5 resets VmHWM to the current RSS
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


class Worker:
    """One strategy with its models loaded once: read(image) -> (texts, counters)."""

    def __init__(self, spec: str) -> None:
        name, options = parse_strategy(spec)
        self.name = name
        paths = use_models(options.pop("models", "v6"))
        if name.startswith("vstar"):
            from lookcloser.tools.vstar.config import SearchConfig
            from lookcloser.tools.vstar.localizer import VStarLocalizer
            from lookcloser.tools.vstar.text_cue import TextCue

            cue = TextCue(**{k: v for k, v in options.items() if k in CUE_FIELDS})
            config = SearchConfig().with_options(**{k: v for k, v in options.items()
                                                    if k not in CUE_FIELDS | PLAN_FIELDS})
            reader = None
            if name == "vstar+tesseract":
                from lookcloser.tools.tesseract import TesseractOCR

                reader = CountingReader(TesseractOCR(), cue)
            elif name == "vstar+paddleocr":
                from lookcloser.tools.paddleocr import PaddleOCRTool

                reader = CountingReader(PaddleOCRTool(), cue)
            self.localizer = VStarLocalizer(text_cue=cue, config=config, ocr=reader,
                                            text_options={k: v for k, v in options.items() if k in PLAN_FIELDS})
            self.counter = cue
        else:
            self.engine = CountingEngine(models=paths, **options)
            self.counter = self.engine

    def read(self, path: str) -> dict:
        from PIL import Image

        image = Image.open(path).convert("RGB")
        counter = self.counter
        d0, r0, p0 = counter.detector_calls, counter.recognizer_calls, counter.detector_pixels
        t0, c0 = time.perf_counter(), time.process_time()
        if self.name == "whole":
            texts = self.engine.read(np.asarray(image))
        elif self.name == "tiling":
            rgb = np.asarray(image)
            texts = []
            for x1, y1, x2, y2 in tile_boxes(*image.size):
                texts.extend(self.engine.read(rgb[y1:y2, x1:x2]))
        else:
            from lookcloser.core.types import Target

            findings = self.localizer.locate(image, Target(name="text", kind="text"))
            texts = [f.text for f in findings if f.text]
            plan = (findings[0].search or {}).get("plan", {}) if findings else {}
        return {"texts": texts, "seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0,
                "plan": plan.get("mode") if self.name.startswith("vstar") else self.name,
                "det": counter.detector_calls - d0,
                "det_px": counter.detector_pixels - p0, "rec": counter.recognizer_calls - r0}


def serve(spec: str) -> int:
    """Worker loop: one JSON command per stdin line ({"image": path} or {"reset": true}), one JSON reply."""
    worker = Worker(spec)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command.get("reset"):
            reset_peak_rss()
            reply = {"ok": True}
        else:
            reply = worker.read(command["image"])
        reply["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(reply, ensure_ascii=False), flush=True)
    return 0


class Remote:
    """The coordinator's handle on a worker process."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.process = subprocess.Popen([sys.executable, __file__, "--worker", spec], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        self.ask(None)

    def ask(self, command: dict | None) -> dict:
        if command is not None:
            self.process.stdin.write(json.dumps(command) + "\n")
            self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"benchmark worker '{self.spec}' exited (rc={self.process.wait()})")
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def load_items(split: str, root: Path) -> tuple[list[dict], Path] | None:
    items_file, base = SPLITS[split]
    path = items_file(root)
    if not path.exists():
        return None
    items = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return items, base(root)


def run_split(split: str, items: list[dict], base: Path, remotes: list[Remote], verbose: bool) -> list[dict]:
    by_image: dict[str, list[dict]] = {}
    for item in items:
        by_image.setdefault(item["image"], []).append(item)
    totals = {r.spec: {"strategy": r.spec, "split": split, "read": 0, "total": len(items), "lines": 0, "detector_calls": 0,
                       "det_px": 0, "recognizer_calls": 0, "seconds": 0.0, "cpu": 0.0, "peak_rss_mb": 0.0, "per_image": []}
              for r in remotes}
    for remote in remotes:
        remote.ask({"reset": True})
    for k, (name, expected) in enumerate(by_image.items()):
        order = remotes[k % len(remotes):] + remotes[:k % len(remotes)]  # rotate who goes first
        for remote in order:
            reply = remote.ask({"image": str(base / name)})
            read = [is_read(item["text"], reply["texts"]) for item in expected]
            total = totals[remote.spec]
            total["read"] += sum(read)
            total["lines"] += len(reply["texts"])
            total["detector_calls"] += reply["det"]
            total["det_px"] += reply["det_px"]
            total["recognizer_calls"] += reply["rec"]
            total["seconds"] += reply["seconds"]
            total["cpu"] += reply["cpu"]
            total["peak_rss_mb"] = max(total["peak_rss_mb"], reply["peak_rss_mb"])
            total.setdefault("plans", {}).setdefault(str(reply.get("plan")), 0)
            total["plans"][str(reply.get("plan"))] += 1
            row = {"split": split, "strategy": remote.spec, "image": name, "read": read,
                   "expected": [i["text"] for i in expected],
                   "heights": [i["box_xyxy"][3] - i["box_xyxy"][1] for i in expected], "det": reply["det"],
                   "det_mpx": round(reply["det_px"] / 1e6, 2), "rec": reply["rec"],
                   "seconds": round(reply["seconds"], 2), "cpu": round(reply["cpu"], 2), "plan": reply.get("plan")}
            total["per_image"].append(row)
            if verbose:
                print(json.dumps(row, ensure_ascii=False), file=sys.stderr, flush=True)
    return list(totals.values())


def print_table(split: str, results: list[dict]) -> None:
    """One row per strategy; ratios to tiling with the same models and runtime (if it ran)."""
    def same_setup(spec: str) -> tuple:
        options = parse_strategy(spec)[1]
        return options.get("models", "v6"), options.get("runtime", "onnxruntime")

    bases = {same_setup(r["strategy"]): r for r in results if parse_strategy(r["strategy"])[0] == "tiling"}
    photos = len({row["image"] for r in results for row in r["per_image"]}) or 1
    print(f"\n{split} split ({results[0]['total']} strings, {photos} photos)\n")
    print("| strategy | read | lines / photo | detector calls | detector Mpx | recognizer calls | seconds | CPU seconds |"
          " peak RSS |" + (" time / tiling | CPU / tiling | RSS / tiling |" if bases else ""))
    print("|---|---|---|---|---|---|---|---|---|" + ("---|---|---|" if bases else ""))
    for r in results:
        name, options = parse_strategy(r["strategy"])
        label = STRATEGIES[name] + (f" `{'@'.join(r['strategy'].split('@')[1:])}`" if options else "")
        line = (f"| {label} | {r['read']}/{r['total']} | {r['lines'] / photos:.1f} | {r['detector_calls']} | "
                f"{r['det_px'] / 1e6:.1f} | {r['recognizer_calls']} | {r['seconds']:.1f} | {r['cpu']:.1f} | "
                f"{r['peak_rss_mb']:.0f} MB |")
        base = bases.get(same_setup(r["strategy"]))
        if base:
            line += (f" {r['seconds'] / base['seconds']:.2f}x | {r['cpu'] / base['cpu']:.2f}x |"
                     f" {r['peak_rss_mb'] / base['peak_rss_mb']:.2f}x |")
        elif bases:
            line += " - | - | - |"
        print(line)


HEIGHT_BUCKETS = ((0, 10), (10, 14), (14, 20), (20, 30), (30, float("inf")))


def print_by_height(split: str, results: list[dict]) -> None:
    """Strings read per box height (px, full resolution): where each strategy's recall comes from."""
    def bucket(height: float) -> str:
        lo, hi = next(b for b in HEIGHT_BUCKETS if b[0] <= height < b[1])
        return f"{lo}-{hi:g} px" if hi != float("inf") else f">= {lo} px"

    names = [bucket(lo) for lo, _ in HEIGHT_BUCKETS]
    first = results[0]["per_image"]
    totals = {name: sum(bucket(h) == name for row in first for h in row["heights"]) for name in names}
    print(f"\n{split} split, strings read by box height\n")
    print("| strategy | " + " | ".join(f"{n} ({totals[n]})" for n in names) + " |")
    print("|---|" + "---|" * len(names))
    for r in results:
        read = {name: 0 for name in names}
        for row in r["per_image"]:
            for height, ok in zip(row["heights"], row["read"]):
                read[bucket(height)] += ok
        print(f"| `{r['strategy']}` | " + " | ".join(str(read[n]) for n in names) + " |")


def print_goal(results: list[list[dict]]) -> None:
    """Issue 29's table: per split, lookcloser's default against plain tiling and one whole-image pass
    (same models and runtime), the time ratio from this run, and what the cost model chose per photo."""
    print("\nPer split: lookcloser's default (vstar) against plain RapidOCR tiling and one whole-image pass\n")
    print("| split | strings | whole-image: read, s | plain tiling: read, s | lookcloser: read, s | time / tiling |"
          " CPU / tiling | recall >= tiling, time <= 1.0x | cost model chose (photos) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for split in results:
        by = {r["strategy"]: r for r in split}
        tiling, vstar, whole = by.get("tiling"), by.get("vstar"), by.get("whole")
        if tiling is None or vstar is None:
            continue
        cell = (lambda r: f"{r['read']}/{r['total']}, {r['seconds']:.1f}" if r else "-")
        ratio, cpu = vstar["seconds"] / tiling["seconds"], vstar["cpu"] / tiling["cpu"]
        met = "yes" if vstar["read"] >= tiling["read"] and ratio <= 1.0 else "no"
        chose = ", ".join(f"{k} {v}" for k, v in sorted(vstar.get("plans", {}).items()))
        print(f"| {split[0]['split']} | {tiling['total']} | {cell(whole)} | {cell(tiling)} | {cell(vstar)} | {ratio:.2f}x |"
              f" {cpu:.2f}x | {met} | {chose} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=DATA_ROOT, help="the shared data folder")
    parser.add_argument("--splits", default="tuned,untuned,heldout")
    parser.add_argument("--strategies", default="whole,tiling,vstar")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, default=0,
                        help="only the first N photos of each split (a quick check, not the benchmark)")
    parser.add_argument("--v4-models", type=Path, help="folder with the PP-OCRv4 ONNX files (for @models=v4)")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()
    if args.worker:
        return serve(args.worker)
    specs = [s.strip() for s in args.strategies.split(",") if s.strip()]
    if args.v4_models:
        os.environ[V4_MODELS_ENV] = str(args.v4_models.resolve())  # the workers inherit it
    try:
        for spec in specs:
            parse_strategy(spec)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    splits = {}
    for split in [s.strip() for s in args.splits.split(",") if s.strip()]:
        if split not in SPLITS:
            print(f"unknown split '{split}'; known: {', '.join(SPLITS)}", file=sys.stderr)
            return 2
        loaded = load_items(split, args.data_root)
        if loaded is None:
            print(f"note: no data for split '{split}' under {args.data_root}; skipped", file=sys.stderr)
            continue
        if args.limit > 0:
            items, base = loaded
            photos = list(dict.fromkeys(item["image"] for item in items))[:args.limit]
            loaded = [item for item in items if item["image"] in photos], base
        splits[split] = loaded
    if not splits:
        print(f"no benchmark data under {args.data_root}; pass --data-root", file=sys.stderr)
        return 2
    results = []
    for split, (items, base) in splits.items():
        # fresh workers per split: a worker's allocator keeps what an earlier split's large photos
        # needed, which would count in the next split's peak RSS
        remotes = [Remote(spec) for spec in specs]
        try:
            results.append(run_split(split, items, base, remotes, args.verbose))
        finally:
            for remote in remotes:
                remote.close()
    for split_results in results:
        print_table(split_results[0]["split"], split_results)
        print_by_height(split_results[0]["split"], split_results)
    print_goal(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
