"""The full Show-Search-Tell graph with a scripted VLM, offline, and the trace it leaves.

The VLM here is a tiny rule-based class written for this example: it shows the whole VLM
protocol (`name` + `generate(messages, max_new_tokens=...)`) and lets the rest run for real:
the graph, the V* search for text with RapidOCR's bundled models, the working memory, the TELL
prompt, and the trace.

    python examples/scripted_agent.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from lookcloser import Agent
from lookcloser.vlm import ChatMessage, VLMReply

HERE = Path(__file__).resolve().parent


class RuleBasedVLM:
    """SHOW: "I can't read it, find the text". TELL: answer with the text line that looks like a web address."""

    name = "rule-based-example"

    def generate(self, messages: list[ChatMessage], *, max_new_tokens: int = 256) -> VLMReply:
        prompt = "\n".join(m.text for m in messages)
        if "Additional visual information" not in prompt:  # SHOW
            reply = {"answer": None, "missing": [{"name": "the web address on the machine", "kind": "text"}]}
            return VLMReply(text=json.dumps(reply))
        # the working memory lists each line read as: [x1, y1, x2, y2] (image N) "TEXT"
        read = re.findall(r'^\[[^\]]*\](?: \(image \d+\))? "([^"]*)"$', prompt, flags=re.MULTILINE)
        web = [t for t in read if "www" in t.lower() or ".by" in t.lower() or ".com" in t.lower()]
        return VLMReply(text=web[0] if web else "I could not read a web address.")


def print_trace(trace_dir: Path) -> None:
    runs = [json.loads(line) for line in (trace_dir / "runs.jsonl").read_text().splitlines()]
    runs.sort(key=lambda r: r["dotted_order"])
    for run in runs:
        depth = run["dotted_order"].count(".")
        status = "error: " + run["error"] if run["error"] else "ok"
        print(f"{'  ' * depth}{run['name']} [{run['run_type']}] {status}")


def main() -> None:
    agent = Agent(vlm=RuleBasedVLM(), trace_dir=HERE.parent / "traces")
    answer = agent.run(HERE / "vending_machine.jpg", "What is the web address printed on the vending machine?")
    print(f"answer: {answer.text}")
    print(f"stats:  {answer.stats.model_dump()}")
    print(f"trace:  {answer.trace_dir}\n")
    print_trace(Path(answer.trace_dir))
    print(f"\nmore: lookcloser trace show {answer.trace_dir}")


if __name__ == "__main__":
    main()
