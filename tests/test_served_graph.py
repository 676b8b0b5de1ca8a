"""The graph in langgraph.json, served by `langgraph dev` (LangGraph Studio's server) and driven with
langgraph_sdk, as a LangGraph user would: both input forms, JSON context, thread state read back; the
operator's setup from the environment (LOOKCLOSER_VLM, LOOKCLOSER_CONFIG) and what a client may and may
not change in it, with runs of clients with different settings interleaved."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image

from langgraph_dev import langgraph_dev
from openai_stub import StubServer, prompt_text
from served_photos import big_sign_data_url, fetch, history_bytes, sign_data_url

pytest.importorskip("langgraph_api")
langgraph_sdk = pytest.importorskip("langgraph_sdk")


@pytest.fixture(scope="module")
def vlms():
    """The operator's VLM, another one the operator allows, and one nobody allowed (must never be called)."""
    with StubServer() as operator, StubServer() as allowed, StubServer() as foreign:
        for stub in (operator, allowed, foreign):
            stub.script = vlm_script
        yield {"operator": operator, "allowed": allowed, "foreign": foreign}


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("served_images")
    (folder / "sign.png").write_bytes(base64.b64decode(sign_data_url().split(",", 1)[1]))
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory, vlms, image_dir):
    """`langgraph dev` on a free local port, from the repository root (where langgraph.json is), with the
    operator's setup in the environment: its VLM, a folder of images it may read, limits, and what
    clients may choose (another VLM, the vstar localizer, the OCR's min_score)."""
    folder = tmp_path_factory.mktemp("langgraph_dev")
    config = folder / "operator.toml"
    config.write_text(f"""
[tools]
localizer = "whole_image"

[config]
image_dir = "{image_dir}"
max_search_seconds = 30
max_targets = 2

[serve]
vlms = ["{vlms['allowed'].spec}"]
[serve.tools]
localizer = ["vstar"]
ocr = ["tesseract"]
[serve.options]
ocr = ["min_score", "bogus"]
localizer = ["max_steps", "text_options"]
""")
    env = {"LOOKCLOSER_VLM": vlms["operator"].spec, "LOOKCLOSER_CONFIG": str(config),
           "LOOKCLOSER_BLOB_DIR": str(folder / "blobs")}
    with langgraph_dev(env, folder / "server.log") as url:
        client = langgraph_sdk.get_sync_client(url=url)
        client.log_path = folder / "server.log"  # for the test that reads what the server printed
        client.blob_dir = folder / "blobs"
        client.url = url
        yield client


def vlm_script(request: dict) -> str:
    """SHOW asks for the sign's text; TELL answers with what the memory says was read. Asked to zoom (the zoom
    strategy's tools), it calls find for the sign's text, then answers with what the call read."""
    prompt = prompt_text(request)
    if request.get("tools") or "image_zoom_in_tool" in prompt:
        if "find('the sign'" not in prompt:
            return '<tool_call>{"name": "find", "arguments": {"target": "the sign", "kind": "text"}}</tool_call>'
        return "<answer>It says GATE 42.</answer>" if "GATE 42" in prompt else "<answer>I cannot read it.</answer>"
    if "Additional visual information" not in prompt:
        return json.dumps({"answer": None, "missing": [{"name": "the sign", "kind": "text"}]})
    return "It says GATE 42." if "GATE 42" in prompt else "I cannot read it."


def ask(server, context=None, image=None, **extra):
    """One run on a new thread; the output state (raises the run's error as the SDK does)."""
    thread = server.threads.create()
    return server.runs.wait(thread["thread_id"], "lookcloser", context=context,
                            input={"image": image or sign_data_url(), "question": "What does the sign say?", **extra})


def test_image_and_question_input_with_json_context(server, vlms):
    operator = vlms["operator"]
    before = len(operator.requests)
    thread = server.threads.create()
    context = {"vlm": operator.spec, "tools": {"localizer": "whole_image", "ocr": "rapidocr"},
               "config": {"max_targets": 2}}
    out = server.runs.wait(thread["thread_id"], "lookcloser", context=context,
                           input={"image": sign_data_url(), "question": "What does the sign say?"})
    assert out["answer"] == "It says GATE 42."
    [finding] = out["findings"]
    assert finding["tool"] == "whole_image+rapidocr" and "GATE" in finding["text"]
    assert out["stats"] == {"vlm_calls": 2, "tool_calls": 2, "search_steps": 0, "images_sent": 3}  # localizer + its OCR; photo, photo + crop
    state = server.threads.get_state(thread["thread_id"])
    assert state["values"]["answer"] == "It says GATE 42." and state["next"] == []
    assert len(operator.requests) - before == 2


def test_chat_input_is_answered_with_an_ai_message(server, vlms):
    thread = server.threads.create()
    message = {"role": "user", "content": [
        {"type": "text", "text": "What does the sign say?"},
        {"type": "image_url", "image_url": {"url": sign_data_url()}}]}
    server.runs.wait(thread["thread_id"], "lookcloser", input={"messages": [message]},
                     context={"vlm": vlms["operator"].spec, "tools": {"localizer": "whole_image"}})
    messages = server.threads.get_state(thread["thread_id"])["values"]["messages"]
    assert [m["type"] for m in messages] == ["human", "ai"]
    assert messages[-1]["content"] == "It says GATE 42."


def test_a_client_without_context_gets_the_operators_setup(server, vlms):
    """Agent Chat UI sends no run context: the operator's VLM and tools answer it."""
    operator = vlms["operator"]
    before = len(operator.requests)
    thread = server.threads.create()
    message = {"role": "user", "content": [
        {"type": "text", "text": "What does the sign say?"},
        {"type": "image", "mimeType": "image/png", "data": sign_data_url().split(",", 1)[1]}]}
    server.runs.wait(thread["thread_id"], "lookcloser", input={"messages": [message]})
    values = server.threads.get_state(thread["thread_id"])["values"]
    assert values["messages"][-1]["content"] == "It says GATE 42."
    shown = values["messages"][0]["content"][1]  # the chat shows the photo: by URL, the bytes it sent
    assert shown["type"] == "image" and "data" not in shown and shown["mimeType"] == "image/png"
    assert fetch(shown["url"])[0] == base64.b64decode(message["content"][1]["data"])
    assert values["findings"][0]["tool"] == "whole_image+rapidocr"  # the operator's localizer, not the default vstar
    assert len(operator.requests) - before == 2


def test_served_graph_refuses_server_file_paths(server, vlms):
    with pytest.raises(Exception, match="outside the allowed image_dir"):
        ask(server, image="/etc/hostname")
    with pytest.raises(Exception, match="outside the allowed image_dir"):
        ask(server, image="../../../../etc/hostname")


def test_files_inside_the_operators_image_dir_are_read(server):
    assert ask(server, image="sign.png")["answer"] == "It says GATE 42."


def test_a_client_cannot_widen_file_access(server, vlms):
    foreign = vlms["foreign"]
    for context in ({"config": {"image_dir": "/"}}, {"config": {"image_dir": "/etc"}}):
        with pytest.raises(Exception, match=r"SettingsError: context 'config.image_dir' is the server operator's"):
            ask(server, context, image="/etc/hostname")
    # ... nor make the server post a file to an address of its choosing
    with pytest.raises(Exception, match=r"SettingsError: context 'vlm' names a VLM this server's operator does not"):
        ask(server, {"vlm": foreign.spec, "config": {"image_dir": "/"}}, image="/etc/hostname")
    with pytest.raises(Exception, match=r"SettingsError: context 'vlm'"):
        ask(server, {"vlm": foreign.spec})
    assert foreign.requests == []


def test_a_client_chooses_only_among_what_the_operator_allows(server, vlms):
    allowed = vlms["allowed"]
    out = ask(server, {"vlm": allowed.spec, "tools": {"ocr": {"min_score": 0.6}}})
    assert out["answer"] == "It says GATE 42." and len(allowed.requests) == 2
    refusals = {
        "'tools.localizer' = 'grounding_dino' is not allowed": {"tools": {"localizer": "grounding_dino"}},
        "option 'model' of the localizer is the server operator's": {"tools": {"localizer": {"name": "vstar",
                                                                                            "model": "/etc"}}},
        "'config.max_search_seconds' = 1000.0 is over this server's limit of 30.0": {
            "config": {"max_search_seconds": 1000}},
        "max_search_seconds: Input should be less than or equal to 86400": {"config": {"max_search_seconds": 1e10}},
        "localizer 'vstar' option 'max_steps' = {'a': 1}: Input should be a valid integer": {
            "tools": {"localizer": {"name": "vstar", "max_steps": {"a": 1}}}},
        "localizer 'vstar' option 'max_steps' = 'NaN'": {"tools": {"localizer": {"name": "vstar", "max_steps": "NaN"}}},
        "unknown option 'text_options.bogus' for localizer 'vstar'; the options of text_options are: coarse_scale, det_side": {
            "tools": {"localizer": {"name": "vstar", "text_options": {"bogus": 1}}}},
        "unknown option 'bogus' for ocr 'tesseract'": {"tools": {"ocr": {"name": "tesseract", "bogus": 1}}},
        "unknown tool role 'camera'": {"tools": {"camera": "x"}},
    }
    for message, context in refusals.items():
        with pytest.raises(Exception, match=message):
            ask(server, context)


def test_interleaved_clients_each_get_their_own_settings(server, vlms):
    """Services are shared between runs whose models are the same, but each run's config is its own:
    one SHOW names two targets; max_targets=1 drops one for that client only, in any order of runs."""
    def two_targets(request):
        prompt = prompt_text(request)
        if "Additional visual information" not in prompt:
            return json.dumps({"answer": None, "missing": [{"name": "the sign", "kind": "text"},
                                                          {"name": "the door", "kind": "object"}]})
        return "It says GATE 42."

    operator = vlms["operator"]
    operator.script = two_targets
    try:
        image = sign_data_url()
        for _ in range(2):
            strict = ask(server, {"config": {"max_targets": 1}}, image=image)
            default = ask(server, None, image=image)
            assert [t["name"] for t in strict["dropped_targets"]] == ["the door"]
            assert default["dropped_targets"] == [] and len(default["targets"]) == 2
        # a pixel limit applies to an image the server has already decoded for another client
        with pytest.raises(Exception, match="more than the limit of 1,000 \\(max_pixels\\)"):
            ask(server, {"config": {"max_pixels": 1000}}, image=image)
        assert ask(server, None, image=image)["answer"] == "It says GATE 42."
    finally:
        operator.script = vlm_script


def test_the_server_release_is_supported(server):
    """langgraph-api 0.4.x printed at start that it is End of Life (no security fixes): the dev extra
    pins a release the server does not call unsupported."""
    import importlib.metadata

    from packaging.version import Version

    assert Version(importlib.metadata.version("langgraph-api")) >= Version("0.16.7")
    printed = server.log_path.read_text(errors="replace")
    assert "langgraph_api_version" in printed  # the server's own start-up lines are there to read
    assert "end of life" not in printed.lower() and "end-of-life" not in printed.lower()


def test_a_photo_is_kept_once_on_disk(server):
    """Two questions on one photo: its bytes once in the image store (uploads under the blob folder), nothing else
    written for it (the checkpoints hold its URL)."""
    photo = Image.effect_noise((900, 700), 50).convert("RGB")
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=90)
    url = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
    before = set(server.blob_dir.rglob("*")) if server.blob_dir.exists() else set()
    for _ in range(2):
        ask(server, image=url)
    added = [p for p in set(server.blob_dir.rglob("*")) - before if p.is_file()]
    assert len(added) == 1 and added[0].read_bytes() == buffer.getvalue()
    assert added[0].is_relative_to(server.blob_dir / "uploads")
    assert "OffThreadMemorySaver" in server.log_path.read_text(errors="replace")  # langgraph.json's checkpointer


def follow_ups(request: dict) -> str:
    """The usual script, except that SHOW answers a follow-up ("Turn N: ...") at once."""
    prompt = prompt_text(request)
    if "Turn " in prompt and "Additional visual information" not in prompt:
        return json.dumps({"answer": "Still GATE 42.", "missing": []})
    return vlm_script(request)


def test_thread_history_carries_the_photo_by_url_not_inline(server, vlms):
    """One question, and a chat of 30 turns on one photo: the history a client reads is under 2x the photo (it was
    ~4x for one question: every checkpoint's values carried the data URL); the answer was read from the stored
    photo; the photo's URL answers with the same bytes."""
    url, jpeg = big_sign_data_url()
    thread = server.threads.create()
    out = server.runs.wait(thread["thread_id"], "lookcloser", input={"image": url, "question": "What does the sign say?"})
    assert out["answer"] == "It says GATE 42." and "GATE" in out["findings"][0]["text"]
    size = history_bytes(server, thread["thread_id"])
    print(f"history of one question: {size / 1e3:.0f} KB for a {len(url) / 1e3:.0f} KB data URL")
    assert size < 2 * len(url)
    stored = server.threads.get_state(thread["thread_id"])["values"]["image"]
    assert stored.startswith(server.url + "/lookcloser/images/")
    body, headers = fetch(stored)
    assert body == jpeg and headers["content-type"] == "image/jpeg" and "immutable" in headers["cache-control"]

    operator = vlms["operator"]
    operator.script = follow_ups
    try:
        chat = server.threads.create()
        first = {"role": "user", "content": [{"type": "text", "text": "What does the sign say?"},
                                             {"type": "image_url", "image_url": {"url": url}}]}
        server.runs.wait(chat["thread_id"], "lookcloser", input={"messages": [first]})
        for turn in range(2, 31):
            server.runs.wait(chat["thread_id"], "lookcloser", input={"messages": [
                {"role": "user", "content": f"Turn {turn}: and now?"}]})
        messages = server.threads.get_state(chat["thread_id"])["values"]["messages"]
        assert len(messages) == 60 and messages[1]["content"] == "It says GATE 42."
        assert messages[-1]["content"] == "Still GATE 42."
        assert fetch(messages[0]["content"][1]["image_url"]["url"])[0] == jpeg
        size = history_bytes(server, chat["thread_id"])
        print(f"history of a 30-turn chat: {size / 1e3:.0f} KB for a {len(url) / 1e3:.0f} KB data URL")
        assert size < 2 * len(url)
    finally:
        operator.script = vlm_script


def test_a_forged_or_unknown_image_reference_is_refused_in_one_line(server, vlms):
    before = len(vlms["operator"].requests)
    unknown = f"{server.url}/lookcloser/images/{'0' * 32}"
    with pytest.raises(Exception, match=r"ImageError: image reference http://\S+/lookcloser/images/0{32} names no "
                                         r"image in this server's image store \(the folder "):
        ask(server, image=unknown)
    with pytest.raises(Exception, match=r"image reference http://\S+/lookcloser/images/\.\./x is not one this "
                                         r"server made"):
        ask(server, image=f"{server.url}/lookcloser/images/../x")
    assert len(vlms["operator"].requests) == before  # nothing was asked about an image that is not there
    import urllib.error  # noqa: PLC0415

    with pytest.raises(urllib.error.HTTPError) as missing:
        fetch(unknown)
    assert missing.value.code == 404
    assert missing.value.read().decode() == f"no image {'0' * 32} in this server's image store\n"


def test_the_search_streams_its_steps_and_findings_through_the_sdk(server):
    """stream_mode="custom" shows the V* search move as it runs: each visited patch, then each finding."""
    thread = server.threads.create()
    chunks = list(server.runs.stream(thread["thread_id"], "lookcloser", stream_mode="custom",
                                     context={"tools": {"localizer": "vstar"}},
                                     input={"image": sign_data_url(), "question": "What does the sign say?"}))
    events = [chunk.data for chunk in chunks if chunk.event == "custom"]
    steps = [e for e in events if e["event"] == "search_step"]
    findings = [e for e in events if e["event"] == "finding"]
    assert steps and steps[0]["target"] == "the sign" and steps[0]["box"] == [0, 0, 480, 160]
    assert any("GATE" in (f["text"] or "") for f in findings)
    assert events.index(steps[-1]) < events.index(findings[0])


def test_the_answer_streams_token_by_token_through_the_sdk(server, vlms):
    """stream_mode="messages-tuple": TELL's answer as message chunks of the tell node, as the endpoint wrote it."""
    thread = server.threads.create()
    chunks = list(server.runs.stream(thread["thread_id"], "lookcloser", stream_mode="messages-tuple",
                                     input={"image": sign_data_url(), "question": "What does the sign say?"}))
    pieces = [(message, metadata) for message, metadata in (c.data for c in chunks if c.event == "messages")]
    assert {metadata["langgraph_node"] for _, metadata in pieces} == {"tell"}
    assert {message["type"] for message, _ in pieces} == {"AIMessageChunk"}
    assert len([m for m, _ in pieces if m["content"]]) > 1
    assert "".join(message["content"] for message, _ in pieces) == "It says GATE 42."
    assert vlms["operator"].requests[-1]["stream"] is True


def test_the_zoom_strategy_is_served_within_the_operators_limits(server, vlms):
    """A client picks the zoom strategy in its context; the VLM calls find, reads the sign from its result; the
    zoom limits are ceilings like the others (the operator's default of 6 turns)."""
    thread = server.threads.create()
    chunks = list(server.runs.stream(thread["thread_id"], "lookcloser", stream_mode=["custom", "values"],
                                     context={"config": {"strategy": "zoom"}},
                                     input={"image": sign_data_url(), "question": "What does the sign say?"}))
    out = [c.data for c in chunks if c.event == "values"][-1]
    assert out["answer"] == "It says GATE 42." and out["stats"]["zoom_turns"] == 2
    assert any(f["status"] == "found" and "GATE" in (f["text"] or "") for f in out["findings"])
    events = [c.data for c in chunks if c.event == "custom"]
    assert [e["event"] for e in events if e["event"] in ("finding", "zoom")][:2] == ["finding", "zoom"]
    with pytest.raises(Exception, match=r"context 'config.max_zoom_turns' = 10 is over this server's limit of 6"):
        ask(server, context={"config": {"strategy": "zoom", "max_zoom_turns": 10}})


@pytest.mark.parametrize("context, says", [
    ({"tool": {"localizer": "vstar"}}, "bad context: unknown context key 'tool'; did you mean 'tools'?"),
    ({"config": {"max_target": 2}}, "unknown key in the context's 'config' 'max_target'; did you mean 'max_targets'?"),
])
def test_a_misspelt_context_key_is_refused_not_dropped(server, vlms, context, says):
    """langgraph-api drops context keys its schema does not name; the guard refuses them first, in one line."""
    before = len(vlms["operator"].requests)
    with pytest.raises(Exception) as refused:
        ask(server, context=context)
    response = refused.value.response  # the SDK raises httpx's error; the server's one line is the body's detail
    assert response.status_code == 422 and says in response.json()["detail"]
    assert len(vlms["operator"].requests) == before  # nothing ran
