"""Overhead of tracing: the same Agent runs with local traces on and off.

The VLM is the scripted double from tests/doubles.py with a fixed cost per call (default 20 ms,
so the VLM's share is known), the localizer the FixedLocalizer double: each run is SHOW (target
missing) -> two parallel searches -> TELL with two crops, i.e. 2 VLM calls, 2 tool calls, the
input image and crops saved as PNG files. `--workload synthetic` skips the agent and times
nested trace_run calls around a 20 ms sleep instead.

    .venv/bin/python benchmarks/tracing_overhead.py --runs 30 --size 1024x768

Prints one table (mean / median / p90 per run, ratio on/off) and the trace size per run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the doubles live with the tests


def scene(width: int, height: int) -> Image.Image:
    """A photo-like image (smooth gradients, shapes, mild noise) so PNG sizes are realistic."""
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height) + 64], axis=-1)
    noise = np.random.default_rng(0).normal(0, 6, base.shape)
    image = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    draw.rectangle([width * 0.6, height * 0.6, width * 0.7, height * 0.68], fill=(220, 30, 30))
    draw.ellipse([width * 0.1, height * 0.2, width * 0.2, height * 0.35], fill=(30, 30, 220))
    return image


def agent_workload(vlm_seconds: float, width: int, height: int):
    from doubles import FixedLocalizer, ScriptedVLM
    from lookcloser import Agent

    missing = json.dumps({"answer": None, "missing": [{"name": "red sign", "kind": "object"},
                                                       {"name": "blue ball", "kind": "object"}]})
    boxes = {"red sign": (width * 0.6, height * 0.6, width * 0.7, height * 0.68),
             "blue ball": (width * 0.1, height * 0.2, width * 0.2, height * 0.35)}
    picture = scene(width, height)

    def script(text, images):
        return "The sign is red." if "red sign at [" in text else missing

    def make(trace_dir):
        agent = Agent(vlm=ScriptedVLM(script, delay=vlm_seconds), tools={"localizer": FixedLocalizer(boxes)},
                      trace_dir=trace_dir)

        def once():
            answer = agent.run(picture, "What colour is the sign?")
            if answer.text != "The sign is red.":
                raise RuntimeError(f"benchmark workload answered {answer.text!r}; the script no longer matches")
        return once

    return make


def synthetic_workload(vlm_seconds: float, width: int, height: int):
    from lookcloser.tracing import start_trace, trace_run

    picture = scene(width, height)

    def make(trace_dir):
        def once():
            with start_trace(trace_dir, "lookcloser.run", {"question": "q"}, live=False) as root:
                root.inputs["image"] = root.save_image(picture, "input", format="jpeg")  # as the agent does
                for node in ("show", "search", "tell"):
                    with trace_run(node, "chain"):
                        if node == "search":
                            for step in range(8):
                                with trace_run("vstar.step", "tool", {"box": [0, 0, 10, 10], "level": step}) as run:
                                    run.outputs = {"peak": 0.5}
                        else:
                            with trace_run("vlm.generate", "llm", {"prompt": "x" * 500}) as run:
                                time.sleep(vlm_seconds)
                                run.outputs = {"text": "y" * 50, "input_tokens": 900, "output_tokens": 12}
                root.outputs = {"answer": "red"}
        return once

    return make


def measure(once, runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        once()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        once()
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="timed runs per mode")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--vlm-ms", type=float, default=20.0, help="fixed cost of one VLM call")
    parser.add_argument("--size", default="1024x768", help="input image WIDTHxHEIGHT")
    parser.add_argument("--workload", choices=("agent", "synthetic"), default="agent")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    factory = (agent_workload if args.workload == "agent" else synthetic_workload)(args.vlm_ms / 1000, width, height)

    scratch = Path(tempfile.mkdtemp(prefix="lookcloser-trace-bench-"))
    try:
        results = {}
        # interleave off/on blocks so drift (CPU frequency, page cache) hits both alike
        off_times, on_times = [], []
        off_once, on_once = factory(None), factory(scratch)
        measure(off_once, 0, args.warmup)
        measure(on_once, 0, args.warmup)
        for block in range(2):
            off_times += measure(off_once, args.runs // 2 + (args.runs % 2 if block == 0 else 0), 0)
            on_times += measure(on_once, args.runs // 2, 0)
        results["tracing off"] = off_times
        results["tracing on (local)"] = on_times
        traces = [d for d in scratch.iterdir() if d.is_dir()]
        size_kb = sum(f.stat().st_size for d in traces for f in d.rglob("*") if f.is_file()) / 1024 / max(len(traces), 1)
        runs_per_trace = statistics.mean(len((d / "runs.jsonl").read_text().splitlines()) for d in traces)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    base = statistics.mean(results["tracing off"])
    print(f"workload={args.workload} image={width}x{height} vlm={args.vlm_ms:.0f} ms/call runs={args.runs} "
          f"python={sys.version.split()[0]}")
    print(f"{'mode':<22}{'mean ms':>10}{'median ms':>11}{'p90 ms':>9}{'ratio':>8}")
    for mode, times in results.items():
        ordered = sorted(times)
        p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
        print(f"{mode:<22}{statistics.mean(times) * 1000:>10.1f}{statistics.median(times) * 1000:>11.1f}"
              f"{p90 * 1000:>9.1f}{statistics.mean(times) / base:>8.3f}")
    added = (statistics.mean(results["tracing on (local)"]) - base) * 1000
    print(f"added per run: {added:.1f} ms; trace on disk: {size_kb:.0f} KiB/run, {runs_per_trace:.0f} runs/trace")


if __name__ == "__main__":
    main()
