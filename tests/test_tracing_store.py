"""Reading traces back: the validator accepts what the agent writes and names the run it rejects; a
process killed mid-trace leaves a readable log; listing; the package stays cheap to import."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lookcloser.tracing import (
    IMAGES_DIR,
    META_FILE,
    RUNS_FILE,
    TRACE_FORMAT,
    TraceError,
    build_tree,
    list_traces,
    load_trace,
    validate_trace,
)
from tracing_helpers import agent_trace

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def trace_dir(tmp_path_factory) -> Path:
    return agent_trace(tmp_path_factory.mktemp("traces"))[1]


def _rewrite(trace_dir: Path, change) -> dict:
    """Apply `change(record)` to the first non-root run of a copy of the log; returns that record."""
    lines = (trace_dir / RUNS_FILE).read_text().splitlines()
    records = [json.loads(line) for line in lines]
    target = next(r for r in records if r["parent_run_id"] and r["name"] == "vlm.generate")
    change(target)
    (trace_dir / RUNS_FILE).write_text("".join(json.dumps(r) + "\n" for r in records))
    return target


def _copy(trace_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / trace_dir.name
    copy.mkdir()
    (copy / RUNS_FILE).write_bytes((trace_dir / RUNS_FILE).read_bytes())
    return copy


def test_the_agent_trace_is_one_valid_tree(trace_dir):
    runs = load_trace(trace_dir)
    validate_trace(runs)
    [root] = build_tree(runs)
    assert root.run["name"] == "lookcloser" and root.run["id"] == trace_dir.name
    assert len(list(root.walk())) == len(runs)
    assert [r["dotted_order"] for r in runs] == sorted(r["dotted_order"] for r in runs)
    meta = json.loads((trace_dir / META_FILE).read_text())
    assert (meta["format"], meta["status"], meta["runs"]) == (TRACE_FORMAT, "success", len(runs))


def test_reader_and_writer_agree_on_the_layout():
    from lookcloser.tracing import jsonl

    assert (RUNS_FILE, META_FILE, IMAGES_DIR, TRACE_FORMAT) == (
        jsonl.RUNS_FILE, jsonl.META_FILE, jsonl.IMAGES_DIR, jsonl.TRACE_FORMAT)


@pytest.mark.parametrize("change, message", [
    (lambda r: r.update(parent_run_id="00000000-0000-4000-8000-000000000000"), "is not a run of this trace"),
    (lambda r: r.update(dotted_order=r["dotted_order"].rsplit(".", 1)[0]), "dotted_order ends in id"),
    (lambda r: r.update(dotted_order=r["dotted_order"].replace("T", "X", 1)), "dotted_order segment"),
    (lambda r: r.update(colour="red"), "colour are not in langsmith's run schema"),
    (lambda r: r.update(run_type="banana"), "run_type 'banana'"),
    (lambda r: r.update(end_time=None), "missing required field(s) end_time"),
    (lambda r: r.update(start_time="yesterday"), "does not match langsmith.schemas.Run"),
    (lambda r: r.update(trace_id="00000000-0000-4000-8000-000000000000"), "traces"),
])
def test_validator_rejects_a_broken_run_and_names_it(trace_dir, tmp_path, change, message):
    copy = _copy(trace_dir, tmp_path)
    broken = _rewrite(copy, change)
    with pytest.raises(TraceError, match="vlm.generate|traces") as raised:
        validate_trace(load_trace(copy))
    assert message in str(raised.value)
    if "traces" not in message:
        assert broken["id"] in str(raised.value)


def test_validator_rejects_a_duplicate_and_a_second_root(trace_dir, tmp_path):
    copy = _copy(trace_dir, tmp_path)
    lines = (copy / RUNS_FILE).read_text().splitlines()
    (copy / RUNS_FILE).write_text("\n".join([*lines, lines[0]]) + "\n")
    with pytest.raises(TraceError, match="appears twice"):
        validate_trace(load_trace(copy))
    runs = [json.loads(line) for line in lines if json.loads(line)["name"] != "lookcloser"]
    with pytest.raises(TraceError, match="exactly one root run"):
        validate_trace(runs)
    validate_trace(runs, complete=False)  # a trace cut short: the links that are there still hold


def test_a_line_cut_short_at_the_end_is_skipped_with_a_warning(trace_dir, tmp_path, caplog):
    copy = _copy(trace_dir, tmp_path)
    whole = len(load_trace(copy))
    with open(copy / RUNS_FILE, "a") as log:
        log.write('{"id": "half a reco')
    with caplog.at_level(logging.WARNING, logger="lookcloser.tracing"):
        assert len(load_trace(copy)) == whole
    assert "cut short" in caplog.text


def test_a_bad_line_in_the_middle_is_an_error_naming_the_line(trace_dir, tmp_path):
    copy = _copy(trace_dir, tmp_path)
    lines = (copy / RUNS_FILE).read_text().splitlines()
    (copy / RUNS_FILE).write_text("\n".join([lines[0], "{not json", *lines[1:]]) + "\n")
    with pytest.raises(TraceError, match="line 2 is not valid JSON"):
        load_trace(copy)


KILLED_RUN = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, sys.argv[2])
    from doubles import FixedLocalizer, ScriptedVLM
    from tracing_helpers import missing, scene
    from lookcloser import Agent

    def script(text, images):
        if "Additional visual information" in text:   # TELL: the searches are done and logged
            print("TELLING", flush=True)
            time.sleep(120)
        return missing("sign", "cup")

    agent = Agent(vlm=ScriptedVLM(script), tools={"localizer": FixedLocalizer({"sign": (420, 260, 500, 310)})},
                  trace_dir=sys.argv[1])
    agent.run(scene(), "What does the sign say?")
    """
)


def test_a_run_killed_mid_trace_leaves_every_written_line_readable(tmp_path):
    process = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(tmp_path), str(TESTS)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "TELLING", process.stderr.read()
        time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    [trace_dir] = [d for d in tmp_path.iterdir() if d.is_dir()]
    raw = (trace_dir / RUNS_FILE).read_text()
    assert raw.endswith("\n")
    records = [json.loads(line) for line in raw.splitlines()]  # every line is a whole JSON run
    names = [r["name"] for r in records]
    assert names.count("search") == 2 and "show" in names and "vlm.generate" in names
    assert "lookcloser" not in names and "tell" not in names  # unfinished runs are not written
    runs = load_trace(trace_dir)
    validate_trace(runs, complete=False)
    with pytest.raises(TraceError, match="exactly one root run"):
        validate_trace(runs)
    assert json.loads((trace_dir / META_FILE).read_text())["status"] == "running"
    [summary] = list_traces(tmp_path)
    assert (summary.status, summary.runs) == ("running", len(runs))


def test_list_traces_newest_first_and_an_unreadable_one_is_listed_not_fatal(tmp_path):
    older = agent_trace(tmp_path)[1]
    newer = agent_trace(tmp_path)[1]
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / META_FILE).write_text("[1, 2]")
    summaries = list_traces(tmp_path)
    assert [s.directory for s in summaries] == [newer, older, broken]
    assert summaries[0].status == "success" and summaries[0].name == "lookcloser"
    assert summaries[2].status.startswith("unreadable:")
    with pytest.raises(TraceError, match="does not exist"):
        list_traces(tmp_path / "nope")


def test_importing_the_tracing_package_and_its_reader_stays_cheap():
    code = ("import sys, lookcloser.tracing, lookcloser.tracing.store, lookcloser.entrypoints.cli.trace; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'langgraph', 'langchain_core', 'transformers', "
            "'torch', 'PIL', 'langsmith'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "LANGSMITH_TRACING": "false"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    import lookcloser.tracing as tracing

    assert set(tracing.__all__) == {name for name in tracing.__all__ if getattr(tracing, name, None) is not None}
    for gone in ("core", "live"):
        assert not (Path(tracing.__file__).parent / f"{gone}.py").exists()


def test_tools_reach_tracing_only_through_langchain():
    """No tool module imports the agent's tracing or counters: a tool's runs come from langchain-core."""
    import ast

    tools_dir = Path(__file__).resolve().parents[1] / "tools"
    banned = ("lookcloser.tracing", "lookcloser.graphs.counting", "lookcloser.runtime.expert_tools")
    offenders = []
    for path in sorted(tools_dir.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(tools_dir)}: {n}" for n in names if n.startswith(banned)]
    assert len(list(tools_dir.rglob("*.py"))) > 10 and offenders == []
