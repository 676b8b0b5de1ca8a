"""`lookcloser trace show|validate|report|upload` on agent traces; every error is one `error:` line
and exit status 2 (through the installed `lookcloser` command, as a user runs it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lookcloser.tracing import RUNS_FILE, load_trace
from lookcloser.entrypoints.cli.trace import trace_app
from tracing_helpers import ANSWER, LangSmithStub, agent_trace

LOOKCLOSER = Path(sys.executable).with_name("lookcloser")
runner = CliRunner()


def invoke(*args):
    return runner.invoke(trace_app, [str(a) for a in args], env={"COLUMNS": "220"})


def lookcloser(*args, env=None, cwd=None) -> subprocess.CompletedProcess:
    command = [str(LOOKCLOSER)] if LOOKCLOSER.exists() else [sys.executable, "-m", "lookcloser.entrypoints.cli"]
    return subprocess.run([*command, "trace", *map(str, args)], capture_output=True, text=True, timeout=120,
                          env={**(env or os.environ), "COLUMNS": "200"}, cwd=cwd)


@pytest.fixture(scope="module")
def trace_dir(tmp_path_factory) -> Path:
    return agent_trace(tmp_path_factory.mktemp("traces"))[1]


def test_show_prints_the_run_tree_with_types_timings_and_outputs(trace_dir):
    result = invoke("show", trace_dir)
    assert result.exit_code == 0, result.output
    out = result.output
    for text in ("lookcloser", "read_input", "show", "tell", "vlm.generate", "tool.localizer.stepping", "llm",
                 "tool", " ms", f"answer={ANSWER}", f"reply='{ANSWER}'"):
        assert text in out, text
    assert out.count("vstar.step") == 8
    assert f"{len(load_trace(trace_dir))} runs; valid LangSmith trace" in out


def test_show_on_the_traces_root_lists_traces_newest_first(tmp_path):
    older = agent_trace(tmp_path)[1]
    newer = agent_trace(tmp_path)[1]
    result = invoke("show", tmp_path)
    assert result.exit_code == 0, result.output
    assert result.output.index(newer.name[:8]) < result.output.index(older.name[:8])
    assert "success" in result.output


def test_validate_and_report(trace_dir, tmp_path):
    result = invoke("validate", trace_dir)
    assert result.exit_code == 0 and f"{len(load_trace(trace_dir))} runs, valid" in result.output
    out = tmp_path / "site" / "report.html"
    result = invoke("report", trace_dir, "-o", out)
    assert result.exit_code == 0, result.output
    assert f'<div id="final-answer">{ANSWER}</div>' in out.read_text()


def _one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    return lines[0]


def test_errors_are_one_line_and_exit_2(trace_dir, tmp_path):
    missing = tmp_path / "nope"
    for command in ("show", "validate", "report", "upload"):
        assert _one_error_line(lookcloser(command, missing)) == (
            f"error: '{missing}' does not exist" if command == "show" else f"error: trace directory '{missing}' does not exist")
    a_file = tmp_path / "notes.txt"
    a_file.write_text("hello")
    for command in ("show", "validate", "report"):
        assert "is not a trace directory" in _one_error_line(lookcloser(command, a_file))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no traces" in _one_error_line(lookcloser("show", empty))
    assert "has no runs.jsonl" in _one_error_line(lookcloser("validate", empty))

    broken = tmp_path / "broken"
    broken.mkdir()
    lines = (trace_dir / RUNS_FILE).read_text().splitlines()
    (broken / RUNS_FILE).write_text("\n".join([lines[0], "{oops", *lines[1:]]) + "\n")
    for command in ("show", "validate", "report", "upload"):
        assert "line 2 is not valid JSON" in _one_error_line(lookcloser(command, broken))

    assert "Missing argument" in _one_error_line(lookcloser("report"))
    assert "No such option: --bogus" in _one_error_line(lookcloser("validate", trace_dir, "--bogus"))
    assert "is a folder" in _one_error_line(lookcloser("report", trace_dir, "-o", tmp_path))


def test_validate_names_the_broken_run(trace_dir, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    records = [json.loads(line) for line in (trace_dir / RUNS_FILE).read_text().splitlines()]
    records[1]["run_type"] = "banana"
    (copy / RUNS_FILE).write_text("".join(json.dumps(r) + "\n" for r in records))
    line = _one_error_line(lookcloser("validate", copy))
    assert records[1]["id"] in line and "banana" in line


def test_upload_sends_the_trace_and_says_images_stay_behind(trace_dir):
    help_text = lookcloser("upload", "--help").stdout
    assert "Images are not uploaded" in " ".join(help_text.split())
    stub = LangSmithStub()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGSMITH_", "LANGCHAIN_"))}
        env.update(LANGSMITH_ENDPOINT=stub.url, LANGSMITH_API_KEY="dummy-cli")
        done = lookcloser("upload", trace_dir, "--project", "cli-project", env=env)
        assert done.returncode == 0, done.stderr + done.stdout
        local = load_trace(trace_dir)
        assert f"uploaded {len(local)} runs" in done.stdout and "cli-project" in done.stdout
        received = stub.received_runs()
        assert set(received) == {r["id"] for r in local}
        assert {r["session_name"] for r in received.values()} == {"cli-project"}
    finally:
        stub.close()
    refusing = LangSmithStub(ingest_status=403)
    try:
        env.update(LANGSMITH_ENDPOINT=refusing.url)
        assert "LangSmith failed" in _one_error_line(lookcloser("upload", trace_dir, env=env))
    finally:
        refusing.close()
