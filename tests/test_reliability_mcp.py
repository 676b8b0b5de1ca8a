"""An MCP client that goes away mid-call (issue 30 item 4): `lookcloser mcp` over stdio, driven by hand (JSON-RPC
lines on its stdin), the client's end of the pipe closed while SHOW waits on the VLM. The abandoned question must
send no further VLM calls (no TELL), and the server must exit, not finish the work first."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

pytest.importorskip("mcp", reason="the MCP SDK is in the mcp extra (pip install -e '.[mcp]')")

from openai_stub import prompt_text  # noqa: E402
from test_mcp_server import CALL_SECONDS, ScriptedVLM, _lookcloser, notice  # noqa: E402


def _send(process: subprocess.Popen, message: dict) -> None:
    process.stdin.write((json.dumps(message) + "\n").encode())
    process.stdin.flush()


def test_a_client_that_disconnects_mid_call_stops_the_work(tmp_path):
    notice().save(tmp_path / "notice.png")
    with ScriptedVLM() as vlm:
        command = _lookcloser()
        process = subprocess.Popen([*command, "mcp", "--image-dir", str(tmp_path), "--vlm", vlm.spec],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=(tmp_path / "server.log").open("w"),
                                   env={**__import__("os").environ, "LANGSMITH_TRACING": "false"})
        try:
            _send(process, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}})
            assert json.loads(process.stdout.readline())["id"] == 1
            _send(process, {"jsonrpc": "2.0", "method": "notifications/initialized"})
            _send(process, {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
                "name": "ask", "arguments": {"image": "notice.png", "question": "WAIT: what does the sign say?"}}})
            deadline = time.monotonic() + CALL_SECONDS
            while not vlm.requests and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(vlm.requests) == 1, "the ask never reached the VLM"
            process.stdin.close()  # the client is gone (its end of the pipe closed), SHOW still waiting
            time.sleep(1.0)
        finally:
            vlm.release.set()  # SHOW is answered now; the search and TELL would follow
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail("the server did not exit after its client went away")
        later = [prompt_text(r) for r in vlm.requests[1:]]
        assert not any("Additional visual information" in p for p in later), later
