"""End to end: every Agent.run leaves a complete, valid trace; tool failures land on the right run;
concurrent Agent.batch runs leave separate traces; the report and viewer read agent traces."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from doubles import ExplodingLocalizer, FixedLocalizer, ScriptedVLM
from lookcloser import Agent
from lookcloser.tracing import build_tree, list_traces, load_trace, validate_trace
from lookcloser.tracing.cli import trace_app
from lookcloser.tracing.report import render_report


@pytest.fixture
def image():
    rng = np.random.default_rng(1)
    return Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))


def missing(*names):
    return json.dumps({"answer": None, "missing": [{"name": n, "kind": "object"} for n in names]})


def test_agent_run_leaves_a_complete_valid_trace(tmp_path, image):
    vlm = ScriptedVLM([missing("red cup"), "The cup is red."])
    agent = Agent(vlm=vlm, tools={"localizer": FixedLocalizer({"red cup": (100, 50, 140, 90)})}, trace_dir=tmp_path)
    answer = agent.run(image, "What colour is the cup?")
    runs = load_trace(answer.trace_dir)
    validate_trace(runs)
    root = runs[0]
    assert root["id"] == answer.trace_id and root["name"] == "lookcloser.run"
    assert root["inputs"]["question"] == "What colour is the cup?"
    assert root["outputs"]["answer"] == answer.text == "The cup is red."
    assert root["outputs"]["findings"] == [f.to_json() for f in answer.findings]
    names = [r["name"] for r in runs]
    for expected in ("show", "search", "tell", "tool.localizer.fixed"):
        assert expected in names, names
    llm = [r for r in runs if r["run_type"] == "llm"]
    assert len(llm) == answer.stats.vlm_calls == 2
    for call in llm:  # images are files in the trace, tokens where LangSmith reads them
        assert call["extra"]["metadata"]["usage_metadata"]["input_tokens"] > 0
        paths = [p["path"] for m in call["inputs"]["messages"] for p in m["content"] if p["type"] == "image"]
        assert paths and all((tmp_path / answer.trace_id / p).is_file() for p in paths)
    input_image = tmp_path / answer.trace_id / root["inputs"]["image"]
    assert Image.open(input_image).size == image.size
    page = render_report(answer.trace_dir)
    assert answer.text in page and page.count('class="finding-box"') == 1


def test_failing_tool_error_is_on_the_tool_run_and_the_trace_completes(tmp_path, image):
    vlm = ScriptedVLM([missing("the logo"), "I could not find the logo."])
    agent = Agent(vlm=vlm, tools={"localizer": ExplodingLocalizer()}, trace_dir=tmp_path)
    answer = agent.run(image, "Which logo?")
    runs = load_trace(answer.trace_dir)
    validate_trace(runs)
    failed = [r for r in runs if r["error"]]
    assert [r["name"] for r in failed] == ["tool.localizer.exploding"]
    assert "model exploded on purpose" in failed[0]["error"]
    assert runs[0]["outputs"]["answer"] == "I could not find the logo."
    assert all(r["end_time"] for r in runs)


def test_concurrent_batch_runs_leave_separate_uncorrupted_traces(tmp_path, image):
    def script(text, images):
        return "done" if "thing at [" in text else missing("thing")  # TELL lists the finding

    agent = Agent(vlm=ScriptedVLM(script), tools={"localizer": FixedLocalizer({"thing": (10, 10, 50, 50)}, delay=0.05)},
                  trace_dir=tmp_path)
    answers = agent.batch([(image, f"question {i}?") for i in range(8)], max_workers=4)
    assert [a.text for a in answers] == ["done"] * 8
    assert len({a.trace_id for a in answers}) == 8
    assert {s.trace_id for s in list_traces(tmp_path)} == {a.trace_id for a in answers}
    for index, answer in enumerate(answers):
        runs = load_trace(answer.trace_dir)
        validate_trace(runs)
        assert runs[0]["inputs"]["question"] == f"question {index}?"
        assert {r["trace_id"] for r in runs} == {answer.trace_id}
        [root] = build_tree(runs)
        assert len(list(root.walk())) == len(runs)


def test_trace_dir_none_writes_nothing(tmp_path, image, monkeypatch):
    monkeypatch.chdir(tmp_path)
    answer = Agent(vlm=ScriptedVLM(['{"answer": "a tram", "missing": []}']), tools={"localizer": FixedLocalizer({})},
                   trace_dir=None).run(image, "What vehicle?")
    assert answer.trace_dir is None
    assert list(tmp_path.iterdir()) == []


def test_viewer_shows_an_agent_trace(tmp_path, image):
    vlm = ScriptedVLM([missing("red cup"), "The cup is red."])
    agent = Agent(vlm=vlm, tools={"localizer": FixedLocalizer({"red cup": (100, 50, 140, 90)})}, trace_dir=tmp_path)
    answer = agent.run(image, "What colour is the cup?")
    result = CliRunner().invoke(trace_app, ["show", answer.trace_dir], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "lookcloser.run" in result.output and "tool.localizer.fixed" in result.output
    assert "valid LangSmith trace" in result.output
