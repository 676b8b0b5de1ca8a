"""LangSmith upload and live sending, against a local stub server that records what the real
`langsmith` client sends (JSON batch, multipart, zstd-compressed multipart: whatever it picks)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import langsmith
import pytest
from PIL import Image

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
from tracing_helpers import LangSmithStub

REPO = Path(__file__).resolve().parents[1]


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


def test_live_only_trace_without_a_local_directory(tmp_path, stub):
    client = langsmith.Client(api_url=stub.url, api_key="dummy")
    sink = LiveSink(client=client, project_name="lc-live-only")
    with start_trace(None, "lookcloser.run", {"question": "q"}, live=sink) as run:
        assert run.save_image(Image.new("RGB", (4, 4)), "input") is None
        with trace_run("tool.ocr.x", "tool"):
            pass
    sink.flush()
    received = stub.received_runs()
    assert len(received) == 2 and run.id in received
    assert {r["name"] for r in received.values()} == {"lookcloser.run", "tool.ocr.x"}
    assert all(r["trace_id"] == run.id and r.get("end_time") for r in received.values())
    assert list(tmp_path.iterdir()) == []
