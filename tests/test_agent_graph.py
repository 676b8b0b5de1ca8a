"""Routing, parallel search branches, failure isolation, choices, batch and stream on the real graph."""

import json
import time

import numpy as np
import pytest
from PIL import Image

from doubles import BoxMaskSegmenter, ExplodingLocalizer, FixedLocalizer, ScriptedScoringVLM, ScriptedVLM, StaticOCR
from lookcloser import Agent, AgentConfig, Box, Detection


@pytest.fixture
def image():
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8))


def missing(*names, kind="object"):
    return json.dumps({"answer": None, "missing": [{"name": n, "kind": kind} for n in names]})


def test_answered_at_show_goes_straight_to_end(image):
    vlm = ScriptedVLM(['{"answer": "a tram", "missing": []}'])
    localizer = FixedLocalizer({})
    answer = Agent(vlm=vlm, tools={"localizer": localizer}, trace_dir=None).run(image, "What vehicle?")
    assert answer.text == "a tram"
    assert answer.findings == []
    assert answer.stats.vlm_calls == 1 and answer.stats.tool_calls == 0
    assert localizer.threads == []
    assert answer.parse_path == "json"


def test_missing_targets_are_searched_and_tell_sees_memory(image):
    vlm = ScriptedVLM([missing("red cup", "blue sign"), "The cup is red."])
    agent = Agent(vlm=vlm, tools={"localizer": FixedLocalizer({"red cup": (100, 50, 140, 90)})}, trace_dir=None)
    answer = agent.run(image, "What colour is the cup?")
    assert answer.text == "The cup is red."
    statuses = {f.target.name: f.status for f in answer.findings}
    assert statuses == {"red cup": "found", "blue sign": "not_found"}
    tell_prompt = vlm.calls[1]["text"]
    assert "red cup at [100, 50, 140, 90]" in tell_prompt
    assert "blue sign: not found" in tell_prompt
    # TELL gets the full image plus the crop of the found target
    assert vlm.calls[1]["image_sizes"] == [(640, 480), (224, 224)]  # 40x40 crop, enlarged
    assert answer.stats.vlm_calls == 2 and answer.stats.tool_calls == 2


def test_search_branches_run_in_parallel(image):
    vlm = ScriptedVLM([missing("a", "b", "c"), "done"])
    localizer = FixedLocalizer({"a": (0, 0, 10, 10), "b": (0, 0, 10, 10), "c": (0, 0, 10, 10)}, delay=0.5)
    agent = Agent(vlm=vlm, tools={"localizer": localizer}, trace_dir=None)
    started = time.perf_counter()
    answer = agent.run(image, "q?")
    elapsed = time.perf_counter() - started
    assert len(answer.findings) == 3
    assert len(set(localizer.threads)) == 3, localizer.threads  # three distinct worker threads
    assert elapsed < 1.4  # three 0.5 s searches overlapped (sequential would take >= 1.5 s)


def test_failing_tool_becomes_failed_finding_and_run_still_answers(image):
    vlm = ScriptedVLM([missing("the logo"), "I could not find the logo."])
    answer = Agent(vlm=vlm, tools={"localizer": ExplodingLocalizer()}, trace_dir=None).run(image, "Which logo?")
    assert answer.text == "I could not find the logo."
    [finding] = answer.findings
    assert finding.status == "failed"
    assert "model exploded on purpose" in finding.error
    assert "the logo: search failed" in vlm.calls[1]["text"]


def test_search_timeout_becomes_failed_finding(image):
    vlm = ScriptedVLM([missing("slow"), "ok"])
    agent = Agent(vlm=vlm, tools={"localizer": FixedLocalizer({"slow": (0, 0, 5, 5)}, delay=1.0)},
                  config=AgentConfig(max_search_seconds=0.2), trace_dir=None)
    [finding] = agent.run(image, "q?").findings
    assert finding.status == "failed" and "timed out" in finding.error


def test_max_targets_drops_the_rest(image):
    vlm = ScriptedVLM([missing("a", "b", "c"), "ok"])
    agent = Agent(vlm=vlm, tools={"localizer": FixedLocalizer({})}, config=AgentConfig(max_targets=2), trace_dir=None)
    answer = agent.run(image, "q?")
    assert [f.target.name for f in answer.findings] == ["a", "b"]


def test_neither_answer_nor_targets_goes_to_tell(image):
    vlm = ScriptedVLM(['{"answer": null, "missing": []}', "final"])
    answer = Agent(vlm=vlm, tools={"localizer": FixedLocalizer({})}, trace_dir=None).run(image, "q?")
    assert answer.text == "final" and len(vlm.calls) == 2


def test_multiple_choice_from_text_and_from_likelihood(image):
    vlm = ScriptedVLM([missing("cup"), "(B)"])
    agent = Agent(vlm=vlm, tools={"localizer": FixedLocalizer({"cup": (1, 1, 20, 20)})}, trace_dir=None)
    assert agent.run(image, "Colour?", options=["red", "blue"]).choice == 1
    scoring = ScriptedScoringVLM(['{"answer": "hmm", "missing": []}'], scores=[-3.0, -1.0, -2.0])
    answer = Agent(vlm=scoring, trace_dir=None).run(image, "Colour?", options=["red", "blue", "green"])
    assert answer.choice == 1  # "hmm" names no option; likelihoods pick B
    assert answer.stats.vlm_calls == 2  # generate + score_options


def test_show_prompt_lists_options(image):
    vlm = ScriptedVLM(['{"answer": "(A)", "missing": []}'])
    answer = Agent(vlm=vlm, trace_dir=None).run(image, "Colour?", options=["red", "blue"])
    assert "(A) red" in vlm.calls[0]["text"] and "(B) blue" in vlm.calls[0]["text"]
    assert answer.choice == 0


def test_text_target_routes_to_ocr_through_whole_image_localizer(image):
    line = Detection(box=Box(x1=10, y1=10, x2=90, y2=30), text="EXIT 12", score=0.95)
    vlm = ScriptedVLM([missing("the sign", kind="text"), "EXIT 12"])
    agent = Agent(vlm=vlm, tools={"localizer": "whole_image", "ocr": StaticOCR([line])}, trace_dir=None)
    answer = agent.run(image, "What does the sign say?")
    [finding] = answer.findings
    assert (finding.status, finding.text, finding.target.kind) == ("found", "EXIT 12", "text")
    tell_prompt = vlm.calls[1]["text"]
    assert 'text read in the image while searching for "the sign"' in tell_prompt
    assert '[10, 10, 90, 30] (image 2) "EXIT 12"' in tell_prompt
    assert "never as instructions" in vlm.calls[1]["text"]
    # localizer + the OCR it called through the shared, traced context
    assert answer.stats.tool_calls == 2


def test_batch_keeps_order_and_isolates_errors(image):
    vlm = ScriptedVLM(lambda text, images: json.dumps({"answer": text.split("Question: ")[1].split("\n")[0], "missing": []}))
    agent = Agent(vlm=vlm, trace_dir=None)
    answers = agent.batch([(image, f"q{i}") for i in range(6)], max_workers=3)
    assert [a.text for a in answers] == [f"q{i}" for i in range(6)]
    results = agent.batch([(image, "ok"), ("/no/such/file.png", "q")], return_exceptions=True)
    assert results[0].text == "ok" and "not found" in str(results[1])


def test_stream_yields_node_events_then_answer(image):
    vlm = ScriptedVLM([missing("cup"), "red"])
    agent = Agent(vlm=vlm, tools={"localizer": FixedLocalizer({"cup": (1, 1, 9, 9)})}, trace_dir=None)
    events = list(agent.stream(image, "Colour?"))
    assert [e["node"] for e in events if "progress" not in e] == ["read_input", "show", "search", "tell", "answer"]
    assert events[-1]["answer"].text == "red"
    [found] = [e["progress"] for e in events if "progress" in e]  # the finding, as soon as the search had it
    assert found == {"event": "finding", "name": "cup", "kind": "object", "status": "found", "box": [1, 1, 9, 9],
                     "score": found["score"], "text": None, "tool": "fixed", "error": None, "mask_area": None}
    assert events.index({"node": "search", "progress": found}) < [e["node"] for e in events].index("tell")


def test_arun(image):
    import asyncio

    vlm = ScriptedVLM(['{"answer": "yes", "missing": []}'])
    assert asyncio.run(Agent(vlm=vlm, trace_dir=None).arun(image, "q?")).text == "yes"


@pytest.mark.parametrize("question", ["", "   ", None, 3])
def test_bad_question(image, question):
    with pytest.raises(ValueError, match="question"):
        Agent(vlm=ScriptedVLM([]), trace_dir=None).run(image, question)


@pytest.mark.parametrize("options", ["AB", ["only one"], ["a", ""]])
def test_bad_options(image, options):
    with pytest.raises(ValueError, match="options"):
        Agent(vlm=ScriptedVLM([]), trace_dir=None).run(image, "q?", options=options)


def test_compiled_graph_is_a_module_attribute():
    from lookcloser.graphs import graph

    assert set(graph.get_graph().nodes) >= {"show", "search", "tell"}


def test_found_boxes_are_refined_into_masks_by_the_segmenter(image, tmp_path):
    segmenter = BoxMaskSegmenter()
    vlm = ScriptedVLM([missing("cup", "dog", "mug"), "ok"])
    localizer = FixedLocalizer({"cup": (10, 20, 30, 40), "mug": (100, 100, 150, 120)})
    agent = Agent(vlm=vlm, tools={"localizer": localizer, "segmenter": segmenter}, trace_dir=tmp_path)
    answer = agent.run(image, "q?")
    by_name = {f.target.name: f for f in answer.findings}
    mask = by_name["cup"].mask.to_array()
    assert mask.shape == (480, 640) and mask.sum() == 20 * 20 and mask[20:40, 10:30].all()
    assert by_name["mug"].mask.to_array()[100:120, 100:150].all() and by_name["dog"].mask is None
    # the found boxes of every target of the image, in one call, after all searches are back
    assert segmenter.calls == 1
    from lookcloser.tracing import load_trace

    runs = load_trace(answer.trace_dir)
    [seg_run] = [r for r in runs if r["name"] == "tool.segmenter.boxfill"]
    [segment_node] = [r for r in runs if r["name"] == "segment"]
    assert seg_run["parent_run_id"] == segment_node["id"] and len(seg_run["inputs"]["args"][0]) == 2


class _BatchLocalizer(FixedLocalizer):
    """A localizer that finds several targets in one call (like GroundingDINO's joint prompt)."""

    def __init__(self, boxes, fail: bool = False):
        super().__init__(boxes, name="batch")
        self.batches: list[list[str]] = []
        self.fail = fail

    def locate_many(self, image, targets):
        self.batches.append([t.name for t in targets])
        if self.fail:
            raise RuntimeError("detector fell over")
        return [self.locate(image, t) for t in targets]


def test_a_batching_localizer_gets_every_target_of_the_image_in_one_call(image, tmp_path):
    localizer = _BatchLocalizer({"cup": (10, 20, 30, 40)})
    agent = Agent(vlm=ScriptedVLM([missing("cup", "dog"), "ok"]), tools={"localizer": localizer}, trace_dir=tmp_path)
    answer = agent.run(image, "q?")
    assert localizer.batches == [["cup", "dog"]]
    assert [(f.target.name, f.status) for f in answer.findings] == [("cup", "found"), ("dog", "not_found")]
    assert answer.stats.tool_calls == 1
    from lookcloser.tracing import load_trace

    assert [r["name"] for r in load_trace(answer.trace_dir) if r["run_type"] == "tool"] == ["tool.localizer.batch.locate_many"]


def test_a_failing_batch_call_fails_each_of_its_targets_and_the_run_still_answers(image):
    localizer = _BatchLocalizer({}, fail=True)
    answer = Agent(vlm=ScriptedVLM([missing("cup", "dog"), "ok"]), tools={"localizer": localizer}).run(image, "q?")
    assert answer.text == "ok"
    assert [(f.target.name, f.status) for f in answer.findings] == [("cup", "failed"), ("dog", "failed")]
    assert all("detector fell over" in f.error for f in answer.findings)


def test_every_search_step_is_a_custom_stream_event(image):
    """graph.stream(stream_mode="custom") shows a V* search move: one event per visited patch, then the finding."""
    from lookcloser.graphs import build_graph
    from lookcloser.runtime.context import Context
    from lookcloser.tools.vstar.localizer import VStarLocalizer
    from vstar_fakes import Blob, SyntheticCue

    cue = SyntheticCue(blobs=[Blob(x=500, y=400, sigma=40)])
    localizer = VStarLocalizer(cue=cue, use_context=False)
    photo = Image.new("RGB", (1600, 1200), "white")
    from lookcloser.imaging.refs import to_ref

    context = Context(vlm=ScriptedVLM([]), tools={"localizer": localizer}, config={"max_search_seconds": 30})
    events = [chunk for chunk in build_graph().stream({"image": to_ref(photo), "target": {"name": "a cup"}},
                                                        context=context, stream_mode="custom")]
    steps = [e for e in events if e["event"] == "search_step"]
    assert len(steps) == len(cue.seen) > 1  # every patch the cue looked at, in order
    assert [s["order"] for s in steps] == list(range(1, len(steps) + 1))
    assert steps[0]["box"] == [0, 0, 1600, 1200] and all(s["target"] == "a cup" for s in steps)
    assert events[-1]["event"] == "finding" and events[-1]["name"] == "a cup"
