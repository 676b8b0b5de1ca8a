"""A scripted OpenAI-compatible chat server on 127.0.0.1 (port 0) for tests: records requests,
answers with `reply` (a dict), or with `script(request) -> text or reply dict` when one is set; a `"stream": true`
request gets the same reply as server-sent events, one word a chunk (`chunk_delay` seconds apart)."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 (port 0) serving `handler`; a context manager that closes it.
    `closing` is set first on close, so handlers that wait on it give up at once."""

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.closing = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.spec = f"openai:stub@{self.url}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


def prompt_text(request: dict) -> str:
    """All text parts of a chat-completions request, joined (what the VLM was asked)."""
    parts = []
    for message in request.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        else:
            parts.extend(p.get("text", "") for p in content or [] if isinstance(p, dict))
    return " ".join(parts)


class StubServer(LocalServer):
    """Records each request JSON; answers with `self.reply` (a dict) and `self.status` (with `self.error_body`
    when the status is not 200)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.paths: list[str] = []
        self.headers: list[dict] = []
        self.status = 200
        self.error_body: object = {"error": {"message": "boom"}}
        self.reply = completion("stub answer")
        self.script = None  # optional: request dict -> reply text
        self.chunk_delay = 0.0  # seconds between the chunks of a streamed reply
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                stub.paths.append(self.path)
                stub.headers.append({k.lower(): v for k, v in self.headers.items()})
                stub.requests.append(json.loads(body))
                request = stub.requests[-1]
                reply = stub.script(request) if stub.script is not None else stub.reply
                reply = reply if isinstance(reply, dict) else completion(reply)  # a script may answer a whole reply
                if request.get("stream") and stub.status == 200:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    for i, event in enumerate(sse_events(reply, request)):
                        if i > 1 and stub.chunk_delay:
                            time.sleep(stub.chunk_delay)
                        self.wfile.write(event.encode())
                        self.wfile.flush()
                    return
                payload = json.dumps(reply if stub.status == 200 else stub.error_body).encode()
                self.send_response(stub.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):  # keep test output quiet
                pass

        self._serve(Handler)


def completion(text, prompt_tokens=42, completion_tokens=3, logprobs=None):
    choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
    if logprobs is not None:
        choice["logprobs"] = {"content": [{"token": logprobs[0][0], "logprob": logprobs[0][1], "bytes": None,
                                           "top_logprobs": [{"token": t, "logprob": lp, "bytes": None}
                                                            for t, lp in logprobs]}]}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "stub",
        "choices": [choice],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def sse_events(reply: dict, request: dict) -> list[str]:
    """A completion as the server-sent events of a streamed one: the role, one chunk per word (with the
    whitespace after it), each tool call in two pieces, the finish reason, the usage when the request asked for it,
    then [DONE]."""
    choice = reply["choices"][0]
    text = choice["message"]["content"]
    head = {k: reply[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}

    def event(delta=None, finish=None, **extra) -> str:
        choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
        return f"data: {json.dumps({**head, 'choices': choices, **extra})}\n\n"

    events = [event({"role": "assistant"})]
    if text is not None:
        events += [event({"content": word}) for word in re.findall(r"\s*\S+\s*", text) or [text]]
    for index, call in enumerate(choice["message"].get("tool_calls") or []):  # OpenAI's form: id and name, then args
        arguments = call["function"]["arguments"]
        half = len(arguments) // 2
        events.append(event({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                             "function": {"name": call["function"]["name"],
                                                          "arguments": arguments[:half]}}]}))
        events.append(event({"tool_calls": [{"index": index, "function": {"arguments": arguments[half:]}}]}))
    events.append(event({}, choice["finish_reason"]))
    if (request.get("stream_options") or {}).get("include_usage"):
        events.append(event(usage=reply["usage"]))
    return [*events, "data: [DONE]\n\n"]
