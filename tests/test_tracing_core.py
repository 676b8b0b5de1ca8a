"""The trace writer and validator: nesting, errors, concurrency, crash safety, image files."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookcloser.tracing import (
    TraceError,
    current_run,
    list_traces,
    load_trace,
    start_trace,
    trace_run,
    validate_trace,
)
from lookcloser.tracing.core import TraceWriter

REPO = Path(__file__).resolve().parents[1]


def test_nested_runs_form_a_valid_langsmith_tree(tmp_path):
    with start_trace(tmp_path, "lookcloser.run", {"question": "q"}) as root:
        assert current_run() is root
        with trace_run("show", "chain") as show:
            with trace_run("vlm.generate", "llm", {"prompt": "p"}) as call:
                assert current_run() is call and call.parent is show
                call.outputs = {"text": "t"}
                call.set_usage(input_tokens=7, output_tokens=2)
        with trace_run("search", "chain"):
            with trace_run("vstar.step", "tool", {"patch": [0, 0, 10, 10]}) as step:
                step.add_event("peak", score=0.5)
        root.outputs = {"answer": "a"}
    assert current_run() is None
    runs = load_trace(tmp_path / root.id)
    validate_trace(runs)
    assert [r["name"] for r in runs] == ["lookcloser.run", "show", "vlm.generate", "search", "vstar.step"]
    assert all(r["trace_id"] == root.id for r in runs)
    llm = runs[2]
    assert llm["extra"]["metadata"]["usage_metadata"] == {"input_tokens": 7, "output_tokens": 2, "total_tokens": 9}
    assert runs[4]["events"][0]["kwargs"] == {"score": 0.5}
    meta = json.loads((tmp_path / root.id / "meta.json").read_text())
    assert (meta["trace_id"], meta["status"], meta["runs"]) == (root.id, "success", 5)


def test_dotted_order_strictly_increases_even_within_one_microsecond(tmp_path, monkeypatch):
    frozen = datetime(2026, 1, 1, 12, 0, 0, 0).astimezone()
    monkeypatch.setattr("lookcloser.tracing.core._now", lambda: frozen)
    with start_trace(tmp_path, "root", {}) as root:
        for index in range(5):
            with trace_run(f"child{index}", "tool"):
                pass
    runs = load_trace(tmp_path / root.id)
    validate_trace(runs)
    assert [r["name"] for r in runs] == ["root"] + [f"child{i}" for i in range(5)]
    orders = [r["dotted_order"] for r in runs]
    assert len(set(orders)) == len(orders)


def test_failing_child_records_its_error_and_parents_complete(tmp_path):
    with pytest.raises(ValueError, match="bad box"):
        with start_trace(tmp_path, "lookcloser.run", {}) as root:
            with trace_run("search", "chain"):
                with trace_run("tool.locate.broken", "tool"):
                    raise ValueError("bad box")
    runs = {r["name"]: r for r in load_trace(tmp_path / root.id)}
    validate_trace(list(runs.values()))
    assert runs["tool.locate.broken"]["error"] == "ValueError: bad box"
    # the error passed through the parents, so they record it too, and all have ended
    assert runs["search"]["error"] == "ValueError: bad box"
    assert all(r["end_time"] for r in runs.values())
    assert json.loads((tmp_path / root.id / "meta.json").read_text())["status"] == "error"


def test_caught_tool_error_stays_on_the_tool_run(tmp_path):
    with start_trace(tmp_path, "lookcloser.run", {}) as root:
        with trace_run("search", "chain") as search:
            try:
                with trace_run("tool.ocr.rapidocr", "tool"):
                    raise RuntimeError("onnx failed")
            except RuntimeError:
                search.outputs = {"status": "failed"}
    runs = {r["name"]: r for r in load_trace(tmp_path / root.id)}
    validate_trace(list(runs.values()))
    assert runs["tool.ocr.rapidocr"]["error"] == "RuntimeError: onnx failed"
    assert runs["search"]["error"] is None and runs["lookcloser.run"]["error"] is None


def _one_traced_job(args):
    root_dir, job = args
    with start_trace(root_dir, "lookcloser.run", {"job": job}) as root:
        for step in range(19):  # 20 runs per trace with the root
            with trace_run(f"step{step}", "tool", {"job": job, "step": step}) as run:
                run.outputs = {"job": job}
        root.outputs = {"job": job}
    return root.id


def test_concurrent_traces_stay_separate_and_uncorrupted(tmp_path):
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(_one_traced_job, [(tmp_path, job) for job in range(8)]))
    assert len(set(ids)) == 8
    for job, trace_id in enumerate(ids):
        runs = load_trace(tmp_path / trace_id)
        validate_trace(runs)
        assert len(runs) == 20
        assert {r["inputs"]["job"] for r in runs} == {job}
        assert {r["trace_id"] for r in runs} == {trace_id}
    assert {s.trace_id for s in list_traces(tmp_path)} == set(ids)


def test_crash_mid_trace_leaves_every_finished_run_readable(tmp_path):
    script = textwrap.dedent(
        """
        import os, sys
        from lookcloser.tracing import start_trace, trace_run
        with start_trace(sys.argv[1], "lookcloser.run", {"q": 1}) as root:
            print(root.id, flush=True)
            with trace_run("show", "chain"):
                for i in range(5):
                    with trace_run(f"vlm{i}", "llm", {"prompt": "x" * 20000}) as run:
                        run.outputs = {"text": "y" * 20000}
                os._exit(3)  # dies with 'show' and the root still open
        """
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                          timeout=60, cwd=REPO)
    assert done.returncode == 3, done.stderr
    trace_id = done.stdout.split()[0]
    lines = (tmp_path / trace_id / "runs.jsonl").read_text().splitlines()
    assert len(lines) == 5
    runs = [json.loads(line) for line in lines]
    assert [r["name"] for r in runs] == [f"vlm{i}" for i in range(5)]
    validate_trace(runs, complete=False)
    with pytest.raises(TraceError, match="exactly one root"):
        validate_trace(runs)
    assert json.loads((tmp_path / trace_id / "meta.json").read_text())["status"] == "running"


def test_a_line_cut_short_at_the_end_is_skipped_but_a_bad_middle_line_is_an_error(tmp_path):
    with start_trace(tmp_path, "root", {}) as root:
        with trace_run("child", "tool"):
            pass
    path = tmp_path / root.id / "runs.jsonl"
    good = path.read_text()
    path.write_text(good + '{"id": "cut')
    assert len(load_trace(path.parent)) == 2
    path.write_text('{"id": "cut\n' + good)
    with pytest.raises(TraceError, match="line 1 is not valid JSON"):
        load_trace(path.parent)


def test_images_are_files_referenced_by_relative_path_not_base64(tmp_path):
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8))
    mask = np.zeros((40, 60), dtype=bool)
    mask[10:20, 5:25] = True
    with start_trace(tmp_path, "root", {}) as root:
        root.inputs["image"] = root.save_image(picture, "input")
        with trace_run("tool.segment.sam", "tool") as run:
            run.outputs = {"mask": run.save_image(mask, "mask"), "crop": picture}
    trace_dir = tmp_path / root.id
    runs = {r["name"]: r for r in load_trace(trace_dir)}
    image_path = runs["root"]["inputs"]["image"]
    assert image_path.startswith("images/") and image_path.endswith(".png")
    assert np.array_equal(np.asarray(Image.open(trace_dir / image_path)), np.asarray(picture))
    assert np.array_equal(np.asarray(Image.open(trace_dir / runs["tool.segment.sam"]["outputs"]["mask"])) > 0, mask)
    assert runs["tool.segment.sam"]["outputs"]["crop"] == "<image 60x40>"
    text = (trace_dir / "runs.jsonl").read_text()
    assert "base64" not in text and "iVBOR" not in text  # no inlined PNG
    assert not list((trace_dir / "images").glob("*.tmp"))


def test_large_photos_can_be_saved_as_jpeg(tmp_path):
    picture = Image.new("RGB", (300, 200), (10, 120, 200))
    with start_trace(tmp_path, "root", {}) as root:
        path = root.save_image(picture, "input", format="jpeg")
        with pytest.raises(ValueError, match="'png' or 'jpeg'"):
            root.save_image(picture, "x", format="gif")
    assert path.endswith("_input.jpg")
    with Image.open(tmp_path / root.id / path) as saved:
        assert saved.format == "JPEG" and saved.size == (300, 200)


def test_no_trace_and_no_directory_write_nothing(tmp_path):
    with trace_run("loose", "tool") as run:
        assert run.save_image(Image.new("RGB", (4, 4)), "x") is None
    with start_trace(None, "root", {}, live=False) as root:
        with trace_run("child", "tool") as child:
            assert child.parent is root
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda runs: runs[1].update(trace_id=runs[1]["id"]), "traces"),
        (lambda runs: runs[1].update(run_type="agent"), "run_type 'agent'"),
        (lambda runs: runs[1].update(surprise=1), "not in langsmith's run schema"),
        (lambda runs: runs[1].pop("dotted_order"), "missing required field"),
        (lambda runs: runs[1].update(start_time="yesterday"), "start_time"),
        (lambda runs: runs[2].update(dotted_order=runs[0]["dotted_order"] + "." + runs[2]["dotted_order"].split(".")[-1]),
         "parent's dotted_order"),
        (lambda runs: runs[2].update(parent_run_id="6f1d1a3e-0000-4000-8000-000000000000"), "not a run of this trace"),
        (lambda runs: runs[1].update(end_time=(datetime.fromisoformat(runs[0]["end_time"]) + timedelta(seconds=1))
                                     .isoformat()), "ends after its parent"),
    ],
)
def test_validator_names_the_offending_run(tmp_path, mutate, message):
    with start_trace(tmp_path, "root", {}) as root:
        with trace_run("middle", "chain"):
            with trace_run("leaf", "tool"):
                pass
    runs = load_trace(tmp_path / root.id)
    validate_trace(runs)
    mutate(runs)
    with pytest.raises(TraceError, match=message) as caught:
        validate_trace(runs)
    assert "run '" in str(caught.value) or "traces" in str(caught.value)


def test_sibling_order_must_follow_start_times(tmp_path):
    with start_trace(tmp_path, "root", {}) as root:
        for name in ("first", "second"):
            with trace_run(name, "tool"):
                pass
    runs = load_trace(tmp_path / root.id)
    first, second = runs[1], runs[2]
    # swap the two start times but keep each dotted_order matching its own start_time
    first["start_time"], second["start_time"] = second["start_time"], first["start_time"]
    for run in (first, second):
        stamp = datetime.fromisoformat(run["start_time"]).strftime("%Y%m%dT%H%M%S%fZ")
        run["dotted_order"] = f"{runs[0]['dotted_order']}.{stamp}{run['id']}"
    first["end_time"] = second["end_time"] = runs[0]["end_time"]
    validate_trace(runs)  # still consistent: the order simply follows the new times
    second["dotted_order"] = second["dotted_order"].replace(second["dotted_order"].split(".")[-1][:8], "19990101")
    with pytest.raises(TraceError, match="differs from start_time"):
        validate_trace(runs)


def test_missing_or_empty_trace_dir_errors_are_one_line(tmp_path):
    with pytest.raises(TraceError, match="does not exist"):
        load_trace(tmp_path / "nope")
    with pytest.raises(TraceError, match="has no runs.jsonl"):
        load_trace(tmp_path)


def test_writer_rejects_float_arrays_with_a_clear_error(tmp_path):
    writer = TraceWriter(tmp_path)
    with pytest.raises(ValueError, match="dtype float64"):
        writer.save_image(np.zeros((2, 2)), "heat")
