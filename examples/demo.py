"""The README's demo: ask about a small detail in a large photo.

    python examples/demo.py [--vlm transformers:/path/to/Qwen3-VL-8B-Instruct | openai:MODEL@URL]

With a VLM it runs the whole Show-Search-Tell loop. Without one (no weights on this machine, no
hub access), it says so in one line and then runs the parts that work offline: the V* search for
the text in the photo, read with the bundled OCR models, and prints what it found.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from lookcloser import Agent, ModelLoadError

HERE = Path(__file__).resolve().parent
IMAGE = HERE / "vending_machine.jpg"  # SEAL demo photo (MIT, see LICENSE.seal-demo-images.MIT.txt)
QUESTION = "What is the web address printed on the vending machine?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vlm", default=None, help="VLM spec (default: transformers:Qwen/Qwen3-VL-8B-Instruct)")
    parser.add_argument("--out", default="out", help="folder for the visualisation")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    print(f"image: {IMAGE.name}\nquestion: {QUESTION}")
    agent = Agent(vlm=args.vlm)
    try:
        answer = agent.run(IMAGE, QUESTION)
    except ModelLoadError as exc:
        print(f"\nVLM unavailable: {exc}")
        print("\nRunning the offline parts instead: V* search for text, read with RapidOCR's bundled models.")
        return offline_search(agent, out)
    print(f"\nanswer: {answer.text}")
    for finding in answer.findings:
        print(f"  {finding.target.name}: {finding.status} {finding.box.to_list() if finding.box else ''} {finding.text or ''}")
    print(f"stats: {answer.stats.model_dump()}\ntrace: {answer.trace_dir}  (lookcloser trace show {answer.trace_dir})")
    return 0


def offline_search(agent: Agent, out: Path) -> int:
    started = time.perf_counter()
    findings = agent.find(IMAGE, "text", kind="text")
    seconds = time.perf_counter() - started
    found = [f for f in findings if f.status == "found"]
    print(f"read {len(found)} line(s) of text in {seconds:.1f} s:")
    for finding in found:
        print(f"  {finding.text!r:32} at {finding.box.to_list()}  confidence {finding.score:.2f}")
    for finding in findings:
        if finding.status != "found":
            print(f"  {finding.target.name}: {finding.status} {finding.error or ''}")
    from lookcloser.imaging.load import load_image
    from lookcloser.tools.vstar.visualize import draw_search

    draw_search(load_image(IMAGE), findings, out / "demo_search.png")
    print(f"visualisation of the search (numbered patches, boxes, text): {out / 'demo_search.png'}")
    return 0 if found else 1


if __name__ == "__main__":
    sys.exit(main())
