"""An endpoint's reason for refusing a request reaches the user's one line, whatever shape its error body
has (OpenAI's, a plain string, FastAPI's `detail`), in `generate` and in `stream` alike."""

from __future__ import annotations

import pytest

from lookcloser.core.errors import VLMError
from lookcloser.vlm import ChatMessage, OpenAIVLM
from openai_stub import StubServer

pytest.importorskip("openai")


@pytest.mark.parametrize(("body", "reason"), [
    ({"error": {"message": "model 'x' does not exist", "type": "invalid_request_error"}}, "model 'x' does not exist"),
    ({"error": "the key is not allowed here"}, "the key is not allowed here"),
    ({"detail": "Server is pinned to '/models/a'; requested 'x'."}, "Server is pinned to '/models/a'; requested 'x'."),
    ({"message": "quota\nexceeded for today"}, "quota"),
    ({"detail": [{"loc": ["body", "messages"], "msg": "field required"}]}, '"msg": "field required"'),
])
@pytest.mark.parametrize("call", ["generate", "stream"])
def test_the_servers_reason_is_in_the_one_line(body, reason, call):
    with StubServer() as stub:
        stub.status, stub.error_body = 400, body
        vlm = OpenAIVLM("x", base_url=stub.url, max_retries=0)
        messages = [ChatMessage("user", ["hi"])]
        with pytest.raises(VLMError) as raised:
            vlm.generate(messages) if call == "generate" else list(vlm.stream(messages))
    line = str(raised.value)
    assert "returned HTTP 400: " in line and reason in line, line
    assert "\n" not in line and "Error code: 400" not in line


def test_a_body_without_a_reason_keeps_the_status():
    with StubServer() as stub:
        stub.status, stub.error_body = 403, {}
        with pytest.raises(VLMError, match="returned HTTP 403: Error code: 403"):
            OpenAIVLM("x", base_url=stub.url, max_retries=0).generate([ChatMessage("user", ["hi"])])
