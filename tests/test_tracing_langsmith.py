"""LangSmith: with LANGSMITH_TRACING=true an Agent run arrives as ONE trace (LangGraph's graph run with
our VLM and tool runs under its node runs), the local runs.jsonl holds the very same runs, and a saved
trace can be uploaded later. All against a local stub of the LangSmith API that records what the real
`langsmith` client sends (JSON batch, multipart, zstd-compressed multipart)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import langsmith
import pytest

from lookcloser.tracing import TraceError, UploadError, load_trace, upload_trace, validate_trace
from tracing_helpers import ANSWER, LangSmithStub, agent_trace

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent

AGENT_RUN = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from langchain_core.tracers.langchain import wait_for_all_tracers
    from doubles import FixedLocalizer, ScriptedVLM
    from tracing_helpers import ANSWER, missing, scene
    from lookcloser import Agent

    trace_dir = sys.argv[2] if len(sys.argv) > 2 else None
    vlm = ScriptedVLM([missing("sign", "cup"), ANSWER])
    agent = Agent(vlm=vlm, tools={"localizer": FixedLocalizer({"sign": (420, 260, 500, 310)})}, trace_dir=trace_dir)
    answer = agent.run(scene(), "What does the sign say?")
    wait_for_all_tracers()
    print(json.dumps({"trace_id": answer.trace_id, "trace_dir": answer.trace_dir, "answer": answer.text}))
    """
)


@pytest.fixture()
def stub():
    server = LangSmithStub()
    yield server
    server.close()


def _langsmith_env(stub: LangSmithStub, project: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH_", "LANGCHAIN_", "LOOKCLOSER_"))}
    env.update(LANGSMITH_TRACING="true", LANGSMITH_ENDPOINT=stub.url, LANGSMITH_API_KEY="x", LANGSMITH_PROJECT=project)
    return env


def _id_path(dotted_order: str) -> list[str]:
    return [segment.split("Z", 1)[1] for segment in dotted_order.split(".")]


def _run_agent(stub: LangSmithStub, cwd: Path, *trace_dir: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", AGENT_RUN, str(TESTS), *map(str, trace_dir)],
                          env=_langsmith_env(stub, "lc-live"), capture_output=True, text=True, timeout=180, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_langsmith_gets_one_tree_and_the_local_file_holds_the_same_runs(tmp_path, stub):
    result = _run_agent(stub, tmp_path, tmp_path / "traces")
    assert result["answer"] == ANSWER
    received = stub.received_runs()
    assert received, f"nothing reached the stub; requests: {[r[:2] for r in stub.requests]}"
    assert {run["trace_id"] for run in received.values()} == {result["trace_id"]}  # ONE trace
    root = received[result["trace_id"]]
    assert root["name"] == "lookcloser" and root.get("parent_run_id") is None
    assert root["outputs"]["answer"] == ANSWER
    names = {run_id: run["name"] for run_id, run in received.items()}
    calls = {run["name"]: names[run["parent_run_id"]] for run in received.values() if run["run_type"] in ("llm", "tool")}
    assert calls == {"vlm.generate": "tell", "tool.localizer.fixed": "search"}
    show_calls = [r for r in received.values() if r["run_type"] == "llm" and names[r["parent_run_id"]] == "show"]
    assert len(show_calls) == 1
    assert {names[r["parent_run_id"]] for r in received.values() if r["run_type"] == "llm"} == {"show", "tell"}
    assert all(run.get("session_name") == "lc-live" for run in received.values() if "session_name" in run)
    assert all(run.get("end_time") for run in received.values())

    # the local trace is an exporter of the same tree: same run ids, names and parents (each tracer
    # stamps its own start/end times, so dotted_order agrees on the chain of ids, not to the microsecond)
    local = load_trace(result["trace_dir"])
    validate_trace(local)
    assert {r["id"] for r in local} == set(received)
    for record in local:
        sent = received[record["id"]]
        assert (sent["name"], sent.get("parent_run_id"), _id_path(sent["dotted_order"])) == (
            record["name"], record["parent_run_id"], _id_path(record["dotted_order"]))
    # images: a content-hash marker in LangSmith, the file named by that hash locally
    tell_local = [r for r in local if r["run_type"] == "llm"][-1]
    local_blocks = tell_local["inputs"]["messages"][0][0]["kwargs"]["content"]
    sent_blocks = received[tell_local["id"]]["inputs"]["messages"][0][0]["kwargs"]["content"]
    images = [(here["image_url"]["url"], there["image_url"]["url"]) for here, there in zip(local_blocks, sent_blocks)
              if here["type"] == "image_url"]
    assert len(images) == 2  # the image and the sign's crop
    for here, there in images:
        assert there == "lookcloser-image:" + Path(here).stem
        assert (Path(result["trace_dir"]) / here).is_file()


def test_langsmith_tracing_alone_writes_no_local_files(tmp_path, stub):
    result = _run_agent(stub, tmp_path)
    assert result["trace_dir"] is None
    assert list(tmp_path.iterdir()) == []
    received = stub.received_runs()
    assert {run["trace_id"] for run in received.values()} == {result["trace_id"]}
    assert {"lookcloser", "show", "search", "tell", "vlm.generate", "tool.localizer.fixed"} <= {
        run["name"] for run in received.values()}


def test_upload_sends_every_run_of_a_saved_trace(tmp_path, stub):
    answer, trace_dir = agent_trace(tmp_path)
    client = langsmith.Client(api_url=stub.url, api_key="dummy-key", auto_batch_tracing=False)
    result = upload_trace(trace_dir, client=client, project_name="lc-upload")
    local = load_trace(trace_dir)
    assert (result.trace_id, result.runs, result.project_name) == (answer.trace_id, len(local), "lc-upload")
    ingest = stub.ingest_requests()
    assert ingest and all(headers.get("x-api-key") == "dummy-key" for _, _, headers, _ in ingest)
    received = stub.received_runs()
    assert set(received) == {r["id"] for r in local}
    for record in local:
        sent = received[record["id"]]
        assert (sent["trace_id"], sent["dotted_order"], sent.get("parent_run_id"), sent["name"], sent["run_type"]) == (
            record["trace_id"], record["dotted_order"], record["parent_run_id"], record["name"], record["run_type"])
        assert sent["session_name"] == "lc-upload"
    llm = next(r for r in received.values() if r["run_type"] == "llm")
    assert llm["extra"]["metadata"]["usage_metadata"]["input_tokens"] > 0
    root = received[answer.trace_id]
    assert root["inputs"]["image"].startswith("images/")  # images are not uploaded: the path stays a string


def test_upload_raises_when_langsmith_refuses(tmp_path):
    server = LangSmithStub(ingest_status=400)
    try:
        _, trace_dir = agent_trace(tmp_path)
        client = langsmith.Client(api_url=server.url, api_key="dummy", auto_batch_tracing=False)
        with pytest.raises(UploadError, match="failed"):
            upload_trace(trace_dir, client=client, project_name="p")
    finally:
        server.close()


def test_upload_refuses_an_inconsistent_trace_before_sending(tmp_path, stub):
    _, trace_dir = agent_trace(tmp_path)
    lines = (trace_dir / "runs.jsonl").read_text().splitlines()
    broken = json.loads(lines[0])
    broken["parent_run_id"] = "00000000-0000-4000-8000-000000000000"
    (trace_dir / "runs.jsonl").write_text("\n".join([json.dumps(broken), *lines[1:]]) + "\n")
    client = langsmith.Client(api_url=stub.url, api_key="dummy", auto_batch_tracing=False)
    with pytest.raises(TraceError, match=broken["id"]):
        upload_trace(trace_dir, client=client, project_name="p")
    assert stub.ingest_requests() == []
