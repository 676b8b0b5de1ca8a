"""The whole graph on a real transformers backend: a tiny random-weight Qwen2.5-VL loaded from a local dir.

Its replies are gibberish, so this checks plumbing, not answers: processor -> generate -> parse -> Answer,
with the image really passing through the model and every call counted and traced.
"""

import json

from PIL import Image

from lookcloser import Agent
from lookcloser.tracing import load_trace, validate_trace


def test_agent_runs_end_to_end_on_tiny_qwen(tiny_qwen_path, tmp_path):
    agent = Agent(vlm=f"transformers:{tiny_qwen_path}", config=None, trace_dir=tmp_path)
    agent.config.max_new_tokens = 8
    answer = agent.run(Image.new("RGB", (96, 64), (200, 30, 30)), "What colour is it?", options=["red", "blue"])
    assert answer.stats.vlm_calls >= 1
    assert answer.parse_path in ("json", "json_fence", "seal_phrase", "text")
    runs = load_trace(answer.trace_dir)
    validate_trace(runs)
    llm_runs = [r for r in runs if r["run_type"] == "llm"]
    generate_runs = [r for r in llm_runs if r["name"] == "vlm.generate"]
    # token counts where LangSmith reads them, from the real processor's input ids
    assert generate_runs and all(r["extra"]["metadata"]["usage_metadata"]["input_tokens"] > 0 for r in generate_runs)
    json.dumps(answer.to_json())  # the CLI's JSON shape serialises
