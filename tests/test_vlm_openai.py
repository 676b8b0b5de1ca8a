"""OpenAIVLM against a local stub OpenAI-compatible server (http.server on 127.0.0.1, port 0)."""

from __future__ import annotations

import base64
import io
import json
import socket
from http.server import BaseHTTPRequestHandler

import pytest
from PIL import Image

from lookcloser.core.config import cap_text
from lookcloser.core.errors import VLMError
from lookcloser.vlm import ChatMessage, OpenAIVLM, supports
from openai_stub import LocalServer, StubServer, completion, sse_events

pytest.importorskip("openai")


@pytest.fixture
def stub():
    server = StubServer()
    yield server
    server.close()


def _decode_data_url(url):
    header, data = url.split(",", 1)
    assert header.startswith("data:image/") and header.endswith(";base64")
    return header, Image.open(io.BytesIO(base64.b64decode(data)))


def test_request_carries_model_text_and_image(stub):
    vlm = OpenAIVLM("qwen2.5-vl-7b", base_url=stub.url, api_key="secret", max_retries=0)
    image = Image.new("RGB", (320, 200), (10, 200, 30))
    reply = vlm.generate(
        [ChatMessage("system", ["Be brief."]), ChatMessage("user", ["What color?", image])], max_new_tokens=17
    )
    assert reply.text == "stub answer"
    assert (reply.input_tokens, reply.output_tokens) == (42, 3)

    assert stub.paths == ["/v1/chat/completions"]
    assert stub.headers[0]["authorization"] == "Bearer secret"
    request = stub.requests[0]
    assert request["model"] == "qwen2.5-vl-7b"
    assert request["temperature"] == 0
    assert request["max_tokens"] == 17
    assert request["messages"][0] == {"role": "system", "content": "Be brief."}
    user = request["messages"][1]
    assert user["role"] == "user"
    assert user["content"][0] == {"type": "text", "text": "What color?"}
    header, decoded = _decode_data_url(user["content"][1]["image_url"]["url"])
    assert header == "data:image/jpeg;base64"  # the default: JPEG quality 95, 4:4:4 (fast, near-lossless)
    assert decoded.size == (320, 200)
    assert all(abs(a - b) <= 2 for a, b in zip(decoded.convert("RGB").getpixel((5, 5)), (10, 200, 30)))


def test_png_sends_the_pixels_losslessly(stub):
    vlm = OpenAIVLM("m", base_url=stub.url, image_format="png", max_retries=0)
    vlm.generate([ChatMessage("user", [Image.new("RGB", (64, 48), (10, 200, 30)), "q"])])
    header, decoded = _decode_data_url(stub.requests[0]["messages"][0]["content"][0]["image_url"]["url"])
    assert header == "data:image/png;base64" and decoded.convert("RGB").getpixel((5, 5)) == (10, 200, 30)


def test_a_photo_sent_twice_is_encoded_once(stub, monkeypatch):
    """SHOW and TELL send the same photo: its data URL is made once and reused (same pixels, same URL)."""
    from lookcloser.vlm import openai_vlm

    encoded = []
    original = openai_vlm._encode
    monkeypatch.setattr(openai_vlm, "_encode", lambda *args: encoded.append(args[0].size) or original(*args))
    vlm = OpenAIVLM("m", base_url=stub.url, max_retries=0)
    photo = Image.effect_noise((640, 480), 40).convert("RGB")
    vlm.generate([ChatMessage("user", [photo, "show"])])
    vlm.generate([ChatMessage("user", [photo, photo.crop((0, 0, 64, 64)), "tell"])])
    assert encoded == [(640, 480), (64, 64)]  # the photo once, the crop once
    first, second = (r["messages"][0]["content"][0]["image_url"]["url"] for r in stub.requests)
    assert first == second


def test_large_images_are_shrunk_to_max_side_as_jpeg(stub):
    vlm = OpenAIVLM("m", base_url=stub.url, max_image_side=100, image_format="jpeg", max_retries=0)
    vlm.generate([ChatMessage("user", [Image.new("RGB", (400, 300)), Image.new("RGB", (50, 40)), "two"])])
    parts = stub.requests[0]["messages"][0]["content"]
    (h1, first), (h2, second) = (_decode_data_url(p["image_url"]["url"]) for p in parts[:2])
    assert h1 == h2 == "data:image/jpeg;base64"
    assert first.size == (100, 75) and second.size == (50, 40)
    assert parts[2] == {"type": "text", "text": "two"}


def test_api_key_defaults(stub, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    OpenAIVLM("m", base_url=stub.url, max_retries=0).generate([ChatMessage("user", ["hi"])])
    assert stub.headers[-1]["authorization"] == "Bearer EMPTY"
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    OpenAIVLM("m", base_url=stub.url, max_retries=0).generate([ChatMessage("user", ["hi"])])
    assert stub.headers[-1]["authorization"] == "Bearer from-env"


def test_base_url_from_environment(stub, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", stub.url)
    vlm = OpenAIVLM("envmodel", max_retries=0)
    assert vlm.base_url == stub.url and vlm.name == f"openai:envmodel@{stub.url}"
    assert vlm.generate([ChatMessage("user", ["hi"])]).text == "stub answer"
    assert vlm.describe()["backend"] == "openai" and vlm.describe()["model"] == "envmodel"


def test_http_500_gives_vlm_error_naming_url_and_model(stub):
    stub.status = 500
    vlm = OpenAIVLM("broken-model", base_url=stub.url, max_retries=0)
    with pytest.raises(VLMError) as info:
        vlm.generate([ChatMessage("user", ["hi"])])
    message = str(info.value)
    assert stub.url in message and "broken-model" in message and "500" in message


def test_connection_refused_gives_vlm_error():
    with socket.socket() as sock:  # find a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    vlm = OpenAIVLM("m", base_url=url, max_retries=0, timeout=5)
    with pytest.raises(VLMError) as info:
        vlm.generate([ChatMessage("user", ["hi"])])
    assert url in str(info.value) and "'m'" in str(info.value)


def test_null_content_is_an_error(stub):
    stub.reply = completion(None)
    with pytest.raises(VLMError, match="empty message"):
        OpenAIVLM("m", base_url=stub.url, max_retries=0).generate([ChatMessage("user", ["hi"])])


def test_yes_probability_is_opt_in_and_reads_top_logprobs(stub):
    assert not supports(OpenAIVLM("m", base_url=stub.url), "yes_probability")
    vlm = OpenAIVLM("m", base_url=stub.url, max_retries=0, logprobs=True)
    assert supports(vlm, "yes_probability")
    stub.reply = completion("Yes", logprobs=[("Yes", -0.2), (" yes", -2.0), ("No", -1.5), ("Maybe", -3.0)])
    import math

    p = vlm.yes_probability(Image.new("RGB", (20, 20)), "Is it green?")
    yes, no = math.exp(-0.2) + math.exp(-2.0), math.exp(-1.5)
    assert p == pytest.approx(yes / (yes + no))
    request = stub.requests[-1]
    assert request["logprobs"] is True and request["top_logprobs"] == 20 and request["max_tokens"] == 1
    stub.reply = completion("Yes")  # server without logprobs support
    with pytest.raises(VLMError, match="no logprobs"):
        vlm.yes_probability(None, "Is it green?")


def test_images_outside_user_messages_are_rejected(stub):
    vlm = OpenAIVLM("m", base_url=stub.url, max_retries=0)
    with pytest.raises(ValueError, match="assistant"):
        vlm.generate([ChatMessage("assistant", [Image.new("RGB", (4, 4))])])
    assert stub.requests == []


def test_long_replies_are_cut_and_marked(stub):
    stub.reply = completion("x" * 10_000)
    reply = OpenAIVLM("m", base_url=stub.url, max_retries=0, max_reply_chars=100).generate([ChatMessage("user", ["hi"])])
    assert len(reply.text) == 100 and reply.text.endswith("…[cut]")


def test_settings_are_checked_and_described():
    for bad in ({"timeout": 0}, {"max_retries": -1}, {"max_reply_chars": 0}):
        with pytest.raises(ValueError):
            OpenAIVLM("m", base_url="http://127.0.0.1:1/v1", **bad)
    described = OpenAIVLM("m", base_url="http://127.0.0.1:1/v1", timeout=7, max_retries=1).describe()
    assert (described["timeout"], described["max_retries"], described["max_reply_chars"]) == (7, 1, 4000)


def test_per_call_timeout_and_retries_are_settings():
    from fault_stub import FaultServer
    from lookcloser.core.errors import VLMTimeoutError

    with FaultServer(show="slow", slow_seconds=30) as slow:
        vlm = OpenAIVLM("m", base_url=slow.url, timeout=0.5, max_retries=1)
        with pytest.raises(VLMTimeoutError, match=r"did not answer within 0.5 s \(2 tries\) \(OpenAIVLM timeout\)"):
            vlm.generate([ChatMessage("user", ["hi"])])
        assert slow.steps == ["show", "show"]


def test_the_question_time_limit_shortens_the_call_and_stops_retries():
    from fault_stub import FaultServer
    from lookcloser.core.deadline import time_limit
    from lookcloser.core.errors import VLMTimeoutError

    with FaultServer(show="slow", slow_seconds=30) as slow:
        vlm = OpenAIVLM("m", base_url=slow.url, timeout=120, max_retries=5)
        with time_limit(0.5), pytest.raises(VLMTimeoutError, match="time limit of 0.5 s"):
            vlm.generate([ChatMessage("user", ["hi"])])
        assert slow.steps == ["show"]
        with time_limit(0.0), pytest.raises(VLMTimeoutError, match="was not called"):
            vlm.generate([ChatMessage("user", ["hi"])])
        assert slow.steps == ["show"]


def test_an_endpoint_that_trickles_bytes_is_cut_at_the_timeout():
    """The HTTP client's timeout is per read; the call itself is bounded too."""
    from concurrent.futures import ThreadPoolExecutor

    from fault_stub import FaultServer
    from lookcloser.core.errors import VLMTimeoutError

    with FaultServer(show="trickle", slow_seconds=30) as trickle:
        vlm = OpenAIVLM("m", base_url=trickle.url, timeout=1, max_retries=0)
        with ThreadPoolExecutor(max_workers=1) as pool:
            future = pool.submit(vlm.generate, [ChatMessage("user", ["hi"])])
            with pytest.raises(VLMTimeoutError, match="did not answer within 1 s"):
                future.result(timeout=20)


# ------------------------------------------------------------------------------------ streaming
def _stream(vlm, text="hi"):
    *pieces, reply = list(vlm.stream([ChatMessage("user", [text])], max_new_tokens=17))
    return pieces, reply


def test_stream_hands_the_reply_on_in_pieces_that_join_to_what_generate_returns(stub):
    stub.reply = completion("  It says GATE 42 in red.\n", prompt_tokens=50, completion_tokens=8)
    vlm = OpenAIVLM("m", base_url=stub.url, max_retries=0)
    assert supports(vlm, "stream")
    pieces, reply = _stream(vlm)
    assert len(pieces) == 6 and "".join(pieces) == reply.text == vlm.generate([ChatMessage("user", ["hi"])]).text
    assert (reply.input_tokens, reply.output_tokens) == (50, 8)  # from the stream's last (usage) event
    request = stub.requests[0]
    assert request["stream"] is True and request["stream_options"] == {"include_usage": True}
    assert request["max_tokens"] == 17 and request["temperature"] == 0


def test_a_streamed_reply_is_cut_and_marked_like_a_whole_one(stub):
    stub.reply = completion("word " * 2000)
    pieces, reply = _stream(OpenAIVLM("m", base_url=stub.url, max_retries=0, max_reply_chars=100))
    assert len(pieces) > 10 and "".join(pieces) == reply.text == cap_text(("word " * 2000).strip(), 100)


def test_a_stream_with_no_text_is_an_empty_message_error(stub):
    stub.reply = completion(None)
    with pytest.raises(VLMError, match="empty message"):
        _stream(OpenAIVLM("m", base_url=stub.url, max_retries=0))


@pytest.mark.parametrize("fault, words", [
    ("ok", None),  # a server that answers a stream request with a whole completion: read as one piece
    ("html", "did not answer with an event stream or JSON (HTTP 200, content type text/html"),
    ("invalid_json", "answered with invalid JSON"),
    ("empty_choices", "returned no choices"),
    ("http500", "returned HTTP 500: model crashed"),  # the server's reason, not openai's "Error code: 500"
])
def test_stream_faults_are_one_line_as_for_generate(fault, words):
    from fault_stub import FaultServer

    with FaultServer(show=fault) as server:
        vlm = OpenAIVLM("m", base_url=server.url, max_retries=1)
        if words is None:
            pieces, reply = _stream(vlm)
            assert pieces == [reply.text] and (reply.input_tokens, reply.output_tokens) == (42, 3)
            return
        with pytest.raises(VLMError) as info:
            _stream(vlm)
    message = str(info.value)
    assert words in message and server.url in message and "\n" not in message
    assert server.steps == ["show", "show"] if fault == "http500" else ["show"]  # only 5xx is tried again


class SSEServer(LocalServer):
    """An event-stream endpoint that answers each request by the next `plan` step: "503" (HTTP 503), "ok" (the
    whole reply), "break" (the first word, then the connection drops in the middle of the chunked body), "cut"
    (the first word, then the body ends: no finish reason), "stall" (the first word, then nothing), "silent"
    (the headers, then nothing)."""

    def __init__(self, *plan: str, text: str = "It says GATE 42."):
        self.plan, self.requests = list(plan), 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # chunked bodies: a dropped connection is a broken body

            def do_POST(self):  # noqa: N802 - http.server naming
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                step = server.plan[min(server.requests, len(server.plan) - 1)]
                server.requests += 1
                self.close_connection = True
                if step == "503":
                    body = json.dumps({"error": {"message": "overloaded"}}).encode()
                    self.send_response(503)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                events = sse_events(completion(text), request)
                events = {"ok": events, "silent": []}.get(step, events[:2])
                try:
                    for event in events:
                        data = event.encode()
                        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                        self.wfile.flush()
                    if step in ("stall", "silent"):
                        server.closing.wait(30)
                    if step in ("ok", "cut"):
                        self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):  # the client gave up first
                    pass

            def log_message(self, *args):
                pass

        self._serve(Handler)


def test_a_stream_is_tried_again_only_before_its_first_text():
    with SSEServer("503", "silent", "ok") as server:
        pieces, reply = _stream(OpenAIVLM("m", base_url=server.url, max_retries=2, timeout=0.5))
        assert "".join(pieces) == reply.text == "It says GATE 42." and server.requests == 3
    for step, why in (("break", "RemoteProtocolError: peer closed connection"),
                      ("cut", "the event stream ended without a finish reason")):
        with SSEServer(step) as server:
            with pytest.raises(VLMError, match=f"broke off its reply after 3 characters: {why}"):
                _stream(OpenAIVLM("m", base_url=server.url, max_retries=2))
            assert server.requests == 1  # "It " was out already: no second try


def test_a_stalled_stream_is_cut_at_the_timeout_and_the_time_limit():
    from lookcloser.core.deadline import time_limit
    from lookcloser.core.errors import VLMTimeoutError

    with SSEServer("stall") as server:
        vlm = OpenAIVLM("m", base_url=server.url, max_retries=2, timeout=1)
        with pytest.raises(VLMTimeoutError, match=r"did not finish its reply within 1 s \(3 characters received"):
            _stream(vlm)
        with time_limit(0.5), pytest.raises(VLMTimeoutError, match="within the question's time limit of 0.5 s"):
            _stream(OpenAIVLM("m", base_url=server.url, max_retries=2, timeout=30))
        assert server.requests == 2
    with SSEServer("silent") as server:
        with pytest.raises(VLMTimeoutError, match=r"did not answer within 0.5 s \(2 tries\)"):
            _stream(OpenAIVLM("m", base_url=server.url, max_retries=1, timeout=0.5))
        assert server.requests == 2


def test_sent_image_size_is_what_the_served_model_receives(stub):
    # the encoded size (max_image_side), then Qwen2.5-VL's smart-resize grid: its boxes are pixels of that grid
    qwen25 = OpenAIVLM("Qwen/Qwen2.5-VL-7B-Instruct", base_url=stub.url, max_image_side=1000, max_retries=0)
    qwen25.generate([ChatMessage("user", [Image.new("RGB", (4000, 3000)), "box it"])])
    _, sent = _decode_data_url(stub.requests[0]["messages"][0]["content"][0]["image_url"]["url"])
    assert sent.size == (1000, 750)
    assert qwen25.sent_image_size((4000, 3000)) == (1008, 756)  # 1000x750 on the 28-px grid
    # a relative-coordinate family: the encoded size is all there is to say
    assert OpenAIVLM("qwen3-vl-8b", base_url=stub.url, max_image_side=1000).sent_image_size((4000, 3000)) == (1000, 750)
    # box_format overrides the model name, is checked and described
    told = OpenAIVLM("my-served-model", base_url=stub.url, max_image_side=None, box_format="qwen2_5_vl")
    assert told.sent_image_size((1000, 750)) == (1008, 756) and told.describe()["box_format"] == "qwen2_5_vl"
    with pytest.raises(ValueError, match="unknown box_format 'pixels'; known: qwen2_5_vl"):
        OpenAIVLM("m", base_url=stub.url, box_format="pixels")
