"""`lookcloser trace show|validate|report|upload` through typer's runner (upload in a real process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from lookcloser.tracing import load_trace
from lookcloser.tracing.cli import trace_app
from tracing_helpers import ANSWER, LangSmithStub, build_demo_trace

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def invoke(*args):
    return runner.invoke(trace_app, [str(a) for a in args], env={"COLUMNS": "220"})


def test_show_prints_the_run_tree_with_types_timings_and_errors(tmp_path):
    trace_dir = build_demo_trace(tmp_path)
    result = invoke("show", trace_dir)
    assert result.exit_code == 0, result.output
    out = result.output
    for text in ("lookcloser.run", "vlm.generate", "vstar.step", "tool.segmenter.sam", "llm", "tool", " ms", ANSWER):
        assert text in out, text
    assert out.count("vstar.step") == 3
    assert "10 runs; valid LangSmith trace" in out


def test_show_on_the_traces_root_lists_traces_newest_first(tmp_path):
    older = build_demo_trace(tmp_path)
    time.sleep(0.01)
    newer = build_demo_trace(tmp_path)
    result = invoke("show", tmp_path)
    assert result.exit_code == 0, result.output
    assert result.output.index(newer.name) < result.output.index(older.name)


def test_missing_dir_and_dir_without_runs_give_one_line_errors(tmp_path):
    result = invoke("show", tmp_path / "nope")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"error: '{tmp_path / 'nope'}' does not exist"]
    result = invoke("show", tmp_path)
    assert result.exit_code == 1 and "holds no traces" in result.output and len(result.output.strip().splitlines()) == 1
    for command in ("report", "validate", "upload"):
        result = invoke(command, tmp_path)
        assert result.exit_code == 1, command
        assert result.output.strip().splitlines() == [
            f"error: '{tmp_path}' has no runs.jsonl: not a trace directory (or the trace wrote no run yet)"], command


def test_validate_names_the_broken_run(tmp_path):
    trace_dir = build_demo_trace(tmp_path)
    assert invoke("validate", trace_dir).exit_code == 0
    lines = (trace_dir / "runs.jsonl").read_text().splitlines()
    record = json.loads(lines[0])
    record["run_type"] = "banana"
    (trace_dir / "runs.jsonl").write_text("\n".join([json.dumps(record), *lines[1:]]) + "\n")
    result = invoke("validate", trace_dir)
    assert result.exit_code == 1 and record["id"] in result.output and "banana" in result.output


def test_report_writes_the_page(tmp_path):
    trace_dir = build_demo_trace(tmp_path / "traces")
    out = tmp_path / "site" / "report.html"
    result = invoke("report", trace_dir, "-o", out)
    assert result.exit_code == 0, result.output
    assert ANSWER in out.read_text()


def test_upload_command_sends_the_trace_using_langsmith_env(tmp_path):
    trace_dir = build_demo_trace(tmp_path)
    stub = LangSmithStub()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH_", "LANGCHAIN_"))}
        env.update(LANGSMITH_ENDPOINT=stub.url, LANGSMITH_API_KEY="dummy-cli")
        done = subprocess.run([sys.executable, "-m", "lookcloser.tracing.cli", "upload", str(trace_dir),
                               "--project", "cli-project"], env=env, capture_output=True, text=True, timeout=120,
                              cwd=REPO)
        assert done.returncode == 0, done.stderr + done.stdout
        assert "uploaded 10 runs" in done.stdout and "cli-project" in done.stdout
        received = stub.received_runs()
        local = load_trace(trace_dir)
        assert set(received) == {r["id"] for r in local}
        for record in local:
            sent = received[record["id"]]
            assert (sent["trace_id"], sent["dotted_order"], sent.get("parent_run_id"), sent["session_name"]) == (
                record["trace_id"], record["dotted_order"], record["parent_run_id"], "cli-project")
    finally:
        stub.close()
