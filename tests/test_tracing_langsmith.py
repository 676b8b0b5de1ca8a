"""LangSmith upload and live sending, against a local stub server that records what the real
`langsmith` client sends (JSON batch, multipart, zstd-compressed multipart: whatever it picks)."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import langsmith
import pytest
import zstandard

from lookcloser.tracing import (
    LiveSink,
    TraceError,
    UploadError,
    langsmith_tracing_enabled,
    load_trace,
    start_trace,
    trace_run,
    upload_trace,
    validate_trace,
)
from lookcloser.tracing import live as live_module

REPO = Path(__file__).resolve().parents[1]


class LangSmithStub:
    """A tiny LangSmith API: answers /info, records every POST/PATCH, can be told to refuse ingestion."""

    def __init__(self, *, zstd: bool = True, ingest_status: int = 200) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.ingest_status = ingest_status
        stub = self
        info = {
            "version": "0.0-stub",
            "instance_flags": {"zstd_compression_enabled": zstd},
            "batch_ingest_config": {"use_multipart_endpoint": True, "size_limit": 100, "size_limit_bytes": None,
                                    "scale_up_qsize_trigger": 1000, "scale_up_nthreads_limit": 1,
                                    "scale_down_nempty_trigger": 4},
        }

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def _reply(self, status: int, payload: dict) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                stub.requests.append(("GET", self.path, {k.lower(): v for k, v in self.headers.items()}, b""))
                if self.path.rstrip("/").endswith("/info"):
                    self._reply(200, info)
                else:
                    self._reply(404, {"detail": "not in stub"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                stub.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                if stub.ingest_status != 200:
                    self._reply(stub.ingest_status, {"detail": "stub refuses"})
                else:
                    self._reply(200, {})

            do_PATCH = do_POST

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def ingest_requests(self):
        return [r for r in self.requests if r[0] in ("POST", "PATCH") and "/runs" in r[1]]

    def received_runs(self) -> dict[str, dict]:
        """Every run the client sent, post and patch merged per id, decoded from whatever format it used."""
        runs: dict[str, dict] = {}

        def merge(run_id: str, fields: dict) -> None:
            # like the server: a null in a later patch does not erase what the post set
            current = runs.setdefault(run_id, {})
            current.update({k: v for k, v in fields.items() if v is not None or k not in current})

        for method, path, headers, body in self.ingest_requests():
            if headers.get("content-encoding") == "zstd":
                body = zstandard.ZstdDecompressor().decompressobj().decompress(body)
            if path.endswith("/runs/batch"):
                payload = json.loads(body)
                for op in ("post", "patch"):
                    for run in payload.get(op, []):
                        merge(str(run["id"]), run)
            elif path.endswith("/runs/multipart"):
                message = email.message_from_bytes(
                    b"Content-Type: " + headers["content-type"].encode() + b"\r\n\r\n" + body, policy=email.policy.HTTP
                )
                assert message.is_multipart(), "multipart request did not parse"
                for part in message.iter_parts():
                    name = part.get_param("name", header="content-disposition")
                    data = json.loads(part.get_payload(decode=True))
                    pieces = name.split(".")
                    if pieces[0] in ("post", "patch") and len(pieces) == 2:
                        merge(pieces[1], data)
                    elif pieces[0] in ("post", "patch") and len(pieces) == 3:
                        merge(pieces[1], {pieces[2]: data})
            elif method == "POST" and path.endswith("/runs"):
                run = json.loads(body)
                merge(str(run["id"]), run)
            elif method == "PATCH" and "/runs/" in path:
                merge(path.rsplit("/", 1)[1], json.loads(body))
        return runs


@pytest.fixture()
def stub():
    server = LangSmithStub()
    yield server
    server.close()


def _make_trace(root: Path) -> tuple[Path, str]:
    """A small nested trace with a failing tool call."""
    with start_trace(root, "lookcloser.run", {"question": "what colour?"}, live=False) as run:
        with trace_run("show", "chain"):
            with trace_run("vlm.generate", "llm", {"prompt": "look"}) as call:
                call.outputs = {"text": "I need to look closer", "input_tokens": 12, "output_tokens": 5}
        with trace_run("search", "chain"):
            try:
                with trace_run("tool.ocr.broken", "tool", {"target": "sign"}):
                    raise RuntimeError("ocr crashed")
            except RuntimeError:
                pass
        run.outputs = {"answer": "red"}
    return root / run.id, run.id


def _assert_all_arrived(received: dict[str, dict], local: list[dict], project: str) -> None:
    assert set(received) == {r["id"] for r in local}
    for record in local:
        sent = received[record["id"]]
        assert sent["trace_id"] == record["trace_id"]
        assert sent["dotted_order"] == record["dotted_order"]
        assert sent.get("parent_run_id") == record["parent_run_id"]
        assert sent["name"] == record["name"]
        assert sent["run_type"] == record["run_type"]
        assert sent["session_name"] == project
        assert sent.get("error") == record["error"]
        assert sent.get("outputs", {}) == record["outputs"]
        assert sent.get("end_time") is not None


def test_upload_sends_every_run_with_tree_fields(tmp_path, stub):
    trace_dir, trace_id = _make_trace(tmp_path)
    client = langsmith.Client(api_url=stub.url, api_key="dummy-key", auto_batch_tracing=False)
    result = upload_trace(trace_dir, client=client, project_name="lc-upload")

    local = load_trace(trace_dir)
    assert (result.trace_id, result.runs, result.project_name) == (trace_id, len(local), "lc-upload")
    ingest = stub.ingest_requests()
    assert ingest, f"client sent no ingest request; saw {[r[:2] for r in stub.requests]}"
    assert all(headers.get("x-api-key") == "dummy-key" for _, _, headers, _ in ingest)
    received = stub.received_runs()
    _assert_all_arrived(received, local, "lc-upload")
    failed = [r for r in received.values() if r.get("error")]
    assert [r["name"] for r in failed] == ["tool.ocr.broken"]
    llm = next(r for r in received.values() if r["run_type"] == "llm")
    assert llm["extra"]["metadata"]["usage_metadata"] == {"input_tokens": 12, "output_tokens": 5, "total_tokens": 17}


def test_upload_raises_when_langsmith_refuses(tmp_path):
    server = LangSmithStub(ingest_status=400)
    try:
        trace_dir, _ = _make_trace(tmp_path)
        client = langsmith.Client(api_url=server.url, api_key="dummy", auto_batch_tracing=False)
        with pytest.raises(UploadError, match="failed"):
            upload_trace(trace_dir, client=client, project_name="p")
    finally:
        server.close()


def test_upload_refuses_an_inconsistent_trace_before_sending(tmp_path, stub):
    trace_dir, _ = _make_trace(tmp_path)
    runs_file = trace_dir / "runs.jsonl"
    lines = runs_file.read_text().splitlines()
    broken = json.loads(lines[0])
    broken["parent_run_id"] = "00000000-0000-4000-8000-000000000000"
    runs_file.write_text("\n".join([json.dumps(broken), *lines[1:]]) + "\n")
    client = langsmith.Client(api_url=stub.url, api_key="dummy", auto_batch_tracing=False)
    with pytest.raises(TraceError, match=broken["id"]):
        upload_trace(trace_dir, client=client, project_name="p")
    assert stub.ingest_requests() == []


def test_live_sink_sends_runs_as_they_happen(tmp_path, stub):
    client = langsmith.Client(api_url=stub.url, api_key="dummy")
    sink = LiveSink(client=client, project_name="lc-live")
    with start_trace(tmp_path, "lookcloser.run", {"question": "q"}, live=sink) as run:
        with trace_run("show", "chain"):
            with trace_run("vlm.generate", "llm", {"prompt": "p"}) as call:
                call.outputs = {"text": "t"}
        run.outputs = {"answer": "a"}
    sink.flush()
    local = load_trace(tmp_path / run.id)
    validate_trace(local)
    _assert_all_arrived(stub.received_runs(), local, "lc-live")


def test_live_send_failure_warns_once_and_the_run_completes(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(live_module, "_warned", False)
    server = LangSmithStub(ingest_status=400)
    try:
        client = langsmith.Client(api_url=server.url, api_key="dummy",
                                  tracing_error_callback=live_module.warn_send_failure)
        sink = LiveSink(client=client, project_name="p")
        with caplog.at_level(logging.WARNING, logger="lookcloser.tracing"):
            for _ in range(2):
                with start_trace(tmp_path, "lookcloser.run", {}, live=sink) as run:
                    with trace_run("child", "tool"):
                        pass
                sink.flush()
        ours = [r for r in caplog.records if r.name == "lookcloser.tracing"]
        assert len(ours) == 1 and "could not send" in ours[0].getMessage()
        validate_trace(load_trace(tmp_path / run.id))
    finally:
        server.close()


def test_tracing_enabled_follows_langsmith_settings(monkeypatch):
    for name in live_module.TRACING_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    assert not langsmith_tracing_enabled()
    monkeypatch.setenv("LANGCHAIN_TRACING_V2", "true")
    assert langsmith_tracing_enabled()
    with langsmith.tracing_context(enabled=False):
        assert not langsmith_tracing_enabled()
    monkeypatch.setenv("LANGCHAIN_TRACING_V2", "false")
    monkeypatch.setenv("LANGSMITH_TRACING", "true")
    assert langsmith_tracing_enabled()


def test_env_enabled_live_tracing_beside_langgraph_own_tracing(tmp_path, stub):
    """In a fresh process with LangSmith env vars: our runs AND LangGraph's runs reach the server."""
    script = textwrap.dedent(
        """
        import sys
        from typing import TypedDict
        from langgraph.graph import StateGraph, START, END
        from lookcloser.tracing import start_trace, trace_run

        class State(TypedDict):
            x: int

        def node(state):
            with trace_run("node.inner", "tool", {"x": state["x"]}) as run:
                run.outputs = {"y": state["x"] + 1}
            return {"x": state["x"] + 1}

        builder = StateGraph(State)
        builder.add_node("step", node)
        builder.add_edge(START, "step")
        builder.add_edge("step", END)
        graph = builder.compile()
        with start_trace(sys.argv[1], "lookcloser.run", {"q": 1}) as root:
            root.outputs = graph.invoke({"x": 1})
        print(root.id)
        """
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith(("LANGSMITH_", "LANGCHAIN_"))}
    env.update(LANGSMITH_TRACING="true", LANGSMITH_ENDPOINT=stub.url, LANGSMITH_API_KEY="dummy",
               LANGSMITH_PROJECT="lc-env")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    trace_id = done.stdout.strip().splitlines()[-1]
    local = load_trace(tmp_path / trace_id)
    received = stub.received_runs()
    ours = {k: v for k, v in received.items() if k in {r["id"] for r in local}}
    _assert_all_arrived(ours, local, "lc-env")
    theirs = [r for k, r in received.items() if k not in ours]
    assert any(r.get("name") == "LangGraph" for r in theirs), sorted({r.get("name") for r in theirs})
