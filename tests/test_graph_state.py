"""The graph as LangGraph users hold it: plain-JSON state, checkpointers, resume, chat input, image refs."""

from __future__ import annotations

import base64
import io
import json
import sqlite3

import numpy as np
import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver
from PIL import Image

from doubles import FixedLocalizer, ScriptedVLM
from lookcloser.core.errors import ImageError
from lookcloser.graphs import build_graph
from lookcloser.runtime.context import Context


def data_url(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture
def photo():
    return Image.fromarray(np.random.default_rng(1).integers(0, 255, (60, 80, 3), dtype=np.uint8))


def missing(*names):
    return json.dumps({"answer": None, "missing": [{"name": n, "kind": "object"} for n in names]})


def context(vlm, **config):
    return Context(vlm=vlm, tools={"localizer": FixedLocalizer({"cup": (5, 6, 30, 40)})}, config=config)


def test_state_is_plain_json_and_survives_a_strict_checkpoint_round_trip(photo):
    graph = build_graph(checkpointer=InMemorySaver())
    thread = {"configurable": {"thread_id": "a"}}
    vlm = ScriptedVLM([missing("cup", "dog"), "red"])
    out = graph.invoke({"image": data_url(photo), "question": "Colour?"}, thread, context=context(vlm))
    assert out["answer"] == "red"
    values = graph.get_state(thread).values
    plain = {k: v for k, v in values.items() if k != "messages"}
    assert json.loads(json.dumps(plain)) == plain  # nothing but JSON: no PIL images, no pydantic objects
    assert {f["target"]["name"]: f["status"] for f in values["findings"]} == {"cup": "found", "dog": "not_found"}
    assert values["stats"] == {"vlm_calls": 2, "tool_calls": 2, "search_steps": 0, "images_sent": 3}  # SHOW: photo; TELL: photo + crop
    strict = JsonPlusSerializer(allowed_msgpack_modules=None)  # what LANGGRAPH_STRICT_MSGPACK=true allows
    assert strict.loads_typed(strict.dumps_typed(values)) == values


def test_sqlite_checkpoint_interrupt_and_resume_in_a_new_graph(photo, tmp_path):
    path = tmp_path / "threads.sqlite"
    thread = {"configurable": {"thread_id": "t1"}}
    vlm = ScriptedVLM([missing("cup"), "red"])
    with sqlite3.connect(path, check_same_thread=False) as conn:
        first = build_graph(checkpointer=SqliteSaver(conn), interrupt_before=["tell"])
        first.invoke({"image": data_url(photo), "question": "Colour?"}, thread, context=context(vlm))
        paused = first.get_state(thread)
        assert paused.next == ("tell",) and len(vlm.calls) == 1
        assert paused.values["findings"][0]["box"] == {"x1": 5.0, "y1": 6.0, "x2": 30.0, "y2": 40.0}
    with sqlite3.connect(path, check_same_thread=False) as conn:  # a fresh graph and connection: state from disk
        second = build_graph(checkpointer=SqliteSaver(conn), interrupt_before=["tell"])
        out = second.invoke(None, thread, context=context(vlm))
        assert out["answer"] == "red" and len(vlm.calls) == 2  # SHOW was not asked again
        assert "cup at [5, 6, 30, 40]" in vlm.calls[1]["text"]
        assert second.get_state(thread).next == ()


def test_chat_messages_in_and_an_ai_message_out_with_follow_up_on_the_same_image(photo):
    graph = build_graph(checkpointer=InMemorySaver())
    thread = {"configurable": {"thread_id": "chat"}}
    vlm = ScriptedVLM(['{"answer": "a square", "missing": []}', '{"answer": "blue", "missing": []}'])
    first = HumanMessage(content=[{"type": "text", "text": "What shape?"},
                                  {"type": "image_url", "image_url": {"url": data_url(photo)}}])
    out = graph.invoke({"messages": [first]}, thread, context=context(vlm))
    assert out["answer"] == "a square"
    assert isinstance(out["messages"][-1], AIMessage) and out["messages"][-1].content == "a square"
    out = graph.invoke({"messages": [HumanMessage(content="And its colour?")]}, thread, context=context(vlm))
    assert out["answer"] == "blue" and [m.type for m in out["messages"]] == ["human", "ai", "human", "ai"]
    assert "And its colour?" in vlm.calls[1]["text"] and vlm.calls[1]["image_sizes"] == [(80, 60)]


def test_a_jpeg_in_agent_chat_uis_image_block_is_read_as_base64_not_as_a_path(photo):
    """Agent Chat UI sends {"type": "image", "mimeType", "data": raw base64}; a JPEG's base64 starts "/9j/"."""
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG")
    data = base64.b64encode(buffer.getvalue()).decode()
    assert data.startswith("/9j/")
    vlm = ScriptedVLM(['{"answer": "a square", "missing": []}'])
    message = HumanMessage(content=[{"type": "text", "text": "What shape?"},
                                    {"type": "image", "mimeType": "image/jpeg", "data": data}])
    out = build_graph().invoke({"messages": [message]}, context=context(vlm))
    assert out["answer"] == "a square" and vlm.calls[0]["image_sizes"] == [(80, 60)]


def test_search_only_target_skips_show_and_tell(photo):
    vlm = ScriptedVLM([])  # any VLM call would fail: it has no replies
    out = build_graph().invoke({"image": data_url(photo), "target": {"name": "cup"}}, context=context(vlm))
    assert out["findings"][0]["status"] == "found" and out.get("answer") is None and vlm.calls == []


def test_file_paths_only_inside_image_dir(photo, tmp_path):
    inside = tmp_path / "ok" / "photo.png"
    inside.parent.mkdir()
    photo.save(inside)
    graph = build_graph()
    vlm = ScriptedVLM(['{"answer": "fine", "missing": []}'] * 2)
    with pytest.raises(ImageError, match="image_dir"):
        graph.invoke({"image": str(inside), "question": "q?"}, context=context(vlm))
    out = graph.invoke({"image": "photo.png", "question": "q?"}, context=context(vlm, image_dir=str(inside.parent)))
    assert out["answer"] == "fine"
    with pytest.raises(ImageError, match="outside the allowed image_dir"):
        graph.invoke({"image": "../ok/../../etc/passwd", "question": "q?"},
                     context=context(vlm, image_dir=str(inside.parent)))


def test_bad_context_and_input_name_the_problem(photo):
    with pytest.raises(ValueError, match="max_targets"):
        Context(config={"max_targets": 0})
    with pytest.raises(ValueError, match="needs 'image' and 'question'"):
        build_graph().invoke({"question": "no image"}, context=context(ScriptedVLM([])))
    with pytest.raises(ImageError, match="not fetched"):
        build_graph().invoke({"image": "https://example.com/a.jpg", "question": "q"}, context=context(ScriptedVLM([])))


def test_a_raw_base64_jpeg_as_the_image_input_is_read_as_base64_not_as_a_path(photo):
    """The plain `image` input takes raw base64 too; a JPEG's ("/9j/...") must not be taken for a path."""
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG")
    data = base64.b64encode(buffer.getvalue()).decode()
    vlm = ScriptedVLM(['{"answer": "a square", "missing": []}'])
    out = build_graph().invoke({"image": data, "question": "What shape?"}, context=context(vlm))
    assert out["answer"] == "a square" and vlm.calls[0]["image_sizes"] == [(80, 60)]
    # a real absolute path is still a path (refused here: no image_dir), never decoded as base64
    with pytest.raises(Exception, match="file path"):
        build_graph().invoke({"image": "/9j/some/where/photo.jpg", "question": "?"}, context=context(vlm))
