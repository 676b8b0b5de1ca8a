"""Plumbing cost of `lookcloser eval` per item: threads vs one worker, with a scripted VLM (no model).

Workload: the real eval (dataset reader, Agent graph, image decoding, results file, summary) on the
V* Bench sample in ../shared/data/vstar_bench, with the scripted VLM double from tests/doubles.py.
Each call sleeps `--vlm-seconds` to stand in for a model's latency (0 = pure plumbing). These are
NOT accuracy numbers: the double always answers "(A)".

    .venv/bin/python benchmarks/eval_overhead.py [--vlm-seconds 0.2] [--workers 1 2 4] [--traces]
    .venv/bin/python benchmarks/eval_overhead.py --endpoint-seconds 1.0 --workers 1 2   # + Ray actors

With `--endpoint-seconds S` the items go to a scripted OpenAI-compatible endpoint in this process that answers
after S seconds (the real HTTP client, payloads and per-call plumbing), with threads and then with that many
local Ray actors (`--ray-cpus 0.5` each, as on a 2-core machine), side by side.

First it prints the per-VLM-call plumbing of the OpenAI-compatible backend on a 2250x1500 photo
(examples/vending_machine.jpg): building the request for SHOW (the photo) and for TELL (the same photo
again, plus a crop), for each image encoding, with the payload's bytes and the PSNR of what the VLM
decodes against the photo's pixels.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the doubles live with the tests
DATA = REPO.parent / "shared" / "data" / "vstar_bench"


def plumbing_table(repeats: int = 5) -> None:
    """Per-call request building (image encoding) for PNG and JPEG: SHOW, then TELL with the same photo."""
    import base64
    import io
    import statistics

    import numpy as np
    from PIL import Image

    from lookcloser.vlm import openai_vlm
    from lookcloser.core.vlm_protocol import ChatMessage

    photo = Image.open(REPO / "examples" / "vending_machine.jpg").convert("RGB")
    side = 2048  # OpenAIVLM's default max_image_side: the photo is shrunk to it before encoding
    scale = side / max(photo.size)
    pixels = np.asarray(photo.resize((round(photo.width * scale), round(photo.height * scale)),
                                     Image.Resampling.BILINEAR), dtype=np.float64)
    print(f"Per-call plumbing, {photo.width}x{photo.height} photo sent at {side} px (median of {repeats}; the cache "
          "cleared before each SHOW)\n")
    print("| encoding | SHOW ms | TELL ms (photo + crop) | payload MB | PSNR dB |\n|---|---|---|---|---|")
    for image_format in ("png", "jpeg"):
        show_ms, tell_ms = [], []
        for _ in range(repeats):
            openai_vlm._encoded.clear()
            started = time.perf_counter()
            show = openai_vlm.to_openai_messages([ChatMessage("user", [photo, "q"])], max_side=side,
                                                 image_format=image_format)
            show_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            openai_vlm.to_openai_messages([ChatMessage("user", [photo, photo.crop((100, 100, 400, 300)), "q"])],
                                          max_side=side, image_format=image_format)
            tell_ms.append((time.perf_counter() - started) * 1000)
        url = show[0]["content"][0]["image_url"]["url"]
        sent = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")
        error = float(((np.asarray(sent, dtype=np.float64) - pixels) ** 2).mean())
        psnr = "lossless" if error == 0 else f"{10 * np.log10(255 ** 2 / error):.1f}"
        print(f"| {image_format} | {statistics.median(show_ms):.0f} | {statistics.median(tell_ms):.0f} | "
              f"{len(url) / 1e6:.2f} | {psnr} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DATA)
    parser.add_argument("--vlm-seconds", type=float, default=0.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--traces", action="store_true", help="Write a trace per item (as the CLI does).")
    parser.add_argument("--endpoint-seconds", type=float, default=None,
                        help="Use a scripted OpenAI-compatible endpoint answering after this many seconds, with "
                             "threads and Ray actors.")
    args = parser.parse_args()
    plumbing_table()
    if not args.dataset.is_dir():
        sys.exit(f"dataset not found: {args.dataset}")

    from doubles import ScriptedVLM

    import lookcloser.agent  # noqa: F401 - one-time imports (LangGraph, transformers) outside the timings
    from lookcloser.eval import AgentRecipe, RunOptions, evaluate

    if args.endpoint_seconds is not None:
        endpoint_table(args)
        return
    print("| workers | items | wall s | s/item (wall) | VLM s/call | traces |\n|---|---|---|---|---|---|")
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as out:
            vlm = ScriptedVLM(lambda prompt, images: '{"answer": "(A)", "missing": []}', delay=args.vlm_seconds)
            recipe = AgentRecipe(vlm=vlm, tools={"localizer": "whole_image"},
                                 trace_dir=str(Path(out) / "traces") if args.traces else None)
            started = time.perf_counter()
            summary = evaluate(args.dataset, Path(out) / "run", recipe, run=RunOptions(workers=workers))
            wall = time.perf_counter() - started
            n = summary["overall"]["n"]
            print(f"| {workers} | {n} | {wall:.2f} | {wall / n:.3f} | {args.vlm_seconds:g} | {args.traces} |")


def endpoint_table(args: argparse.Namespace) -> None:
    """Threads vs Ray actors against one OpenAI-compatible endpoint with a fixed latency per request."""
    from openai_stub import StubServer

    from lookcloser.eval import AgentRecipe, RunOptions, evaluate

    def reply(request: dict) -> str:
        time.sleep(args.endpoint_seconds)
        return '{"answer": "(A)", "missing": []}'

    print(f"| mode | workers / actors | items | wall s | s/item | speed-up | endpoint s/request |\n"
          "|---|---|---|---|---|---|---|")
    with StubServer() as stub:
        stub.script = reply
        for ray in (False, True):
            base = None
            for workers in args.workers:
                with tempfile.TemporaryDirectory() as out:
                    recipe = AgentRecipe(vlm=stub.spec, tools={"localizer": "whole_image"})
                    run = RunOptions(workers=workers, ray=ray, cpus_per_actor=0.5)
                    started = time.perf_counter()
                    summary = evaluate(args.dataset, Path(out) / "run", recipe, run=run)
                    wall = time.perf_counter() - started
                n = summary["overall"]["n"]
                base = base or wall
                print(f"| {'Ray' if ray else 'threads'} | {workers} | {n} | {wall:.1f} | {wall / n:.2f} | "
                      f"{base / wall:.2f}x | {args.endpoint_seconds:g} |")


if __name__ == "__main__":
    main()
