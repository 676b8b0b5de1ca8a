"""Plumbing cost of `lookcloser eval` per item: threads vs one worker, with a scripted VLM (no model).

Workload: the real eval (dataset reader, Agent graph, image decoding, results file, summary) on the
V* Bench sample in ../shared/data/vstar_bench, with the scripted VLM double from tests/doubles.py.
Each call sleeps `--vlm-seconds` to stand in for a model's latency (0 = pure plumbing). These are
NOT accuracy numbers: the double always answers "(A)".

    .venv/bin/python benchmarks/eval_overhead.py [--vlm-seconds 0.2] [--workers 1 2 4] [--traces]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DATA)
    parser.add_argument("--vlm-seconds", type=float, default=0.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--traces", action="store_true", help="Write a trace per item (as the CLI does).")
    args = parser.parse_args()
    if not args.dataset.is_dir():
        sys.exit(f"dataset not found: {args.dataset}")

    from doubles import ScriptedVLM

    import lookcloser.agent  # noqa: F401 - one-time imports (LangGraph, transformers) outside the timings
    from lookcloser.eval import AgentRecipe, RunOptions, evaluate

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


if __name__ == "__main__":
    main()
