"""What an Agent run leaves on disk: one tree with the VLM and tool calls under the graph's node runs,
images as one file per distinct picture, errors on the run that failed, separate traces for
concurrent runs, and nothing at all unless a trace directory is asked for."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from doubles import ExplodingLocalizer, FixedLocalizer, ScriptedVLM
from lookcloser import Agent
from lookcloser.tracing import IMAGES_DIR, build_tree, list_traces, load_trace, validate_trace
from tracing_helpers import ANSWER, QUESTION, SIGN_BOX, agent_trace, missing, scene


def _by_id(runs):
    return {r["id"]: r for r in runs}


def _image_paths(run):
    """Image paths in an llm run's input messages (image_url blocks of serialised HumanMessages, the form
    langchain-core traces image blocks in)."""
    return [block["image_url"]["url"] for batch in run["inputs"]["messages"] for message in batch
            for block in message["kwargs"]["content"] if isinstance(block, dict) and block.get("type") == "image_url"]


def test_run_tree_nests_vlm_and_tool_calls_under_the_graph_nodes(tmp_path):
    answer, trace_dir = agent_trace(tmp_path)
    runs = load_trace(trace_dir)
    validate_trace(runs)
    by_id = _by_id(runs)
    [root] = build_tree(runs)
    assert root.run["id"] == answer.trace_id == trace_dir.name
    assert root.run["name"] == "lookcloser" and root.run["inputs"]["question"] == QUESTION
    assert root.run["outputs"]["answer"] == answer.text == ANSWER
    assert root.run["outputs"]["findings"] == [f.model_dump(mode="json") for f in answer.findings]
    nodes = [child.run["name"] for child in root.children]
    assert nodes == ["read_input", "show", "search", "search", "search", "segment", "tell"]
    parents = {r["name"]: by_id[r["parent_run_id"]]["name"] for r in runs if r["run_type"] in ("llm", "tool")}
    assert parents == {"vlm.generate": "tell", "tool.localizer.stepping": "search", "tool.segmenter.boxfill": "segment"}
    show_call = next(r for r in runs if r["name"] == "vlm.generate" and by_id[r["parent_run_id"]]["name"] == "show")
    assert show_call["outputs"]["generations"][0][0]["text"] == missing("sign", "cup", "dog")
    assert show_call["extra"]["metadata"]["usage_metadata"]["input_tokens"] > 0
    searched = sorted(by_id[r["parent_run_id"]]["inputs"]["targets"][0]["name"] for r in runs if r["name"] == "tool.localizer.stepping")
    assert searched == ["cup", "dog", "sign"]
    steps = [r for r in runs if r["name"] == "vstar.step"]
    assert len(steps) == 8 and all(by_id[s["parent_run_id"]]["name"] == "tool.localizer.stepping" for s in steps)
    assert len([r for r in runs if r["run_type"] == "llm"]) == answer.stats.vlm_calls == 2


def test_an_image_used_twice_is_one_file_and_equal_sized_crops_are_two(tmp_path):
    rng = np.random.default_rng(3)
    noise = Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8))
    vlm = ScriptedVLM([missing("left", "right"), "two things"])
    localizer = FixedLocalizer({"left": (10, 10, 60, 60), "right": (300, 200, 350, 250)})  # same size, other pixels
    answer, trace_dir = agent_trace(tmp_path, vlm=vlm, tools={"localizer": localizer}, image=noise)
    runs = load_trace(trace_dir)
    show, tell = [r for r in runs if r["name"] == "vlm.generate"]
    input_image = runs[0]["inputs"]["image"]
    assert _image_paths(show) == [input_image]
    assert _image_paths(tell)[0] == input_image  # the same picture in SHOW and TELL: the same file
    crops = _image_paths(tell)[1:]
    assert len(crops) == len(set(crops)) == 2
    files = sorted(p.relative_to(trace_dir).as_posix() for p in (trace_dir / IMAGES_DIR).iterdir())
    assert files == sorted([input_image, *crops])
    saved = [Image.open(trace_dir / path) for path in crops]
    assert saved[0].size == saved[1].size and saved[0].tobytes() != saved[1].tobytes()
    assert np.array_equal(np.asarray(Image.open(trace_dir / input_image)), np.asarray(noise))


def test_a_tool_that_raises_marks_its_own_run_and_the_trace_completes(tmp_path):
    vlm = ScriptedVLM([missing("the logo"), "I could not find the logo."])
    answer, trace_dir = agent_trace(tmp_path, vlm=vlm, tools={"localizer": ExplodingLocalizer()})
    runs = load_trace(trace_dir)
    validate_trace(runs)
    by_id = _by_id(runs)
    [failed] = [r for r in runs if r["error"]]
    assert failed["name"] == "tool.localizer.exploding" and failed["run_type"] == "tool"
    assert "model exploded on purpose" in failed["error"]
    assert by_id[failed["parent_run_id"]]["name"] == "search" and not by_id[failed["parent_run_id"]]["error"]
    assert runs[0]["outputs"]["answer"] == answer.text == "I could not find the logo."
    [finding] = runs[0]["outputs"]["findings"]
    assert finding["status"] == "failed" and "model exploded" in finding["error"]
    assert json.loads((trace_dir / "meta.json").read_text())["status"] == "success"


def test_concurrent_batch_runs_leave_separate_valid_traces(tmp_path):
    def script(text, images):
        return "done: " + text.split("Question: ")[1].split("\n")[0] if "thing at [" in text else missing("thing")

    agent = Agent(vlm=ScriptedVLM(script), tools={"localizer": FixedLocalizer({"thing": (10, 10, 50, 50)}, delay=0.05)},
                  trace_dir=tmp_path)
    answers = agent.batch([(scene(), f"question {i}?") for i in range(8)], max_workers=4)
    assert [a.text for a in answers] == [f"done: question {i}?" for i in range(8)]
    assert len({a.trace_id for a in answers}) == 8
    assert {s.trace_id for s in list_traces(tmp_path)} == {a.trace_id for a in answers}
    for index, answer in enumerate(answers):
        runs = load_trace(answer.trace_dir)
        validate_trace(runs)
        assert {r["trace_id"] for r in runs} == {answer.trace_id}
        assert runs[0]["inputs"]["question"] == f"question {index}?"
        assert runs[0]["outputs"]["answer"] == f"done: question {index}?"
        tell_call = [r for r in runs if r["run_type"] == "llm"][-1]
        assert f"question {index}?" in json.dumps(tell_call["inputs"])


def test_no_trace_is_written_unless_asked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LOOKCLOSER_TRACE_DIR", raising=False)
    vlm = ScriptedVLM(['{"answer": "a sign", "missing": []}'])
    answer = Agent(vlm=vlm, tools={"localizer": FixedLocalizer({})}).run(scene(), "What is it?")
    assert answer.text == "a sign" and answer.trace_dir is None
    assert list(tmp_path.iterdir()) == []


def test_the_environment_variable_turns_local_traces_on(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOKCLOSER_TRACE_DIR", str(tmp_path / "from-env"))
    vlm = ScriptedVLM(['{"answer": "a sign", "missing": []}'])
    answer = Agent(vlm=vlm, tools={"localizer": FixedLocalizer({})}).run(scene(), "What is it?")
    assert Path(answer.trace_dir).parent == tmp_path / "from-env"
    validate_trace(load_trace(answer.trace_dir))


def test_find_only_run_is_traced_with_its_target(tmp_path):
    agent = Agent(tools={"localizer": FixedLocalizer({"sign": SIGN_BOX})}, trace_dir=tmp_path)
    [finding] = agent.find(scene(), "sign")
    assert finding.status == "found"
    [trace_dir] = [d for d in tmp_path.iterdir()]
    runs = load_trace(trace_dir)
    validate_trace(runs)
    assert runs[0]["inputs"]["target"]["name"] == "sign"
    assert [r["name"] for r in runs if r["run_type"] != "chain"] == ["tool.localizer.fixed"]


@pytest.mark.parametrize("options, choice", [(["closed", "open"], 1)])
def test_multiple_choice_answer_and_choice_are_in_the_root_outputs(tmp_path, options, choice):
    vlm = ScriptedVLM(['{"answer": "(B)", "missing": []}'])
    answer, trace_dir = agent_trace(tmp_path, vlm=vlm, options=options)
    root = load_trace(trace_dir)[0]
    assert root["inputs"]["options"] == options
    assert root["outputs"]["choice"] == answer.choice == choice
