"""The graph in langgraph.json, served by `langgraph dev` (LangGraph Studio's server) and driven with
langgraph_sdk, as a LangGraph user would: both input forms, JSON context, thread state read back."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from openai_stub import StubServer, prompt_text

pytest.importorskip("langgraph_api")
langgraph_sdk = pytest.importorskip("langgraph_sdk")

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`langgraph dev` on a free local port, from the repository root (where langgraph.json is)."""
    cli = shutil.which("langgraph", path=str(Path(sys.executable).parent)) or shutil.which("langgraph")
    if cli is None:
        pytest.skip("langgraph-cli is not installed (pip install 'langgraph-cli[inmem]')")
    port = _free_port()
    log = (tmp_path_factory.mktemp("langgraph_dev") / "server.log").open("w")
    env = {**os.environ, "LANGSMITH_TRACING": "false", "LANGGRAPH_CLI_NO_ANALYTICS": "1"}
    process = subprocess.Popen([cli, "dev", "--port", str(port), "--no-browser", "--no-reload"],
                               cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/ok", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise RuntimeError(f"langgraph dev did not start: {Path(log.name).read_text()[-3000:]}")
            time.sleep(0.5)
        yield langgraph_sdk.get_sync_client(url=url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def sign_data_url() -> str:
    image = Image.new("RGB", (480, 160), "white")
    ImageDraw.Draw(image).text((20, 40), "GATE 42", fill="black", font=ImageFont.load_default(size=64))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def vlm_script(request: dict) -> str:
    """SHOW asks for the sign's text; TELL answers with what the memory says was read."""
    prompt = prompt_text(request)
    if "Additional visual information" not in prompt:
        return json.dumps({"answer": None, "missing": [{"name": "the sign", "kind": "text"}]})
    return "It says GATE 42." if "GATE 42" in prompt else "I cannot read it."


def test_image_and_question_input_with_json_context(server):
    with StubServer() as stub:
        stub.script = vlm_script
        thread = server.threads.create()
        context = {"vlm": f"openai:stub@{stub.url}", "tools": {"localizer": "whole_image", "ocr": "rapidocr"},
                   "config": {"max_targets": 2}}
        out = server.runs.wait(thread["thread_id"], "lookcloser", context=context,
                               input={"image": sign_data_url(), "question": "What does the sign say?"})
        assert out["answer"] == "It says GATE 42."
        [finding] = out["findings"]
        assert finding["tool"] == "whole_image+rapidocr" and "GATE" in finding["text"]
        assert out["stats"] == {"vlm_calls": 2, "tool_calls": 2, "search_steps": 0}  # localizer + its OCR
        state = server.threads.get_state(thread["thread_id"])
        assert state["values"]["answer"] == "It says GATE 42." and state["next"] == []
        assert len(stub.requests) == 2


def test_chat_input_is_answered_with_an_ai_message(server):
    with StubServer() as stub:
        stub.script = vlm_script
        thread = server.threads.create()
        message = {"role": "user", "content": [
            {"type": "text", "text": "What does the sign say?"},
            {"type": "image_url", "image_url": {"url": sign_data_url()}}]}
        server.runs.wait(thread["thread_id"], "lookcloser", input={"messages": [message]},
                         context={"vlm": f"openai:stub@{stub.url}", "tools": {"localizer": "whole_image"}})
        messages = server.threads.get_state(thread["thread_id"])["values"]["messages"]
        assert [m["type"] for m in messages] == ["human", "ai"]
        assert messages[-1]["content"] == "It says GATE 42."


def test_served_graph_refuses_server_file_paths(server):
    thread = server.threads.create()
    run = server.runs.create(thread["thread_id"], "lookcloser", input={"image": "/etc/hostname", "question": "q?"},
                             context={"vlm": "openai:stub@http://127.0.0.1:9/v1"})
    server.runs.join(thread["thread_id"], run["run_id"])
    finished = server.runs.get(thread["thread_id"], run["run_id"])
    assert finished["status"] == "error"
