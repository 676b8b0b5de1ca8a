"""A misbehaving OpenAI-compatible chat server on 127.0.0.1 (port 0) for the fault-injection tests.

Each request is answered by a fault chosen per step: `show` for SHOW's call, `tell` for TELL's call
(the TELL prompt carries "Additional visual information"). Faults:

  "ok"             a normal completion (`show_reply` / `tell_reply` text)
  "slow"           sleeps `slow_seconds`, then answers normally (or gives up when the server closes)
  "invalid_json"   HTTP 200, application/json, a body that is not JSON
  "html"           HTTP 200, text/html, a login page
  "empty_choices"  HTTP 200, a completion with "choices": []
  "huge"           HTTP 200, a completion whose text is `huge_chars` characters long
  "http500"        HTTP 500 with an error JSON
  "trickle"        HTTP 200, then one byte of the body every 0.2 s for `slow_seconds`
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler

from openai_stub import LocalServer, completion, prompt_text

SHOW_SEARCH = json.dumps({"answer": None, "missing": [{"name": "the sign", "kind": "text"}]})
HTML_PAGE = ("<!DOCTYPE html><html><head><title>Sign in</title></head><body><h1>Please sign in</h1>"
             "<form action='/login'></form></body></html>")


class FaultServer(LocalServer):
    def __init__(self, show: str = "ok", tell: str = "ok", *, slow_seconds: float = 30.0,
                 huge_chars: int = 10_000_000, show_reply: str = SHOW_SEARCH, tell_reply: str = "It says GATE 42."):
        self.show, self.tell = show, tell
        self.slow_seconds, self.huge_chars = slow_seconds, huge_chars
        self.show_reply, self.tell_reply = show_reply, tell_reply
        self.steps: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server naming
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                step = "tell" if "Additional visual information" in prompt_text(request) else "show"
                server.steps.append(step)
                fault = server.tell if step == "tell" else server.show
                text = server.tell_reply if step == "tell" else server.show_reply
                try:
                    self._answer(fault, text)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up first
                    pass

            def _answer(self, fault: str, text: str) -> None:
                status, content_type = 200, "application/json"
                if fault == "slow":
                    if server.closing.wait(server.slow_seconds):
                        return
                    body = json.dumps(completion(text))
                elif fault == "ok":
                    body = json.dumps(completion(text))
                elif fault == "invalid_json":
                    body = '{"id": "chatcmpl-1", "choices": [{"index": 0, "message": {"content": "half'
                elif fault == "html":
                    body, content_type = HTML_PAGE, "text/html; charset=utf-8"
                elif fault == "empty_choices":
                    body = json.dumps({**completion(text), "choices": []})
                elif fault == "huge":
                    body = json.dumps(completion("word " * (server.huge_chars // 5)))
                elif fault == "trickle":
                    payload = json.dumps(completion(text)).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    for i in range(len(payload)):
                        if server.closing.wait(0.2):
                            return
                        self.wfile.write(payload[i:i + 1])
                        self.wfile.flush()
                    return
                elif fault == "http500":
                    status, body = 500, json.dumps({"error": {"message": "model crashed"}})
                else:
                    raise ValueError(f"unknown fault {fault!r}")
                payload = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):  # keep test output quiet
                pass

        self._serve(Handler)


if __name__ == "__main__":  # a stand-alone misbehaving endpoint: python tests/fault_stub.py SHOW_FAULT TELL_FAULT
    import sys
    import time

    stub = FaultServer(*(sys.argv[1:3] or ["ok", "ok"]))
    print(stub.url, flush=True)
    while True:
        time.sleep(3600)
