"""The zoom strategy through the real graph: a scripted tool-calling VLM behind the OpenAI backend (tests/
openai_stub.py) zooms, reads pixels of the views it is sent, calls `find` (the real V* text search with the
real rapidocr), and is bounded when it never stops."""

from __future__ import annotations

import json
import re
import time

import pytest
from PIL import Image, ImageDraw, ImageFont

from lookcloser import Agent, AgentConfig
from lookcloser.core import zoom_calls as zc
from lookcloser.core.errors import SettingsError
from tests.openai_stub import StubServer, completion
from tests.zoom_doubles import ZoomingReader, code_photo, images_of

NUMBER = 2755
QUESTION = "What number does the row of black and white cells encode?"


def _agent(stub: StubServer, **config) -> Agent:
    return Agent(vlm=stub.spec, config=AgentConfig(strategy="zoom", **config))


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return code_photo(NUMBER)


def test_native_tool_calls_zoom_twice_and_read_the_detail(photo):
    with StubServer() as stub:
        reader = ZoomingReader("native")
        stub.script = reader
        answer = _agent(stub).run(photo, QUESTION)
    assert answer.text == str(NUMBER)
    # unreadable in the overview and in the first view: only the second view reads
    assert reader.readings[:2] == [None, None] and reader.readings[2] == NUMBER
    assert answer.stats.zoom_turns == 3 and answer.stats.vlm_calls == 3
    assert answer.stats.images_sent == 1 + 2 + 3  # the photo, then each view once more per turn
    first, second, third = stub.requests
    assert [t["function"]["name"] for t in first["tools"]] == ["image_zoom_in_tool", "find"]
    roles = [m["role"] for m in third["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "user", "assistant", "tool", "user"]
    call = third["messages"][5]["tool_calls"][0]
    assert call["id"] == "call_2" and json.loads(call["function"]["arguments"])["img_idx"] == 1
    assert third["messages"][6]["tool_call_id"] == "call_2"


def test_the_answer_rests_on_the_views_pixels(photo):
    """The same calls read in another coordinate system cut other boxes: the reader cannot read the code."""
    with StubServer() as stub:
        reader = ZoomingReader("native")
        stub.script = reader
        answer = _agent(stub, zoom_coords="absolute").run(photo, QUESTION)
    assert answer.text != str(NUMBER)
    assert NUMBER not in reader.readings


def test_the_views_show_exactly_the_boxes_asked_for(photo):
    with StubServer() as stub:
        stub.script = ZoomingReader("native")
        _agent(stub).run(photo, QUESTION)
        views = images_of(stub.requests[-1])[1:]
    quarter = photo.crop((2000, 1500, 4000, 3000)).resize(views[0].size, Image.Resampling.LANCZOS)
    close = photo.crop((2960, 2160, 3080, 2240)).resize(views[1].size, Image.Resampling.BICUBIC)
    for view, expected in ((views[0], quarter), (views[1], close)):
        diff = _mean_abs_diff(view, expected)
        assert diff < 6, diff  # JPEG on the way; a box off by a cell would differ by tens
    assert views[0].width * views[0].height <= AgentConfig().max_zoom_pixels
    assert views[1].size == (480, 320)  # 120x80 photo pixels, enlarged 4x (the upscale limit)


def _mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    import numpy as np

    return float(np.abs(np.asarray(a, dtype=np.float32) - np.asarray(b.convert("RGB"), dtype=np.float32)).mean())


def test_hermes_text_calls_work_without_native_tools(photo):
    with StubServer() as stub:
        stub.script = ZoomingReader("hermes")
        answer = _agent(stub, zoom_calls="text").run(photo, QUESTION)
        requests = stub.requests
    assert answer.text == str(NUMBER)
    assert all("tools" not in r for r in requests)
    system = requests[0]["messages"][0]["content"]
    assert "<tools>" in system and '"name": "image_zoom_in_tool"' in system
    last = requests[-1]["messages"]
    assert [m["role"] for m in last] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert last[3]["content"][0]["text"] == "<tool_response>"


def test_text_calls_in_a_native_reply_are_read(photo):
    """A server without a tool parser leaves the model's Hermes calls in its text: they still zoom."""
    with StubServer() as stub:
        stub.script = ZoomingReader("hermes")
        answer = _agent(stub).run(photo, QUESTION)
    assert answer.text == str(NUMBER)


def test_mini_o3_grounding_form_is_0_to_1_of_the_named_observation(photo):
    def mini_o3(request):
        images = images_of(request)
        if len(images) == 1:
            return completion('<think>zoom</think><grounding>{"bbox_2d": [0.5, 0.5, 1.0, 1.0], '
                              '"source": "original_image"}</grounding>')
        if len(images) == 2:
            return completion('<grounding>{"bbox_2d": [0.48, 0.44, 0.54, 0.4933], "source": "observation_1"}'
                              '</grounding>')
        from tests.zoom_doubles import read_bits
        return completion(f"<answer>{read_bits(images[-1], (2960.0, 2160.0, 3080.0, 2240.0))}</answer>")

    with StubServer() as stub:
        stub.script = mini_o3
        answer = _agent(stub, zoom_calls="text").run(photo, QUESTION)
    assert answer.text == str(NUMBER)


def test_find_returns_text_read_by_rapidocr():
    image = Image.new("RGB", (1600, 1200), (235, 235, 235))
    ImageDraw.Draw(image).text((1100, 900), "GATE 42", fill="black", font=ImageFont.load_default(size=64))

    def asker(request):
        messages = request["messages"]
        if len(messages) == 2:
            reply = completion(None)
            reply["choices"][0]["message"]["tool_calls"] = [{"id": "f1", "type": "function", "function": {
                "name": "find", "arguments": json.dumps({"target": "the gate sign", "kind": "text"})}}]
            return reply
        tool = next(m for m in messages if m["role"] == "tool")["content"]
        read = re.findall(r'reads "([^"]+)"', tool)
        return completion(f"<answer>{read[0] if read else 'nothing'}</answer>")

    with StubServer() as stub:
        stub.script = asker
        answer = _agent(stub).run(image, "Which gate is this?")
        tool_text = next(m for m in stub.requests[-1]["messages"] if m["role"] == "tool")["content"]
    assert answer.text == "GATE 42"
    assert any(f.status == "found" and f.text == "GATE 42" for f in answer.findings)
    assert "with vstar" in tool_text and answer.stats.tool_calls >= 1


def test_a_caller_that_zooms_forever_stops_at_the_turn_budget(photo):
    def forever(request):
        return completion('<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [0, 0, 500, 500], '
                          '"label": "again"}}</tool_call>')

    with StubServer() as stub:
        stub.script = forever
        started = time.perf_counter()
        answer = _agent(stub, max_zoom_turns=4, max_zoom_images=3).run(photo, QUESTION)
        seconds = time.perf_counter() - started
        requests = stub.requests
    assert len(requests) == 4 and answer.stats.zoom_turns == 4
    assert answer.text is None
    assert any("max_zoom_turns" in n for n in answer.notes)
    assert "No more tool calls" in json.dumps(requests[-1]["messages"][-1])
    assert "tools" not in requests[-1]  # the last turn is not offered tools
    assert len(images_of(requests[-1])) == 3  # the photo + the 2 newest views (max_zoom_images=3)
    assert "is no longer shown" in json.dumps(requests[-1])
    assert seconds < 60


def test_a_caller_past_the_time_limit_ends_with_its_best_answer(photo):
    def slow(request):
        time.sleep(0.4)
        return completion('I think it is 7. <tool_call>{"name": "image_zoom_in_tool", "arguments": '
                          '{"bbox_2d": [0, 0, 500, 500], "label": "x"}}</tool_call>')

    with StubServer() as stub:
        stub.script = slow
        answer = _agent(stub, max_zoom_turns=64, timeout=1.5).run(photo, QUESTION)
    assert 1 <= answer.stats.zoom_turns < 64
    assert any("time limit" in n for n in answer.notes)


def test_malformed_calls_are_told_to_the_model_and_noted(photo):
    replies = iter([
        '<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [900, 900, 100, 100], "label": "x"}}'
        '</tool_call><tool_call>{not json}</tool_call><tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>',
        '<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [2000, 2000, 3000, 3000], "label": "y"}}'
        '</tool_call><tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2]}}</tool_call>'
        '<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [0, 0, 9, 9], "img_idx": 7}}</tool_call>',
        "<answer>unsure</answer>"])
    with StubServer() as stub:
        stub.script = lambda request: completion(next(replies))
        answer = _agent(stub, zoom_calls="text").run(photo, QUESTION)
        last = json.dumps(stub.requests[-1])
    assert answer.text == "unsure"
    assert "inverted" in last and "outside the image" in last and "img_idx 7 names no image" in last
    assert "bbox_2d must be 4 numbers" in last
    assert any("could not be read" in n for n in answer.notes) and any("rm_rf" in n for n in answer.notes)


def test_options_pick_a_choice_from_the_answer(photo):
    with StubServer() as stub:
        stub.script = ZoomingReader("native")
        answer = _agent(stub).run(photo, QUESTION, options=["1234", str(NUMBER)])
    assert answer.choice == 1 and answer.choice_path == "text"


def test_zoom_and_finding_events_stream(photo):
    with StubServer() as stub:
        stub.script = ZoomingReader("native")
        events = list(_agent(stub).stream(photo, QUESTION))
    zooms = [e["progress"] for e in events if e.get("node") == "zoom_tools" and "progress" in e]
    assert [z["view"] for z in zooms] == [1, 2] and zooms[1]["of_image"] == 1
    assert zooms[1]["box"] == [2960, 2160, 3080, 2240]
    assert events[-1]["answer"].text == str(NUMBER)


def test_the_trace_has_each_turn_as_a_child_run(photo, tmp_path):
    from lookcloser.tracing.store import load_trace  # noqa: PLC0415

    with StubServer() as stub:
        stub.script = ZoomingReader("native")
        answer = Agent(vlm=stub.spec, strategy="zoom", trace_dir=tmp_path).run(photo, QUESTION)
    runs = load_trace(answer.trace_dir)
    by_id = {r["id"]: r for r in runs}
    root = next(r for r in runs if not r.get("parent_run_id"))
    turns = [r for r in runs if r.get("parent_run_id") == root["id"]]
    assert [r["name"] for r in turns] == ["read_input", "zoom_model", "zoom_tools", "zoom_model", "zoom_tools",
                                          "zoom_model"]
    calls = [r for r in runs if r["run_type"] == "llm"]
    assert len(calls) == 3 and all(by_id[r["parent_run_id"]]["name"] == "zoom_model" for r in calls)


def test_checkpoints_hold_boxes_not_pixels(photo):
    from langgraph.checkpoint.memory import InMemorySaver  # noqa: PLC0415

    from lookcloser.graphs.agent_graph import build_graph  # noqa: PLC0415
    from lookcloser.imaging.refs import to_ref  # noqa: PLC0415

    graph = build_graph(checkpointer=InMemorySaver())
    with StubServer() as stub:
        stub.script = ZoomingReader("native")
        config = {"configurable": {"thread_id": "t"}}
        result = graph.invoke({"image": to_ref(photo), "question": QUESTION}, config,
                              context={"vlm": stub.spec, "config": {"strategy": "zoom"}})
    assert result["answer"] == str(NUMBER)
    state = graph.get_state(config).values
    boxes = [v["box"] for v in state["views"]]
    assert [[round(v) for v in b] for b in boxes] == [[2000, 1500, 4000, 3000], [2960, 2160, 3080, 2240]]
    assert len(json.dumps(state["zoom_turns"])) < 5000


def test_a_bad_strategy_is_one_line():
    with pytest.raises(SettingsError, match="strategy must be one of vstar, zoom, got 'zoomy'"):
        Agent(vlm="openai:x@http://127.0.0.1:9/v1", strategy="zoomy")


@pytest.mark.parametrize("text, calls, answer", [
    ('<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2, 3, 4], "label": "a"}}</tool_call>',
     [("image_zoom_in_tool", "hermes")], None),
    ('<tool_call>{"function": "zoom_in", "bbox_2d": [1, 2, 3, 4], "label": "a"}</tool_call>',
     [("image_zoom_in_tool", "hermes")], None),
    ('<grounding>{"bbox_2d": [0.1, 0.1, 0.2, 0.2], "source": "observation_2"}</grounding>',
     [("image_zoom_in_tool", "grounding")], None),
    ("<think>hmm <answer>no</answer></think> The answer: <answer>blue</answer>", [], "blue"),
    ("<think>looking</think> It is red.", [], "It is red."),
    ('<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2, 3, 4]', [], None),
])
def test_reply_forms(text, calls, answer):
    parsed = zc.parse_reply(text)
    assert [(c.name, c.form) for c in parsed.calls] == calls
    assert parsed.answer == answer
    if not calls and answer is None:
        assert parsed.notes  # the cut call is named, not dropped in silence


def test_a_runaway_reply_is_read_in_milliseconds():
    text = '<tool_call>{"name": "find", "arguments": {"target": "x"}}</tool_call>' * 5000
    started = time.perf_counter()
    parsed = zc.parse_reply(text)
    assert time.perf_counter() - started < 1.0
    assert len(parsed.calls) == zc.MAX_CALLS and any("only the first" in n for n in parsed.notes)


def test_eval_records_the_strategy_and_compares_it(tmp_path):
    from typer.testing import CliRunner  # noqa: PLC0415

    from lookcloser.entrypoints.cli import app  # noqa: PLC0415
    from tests.eval_helpers import knowing_reply, make_vstar  # noqa: PLC0415
    from tests.openai_stub import prompt_text  # noqa: PLC0415

    def zoom_once(request):
        if len(images_of(request)) == 1:
            return completion('<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [0, 0, 500, 500], '
                              '"label": "the object"}}</tool_call>')
        return completion(f"<answer>{json.loads(knowing_reply(prompt_text(request)))['answer']}</answer>")

    data = make_vstar(tmp_path / "vstar")
    runner = CliRunner()
    with StubServer() as stub:
        stub.script = lambda request: json.loads(knowing_reply(prompt_text(request)))["answer"]
        base = ["eval", str(data), "--vlm", stub.spec, "--tool", "localizer=whole_image", "--seed", "1"]
        assert runner.invoke(app, [*base, "--out", str(tmp_path / "vstar_run")]).exit_code == 0
        stub.script = zoom_once
        zoomed = runner.invoke(app, [*base, "--out", str(tmp_path / "zoom_run"), "--strategy", "zoom"])
    assert zoomed.exit_code == 0, zoomed.output
    summary = json.loads((tmp_path / "zoom_run" / "summary.json").read_text())
    assert summary["settings"]["config"]["strategy"] == "zoom"
    overall = summary["overall"]
    assert overall["accuracy"] == 1.0 and overall["zoom_turns_per_item"] == 2 and overall["vlm_calls_per_item"] == 2
    assert overall["images_sent_per_item"] == 3  # the photo, then the photo and the view
    compared = runner.invoke(app, ["eval", "--compare", str(tmp_path / "vstar_run"), str(tmp_path / "zoom_run")],
                             terminal_width=200)
    assert compared.exit_code == 0, compared.output
    line = next(row for row in compared.output.splitlines() if row.strip("│ ").startswith("strategy"))
    assert "vstar" in line and "zoom" in line
    bad = runner.invoke(app, [*base, "--out", str(tmp_path / "x"), "--strategy", "zoomy"])
    assert bad.exit_code == 2 and "--strategy must be one of vstar, zoom, got 'zoomy'" in bad.output


def test_a_tiny_random_qwen3_vl_runs_the_zoom_loop_to_its_bound(tmp_path):
    """The transformers backend (text-form calls, the family's real processor): the tiny model is steered to
    write a zoom call every turn, so each turn gets one more view, until the budget ends the run."""
    pytest.importorskip("torch")
    from transformers import AutoProcessor, GenerationConfig  # noqa: PLC0415

    from lookcloser.vlm.transformers_vlm import TransformersVLM  # noqa: PLC0415
    from tests import tiny_vlms  # noqa: PLC0415

    path = tiny_vlms.build("qwen3_vl", tmp_path / "qwen3_vl")
    call = ('<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [0, 0, 500, 500], '
            '"label": "the sign"}}</tool_call>')
    generation = GenerationConfig.from_pretrained(path)
    eos = generation.eos_token_id if isinstance(generation.eos_token_id, int) else generation.eos_token_id[0]
    generation.sequence_bias = tiny_vlms.steering(AutoProcessor.from_pretrained(path).tokenizer, eos, call)
    generation.save_pretrained(path)
    vlm = TransformersVLM(str(path), device="cpu", dtype="float32")
    agent = Agent(vlm=vlm, tools={"localizer": "whole_image"},
                  config=AgentConfig(strategy="zoom", max_zoom_turns=3, max_new_tokens=80))
    answer = agent.run(Image.new("RGB", (640, 480), (200, 30, 30)), "What does the sign say?")
    assert answer.stats.zoom_turns == 3 and answer.stats.images_sent == 1 + 2 + 3
    assert answer.text is None and any("max_zoom_turns=3" in n for n in answer.notes)


class _ToolCallingChat:
    """Built lazily (langchain-core's BaseChatModel): a LangChain chat model whose `bind_tools` binds the schemas
    and whose replies come from a ZoomingReader reading the images of the messages it is sent."""

    @staticmethod
    def make(reader: ZoomingReader):
        from langchain_core.language_models import BaseChatModel  # noqa: PLC0415
        from langchain_core.messages import AIMessage  # noqa: PLC0415
        from langchain_core.outputs import ChatGeneration, ChatResult  # noqa: PLC0415

        class ToolChat(BaseChatModel):
            seen: list = []

            @property
            def _llm_type(self) -> str:
                return "tool-chat"

            def bind_tools(self, tools, **kwargs):
                return self.bind(tools=tools)

            def _generate(self, messages, stop=None, run_manager=None, tools=None, **kwargs):
                self.seen.append({"tools": tools, "types": [m.type for m in messages]})
                request = {"messages": [{"role": m.type, "content": m.content} for m in messages]}
                message = reader(request)["choices"][0]["message"]
                calls = [{"name": c["function"]["name"], "args": json.loads(c["function"]["arguments"]),
                          "id": c["id"]} for c in message.get("tool_calls") or []]
                return ChatResult(generations=[ChatGeneration(message=AIMessage(content=message["content"] or "",
                                                                                 tool_calls=calls))])

        return ToolChat()


def test_a_langchain_chat_model_zooms_through_bind_tools(photo):
    reader = ZoomingReader("native")
    chat = _ToolCallingChat.make(reader)
    answer = Agent(vlm=chat, strategy="zoom").run(photo, QUESTION)
    assert answer.text == str(NUMBER)
    assert [t["function"]["name"] for t in chat.seen[0]["tools"]] == ["image_zoom_in_tool", "find"]
    assert chat.seen[-1]["types"] == ["system", "human", "ai", "tool", "human", "ai", "tool", "human"]


def test_text_form_turns_stream_their_tokens(photo):
    with StubServer() as stub:
        stub.script = ZoomingReader("hermes")
        events = list(_agent(stub, zoom_calls="text").stream(photo, QUESTION))
    tokens = [e for e in events if "token" in e]
    assert tokens and {e["node"] for e in tokens} == {"zoom_model"}
    assert "<answer>2755</answer>" in "".join(e["token"] for e in tokens)
    assert stub.requests[-1]["stream"] is True


def test_an_ablation_with_the_zoom_strategy_is_refused_in_one_line():
    with pytest.raises(SettingsError, match="ablate='crop-black' applies to the vstar strategy"):
        Agent(vlm="openai:x@http://127.0.0.1:9/v1", strategy="zoom", config=AgentConfig(ablate="crop-black"))


def test_find_segments_found_objects_when_a_segmenter_is_set(photo):
    from tests.doubles import BoxMaskSegmenter, FixedLocalizer  # noqa: PLC0415

    def asker(request):
        if not any(m["role"] == "tool" for m in request["messages"]):
            reply = completion(None)
            reply["choices"][0]["message"]["tool_calls"] = [{"id": "f1", "type": "function", "function": {
                "name": "find", "arguments": json.dumps({"target": "the code"})}}]
            return reply
        return completion("<answer>found it</answer>")

    segmenter = BoxMaskSegmenter()
    with StubServer() as stub:
        stub.script = asker
        agent = Agent(vlm=stub.spec, strategy="zoom",
                      tools={"localizer": FixedLocalizer({"the code": (2990, 2190, 3046, 2213)}), "segmenter": segmenter})
        answer = agent.run(photo, QUESTION)
        tool_text = next(m for m in stub.requests[-1]["messages"] if m["role"] == "tool")["content"]
    [finding] = answer.findings
    assert segmenter.calls == 1 and finding.mask is not None and finding.mask.area == 56 * 23
    assert "the code at [748, 730, 762, 738]" in tool_text  # the box in 0-1000 of the photo, as the VLM writes it


def test_native_tool_call_turns_stream_too(photo):
    """Streamed (someone listens), each turn's tool calls arrive in pieces and are joined; the answer streams."""
    with StubServer() as stub:
        stub.script = ZoomingReader("native")
        events = list(_agent(stub).stream(photo, QUESTION))
        requests = stub.requests
    assert all(r["stream"] is True and r["tools"] for r in requests)
    assert [e["progress"]["view"] for e in events if e.get("node") == "zoom_tools" and "progress" in e] == [1, 2]
    assert "".join(e["token"] for e in events if "token" in e).endswith("<answer>2755</answer>")
    assert events[-1]["answer"].text == str(NUMBER)
