"""Per-run overhead of tracing on a 12-Mpx photo: the same Agent run with tracing off, a local JSONL
trace, LangSmith tracing (to a local stub of the LangSmith API in another process), and both.

Workload: the real Agent graph with the scripted VLM double from tests/doubles.py (fixed cost per
call, default 20 ms) and the FixedLocalizer double: SHOW names two targets missing, two parallel
searches, TELL with the image and two crops (2 VLM calls, 2 tool calls). The input is
examples/vending_machine.jpg upscaled to 4032x3024 with mild sensor-like noise (a smooth upscale
would compress unrealistically well); `--size` changes it.

LangSmith tracing is switched on per mode with langchain-core's `tracing_v2_enabled(client=...)`, the
same `LangChainTracer` that LANGSMITH_TRACING=true adds, so all modes run in one process (blocks
interleaved so drift hits every mode alike). Runs are sent in the background: the table shows the
time a caller waits per run; the final flush is timed on its own line.

    .venv/bin/python benchmarks/tracing_overhead.py --runs 12

Prints one table: ms/run (mean, median), overhead against tracing off, and the local trace size.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
sys.path.insert(0, str(TESTS))  # the doubles live with the tests

MODES = ("off", "local JSONL", "LangSmith", "local + LangSmith")
STUB_SERVER = """
import sys
sys.path.insert(0, sys.argv[1])
from tracing_helpers import LangSmithStub
stub = LangSmithStub()
print(stub.url, flush=True)
sys.stdin.read()                      # until the benchmark closes our stdin
print(len(stub.received_runs()), flush=True)
stub.close()
"""


def photo(width: int, height: int) -> Image.Image:
    base = Image.open(REPO / "examples" / "vending_machine.jpg").convert("RGB").resize((width, height), Image.BICUBIC)
    noise = np.random.default_rng(0).normal(0, 4, (height, width, 3))
    return Image.fromarray(np.clip(np.asarray(base, dtype=np.float32) + noise, 0, 255).astype(np.uint8))


def make_agent(trace_dir: Path | None, vlm_seconds: float, width: int, height: int):
    from doubles import FixedLocalizer, ScriptedVLM
    from lookcloser import Agent

    missing = json.dumps({"answer": None, "missing": [{"name": "price tag", "kind": "object"},
                                                       {"name": "logo", "kind": "object"}]})
    boxes = {"price tag": (width * 0.30, height * 0.40, width * 0.36, height * 0.44),
             "logo": (width * 0.10, height * 0.05, width * 0.25, height * 0.12)}

    def script(text, images):
        return "It costs 2 rubles." if "price tag at [" in text else missing

    return Agent(vlm=ScriptedVLM(script, delay=vlm_seconds), tools={"localizer": FixedLocalizer(boxes)},
                 trace_dir=trace_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=12, help="timed runs per mode")
    parser.add_argument("--blocks", type=int, default=3, help="interleaved blocks the runs are split into")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--vlm-ms", type=float, default=20.0, help="fixed cost of one VLM call")
    parser.add_argument("--size", default="4032x3024", help="input image WIDTHxHEIGHT")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    import langsmith
    from langchain_core.tracers.context import tracing_v2_enabled
    from langchain_core.tracers.langchain import wait_for_all_tracers

    picture = photo(width, height)
    scratch = Path(tempfile.mkdtemp(prefix="lookcloser-trace-bench-"))
    server = subprocess.Popen([sys.executable, "-c", STUB_SERVER, str(TESTS)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip()
        client = langsmith.Client(api_url=url, api_key="x")
        dirs = {"local JSONL": scratch / "local", "local + LangSmith": scratch / "both"}
        agents = {mode: make_agent(dirs.get(mode), args.vlm_ms / 1000, width, height) for mode in MODES}

        def once(mode: str) -> float:
            sending = mode.endswith("LangSmith")
            context = tracing_v2_enabled(project_name="bench", client=client) if sending else nullcontext()
            started = time.perf_counter()
            with context:
                answer = agents[mode].run(picture, "How much does it cost?")
            elapsed = time.perf_counter() - started
            if answer.text != "It costs 2 rubles.":
                raise RuntimeError(f"the workload answered {answer.text!r}; the script no longer matches")
            return elapsed

        for mode in MODES:
            for _ in range(args.warmup):
                once(mode)
        times: dict[str, list[float]] = {mode: [] for mode in MODES}
        per_block = [args.runs // args.blocks + (1 if b < args.runs % args.blocks else 0) for b in range(args.blocks)]
        for count in per_block:
            for mode in MODES:
                times[mode] += [once(mode) for _ in range(count)]
        flush_started = time.perf_counter()
        wait_for_all_tracers()
        client.flush()
        flush_ms = (time.perf_counter() - flush_started) * 1000

        sizes = {}
        for mode, directory in dirs.items():
            traces = [d for d in directory.iterdir() if d.is_dir()]
            sizes[mode] = (sum(f.stat().st_size for d in traces for f in d.rglob("*") if f.is_file()) / 1024 / len(traces),
                           statistics.mean(len((d / "runs.jsonl").read_text().splitlines()) for d in traces),
                           statistics.mean(len(list((d / "images").iterdir())) for d in traces))
    finally:
        server.stdin.close()
        received = server.stdout.readline().strip()
        server.wait(timeout=30)
        shutil.rmtree(scratch, ignore_errors=True)

    base = statistics.mean(times["off"])
    print(f"image {width}x{height} ({width * height / 1e6:.1f} Mpx), scripted VLM {args.vlm_ms:.0f} ms/call, "
          f"{args.runs} runs/mode (+{args.warmup} warm-up), python {sys.version.split()[0]}")
    print("| tracing | mean ms/run | median ms/run | overhead | trace on disk |")
    print("|---|---|---|---|---|")
    for mode in MODES:
        mean = statistics.mean(times[mode]) * 1000
        size = sizes.get(mode)
        disk = f"{size[0]:,.0f} KiB ({size[1]:.0f} runs, {size[2]:.0f} images)" if size else "-"
        overhead = "-" if mode == "off" else f"{mean - base * 1000:+.1f} ms ({mean / (base * 1000) - 1:+.0%})"
        print(f"| {mode} | {mean:.1f} | {statistics.median(times[mode]) * 1000:.1f} | {overhead} | {disk} |")
    print(f"LangSmith stub received {received} runs; final flush took {flush_ms:.0f} ms")


if __name__ == "__main__":
    main()
