"""The OpenAI backend against a server no one here wrote: `transformers serve` (transformers' own
OpenAI-compatible server) with a tiny random-weight Qwen2.5-VL started by the test. Requests with an
image, streaming with token usage, the whole agent through it, and the server's own error bodies."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from lookcloser.core.errors import VLMError
from lookcloser.vlm import ChatMessage, OpenAIVLM, VLMReply

sys.path.insert(0, str(Path(__file__).parent))
from tiny_qwen import build_tiny_qwen  # noqa: E402

pytest.importorskip("fastapi", reason="transformers serve needs fastapi (the dev extra installs transformers[serving])")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(model name, base URL) of a running `transformers serve` pinned to the tiny model."""
    model = build_tiny_qwen(tmp_path_factory.mktemp("tiny"))
    executable = shutil.which("transformers", path=str(Path(sys.executable).parent))
    assert executable, "the transformers CLI is missing from the venv"
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path_factory.mktemp("hf-cache"))}
    log = (tmp_path_factory.mktemp("log") / "serve.log").open("w+")
    server = subprocess.Popen([executable, "serve", str(model), "--host", "127.0.0.1", "--port", str(port)],
                              stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                log.seek(0)
                pytest.fail(f"transformers serve exited with {server.returncode}: {log.read()[-2000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "transformers serve did not answer /health in 120 s"
            time.sleep(0.5)
        yield str(model), f"{base}/v1"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _photo() -> Image.Image:
    image = Image.new("RGB", (640, 480), "white")
    image.paste((200, 30, 30), (100, 100, 300, 260))
    return image


def test_a_request_with_an_image_answers_with_the_servers_token_counts(served):
    model, url = served
    reply = OpenAIVLM(model, base_url=url).generate([ChatMessage("user", [_photo(), "What is red?"])], max_new_tokens=8)
    assert reply.text  # random weights: gibberish, but text
    assert reply.output_tokens == 8  # the server ran to max_tokens (no EOS from random weights is likely)
    text_only = OpenAIVLM(model, base_url=url).generate([ChatMessage("user", ["What is red?"])], max_new_tokens=8)
    assert reply.input_tokens > text_only.input_tokens + 10  # the image's vision tokens were counted by the server


def test_streaming_yields_pieces_that_join_to_the_reply_with_usage(served):
    model, url = served
    vlm = OpenAIVLM(model, base_url=url)
    messages = [ChatMessage("user", [_photo(), "What is red?"])]
    items = list(vlm.stream(messages, max_new_tokens=8))
    *pieces, last = items
    assert pieces and all(isinstance(piece, str) for piece in pieces)
    assert isinstance(last, VLMReply)
    assert "".join(pieces).strip() == last.text
    assert last.output_tokens == 8 and last.input_tokens > 0  # stream_options include_usage honoured
    # Not compared with generate's text: the server's streamer holds back bytes that do not decode to UTF-8
    # (random weights emit such byte tokens), so its stream may end a few replacement characters short.


def test_the_agent_answers_through_the_served_model(served, tmp_path):
    from lookcloser import Agent

    model, url = served
    image = tmp_path / "photo.png"
    _photo().save(image)
    answer = Agent(vlm=f"openai:{model}@{url}", tools={"localizer": "whole_image"}).run(str(image), "What is red?")
    assert answer.text
    assert answer.stats.vlm_calls >= 1


def test_the_servers_reason_for_a_400_is_kept_in_generate_and_stream(served):
    """transformers serve answers a model it is not pinned to with 400 {"detail": "Server is pinned to ..."}:
    not OpenAI's error shape, and the line must still say why."""
    model, url = served
    vlm = OpenAIVLM("wrong-model", base_url=url, max_retries=0)
    with pytest.raises(VLMError) as generated:
        vlm.generate([ChatMessage("user", ["hi"])], max_new_tokens=4)
    with pytest.raises(VLMError) as streamed:
        list(vlm.stream([ChatMessage("user", ["hi"])], max_new_tokens=4))
    for error in (generated.value, streamed.value):
        line = str(error)
        assert "HTTP 400" in line and "Server is pinned to" in line and "'wrong-model'" in line, line
        assert "\n" not in line
