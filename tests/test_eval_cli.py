"""`lookcloser eval`, `eval --compare`, `eval-search` and many-image `find` from the command line, as a
user runs them: the VLM is an OpenAI-compatible stub server, everything else is real."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eval_helpers import knowing_reply, make_vstar
from openai_stub import StubServer, prompt_text
from PIL import Image
from typer.testing import CliRunner

from lookcloser.entrypoints.cli import app
from lookcloser.eval import read_rows

runner = CliRunner()
TEXT_DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "text_dev"


def _knowing_stub(stub: StubServer, wrong=frozenset()) -> None:
    stub.script = lambda request: json.loads(knowing_reply(prompt_text(request), wrong))["answer"]


def test_eval_resume_and_compare_from_the_command_line(tmp_path):
    data = make_vstar(tmp_path / "vstar")
    with StubServer() as stub:
        _knowing_stub(stub, {"Is the flag red or white?"})
        args = ["eval", str(data), "--vlm", stub.spec, "--tool", "localizer=whole_image", "--seed", "4"]
        first = runner.invoke(app, [*args, "--out", str(tmp_path / "a"), "--limit", "3"])
        assert first.exit_code == 0, first.output
        assert "overall" in first.output and "66.7%" in first.output  # 2 of the first 3 right
        assert (tmp_path / "a" / "traces").is_dir()  # a trace per item, the path in each row
        rows = read_rows(tmp_path / "a" / "results.jsonl")
        assert all(Path(r["trace"]).is_dir() for r in rows)

        again = runner.invoke(app, [*args, "--out", str(tmp_path / "a")])
        assert again.exit_code == 2 and "pass --resume" in again.output
        asked = len(stub.requests)
        resumed = runner.invoke(app, [*args, "--out", str(tmp_path / "a"), "--resume"])
        assert resumed.exit_code == 0, resumed.output
        assert len(stub.requests) == asked + 2  # only the two items not yet done

        _knowing_stub(stub)
        other = runner.invoke(app, [*args, "--out", str(tmp_path / "b"), "--no-traces", "--workers", "2"])
        assert other.exit_code == 0 and "100.0%" in other.output
        assert not (tmp_path / "b" / "traces").exists()

    compared = runner.invoke(app, ["eval", "--compare", str(tmp_path / "a"), str(tmp_path / "b"),
                                   "--plot", str(tmp_path / "both.svg")])
    assert compared.exit_code == 0, compared.output
    assert "80.0%" in compared.output and "100.0%" in compared.output
    assert "settings.run.workers" in compared.output  # settings that differ are listed
    assert (tmp_path / "both.svg").read_text().count("<circle") == 2


def test_eval_exits_2_when_every_item_failed_and_resume_runs_the_error_rows_again(tmp_path):
    """The endpoint is down: 5 error rows, exit 2 with one line saying so. It comes back: --resume asks the
    5 again (and says so), the run is complete and right."""
    data = make_vstar(tmp_path / "vstar")
    with StubServer() as stub:
        stub.status = 400  # a refusal the client does not retry: every item fails at once
        args = ["eval", str(data), "--vlm", stub.spec, "--tool", "localizer=whole_image", "--no-traces",
                "--out", str(tmp_path / "run")]
        failed = runner.invoke(app, args)
        assert failed.exit_code == 2, failed.output
        errors = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and errors[0].startswith("error: every item failed (5 of 5 rows are errors)")
        assert "VLMError" in errors[0] and "--resume" in errors[0]
        assert "overall" in failed.stdout  # the summary table still prints, before the error line
        assert all(r["error"] for r in read_rows(tmp_path / "run" / "results.jsonl"))

        stub.status = 200
        _knowing_stub(stub)
        asked = len(stub.requests)
        resumed = runner.invoke(app, [*args, "--resume"])
        assert resumed.exit_code == 0, resumed.output
        assert len(stub.requests) == asked + 5  # every error row asked again, nothing else
        assert "--resume: 5 error rows of the earlier run were run again" in resumed.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["overall"]["accuracy"] == 1.0 and summary["overall"]["errors"] == 0
    assert summary["settings"]["retried_errors"] == 5 and summary["settings"]["complete"] is True
    assert "error rows of the earlier run were run again" in (tmp_path / "run" / "summary.md").read_text()


def test_eval_search_exits_2_when_every_target_failed(tmp_path):
    data = make_vstar(tmp_path / "vstar")
    for image in data.glob("*/*.jpg"):
        image.unlink()
    result = runner.invoke(app, ["eval-search", str(data), "--out", str(tmp_path / "s"),
                                 "--tool", "localizer=whole_image"])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "every item failed (5 of 5 rows are errors)" in errors[0]
    assert "image file not found" in errors[0]


def test_eval_mistakes_are_one_line(tmp_path):
    result = runner.invoke(app, ["eval", str(tmp_path / "nope"), "--out", str(tmp_path / "o"), "--vlm", "openai:x@http://127.0.0.1:9/v1"])
    assert result.exit_code == 2 and "dataset not found" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["eval", str(tmp_path), "--out", str(tmp_path / "o"), "--address", "auto"])
    assert result.exit_code == 2 and "--address needs --ray" in result.output
    result = runner.invoke(app, ["eval", "--compare", str(tmp_path)])
    assert result.exit_code == 2 and "at least two run folders" in result.output
    result = runner.invoke(app, ["eval", "--compare", str(tmp_path), str(tmp_path / "x")])
    assert result.exit_code == 2 and "summary.json not found" in result.output


def test_find_many_images_writes_json_lines(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        Image.new("RGB", (40, 30), "white").save(folder / name)
    (folder / "c.jpg").write_text("not an image")
    result = runner.invoke(app, ["find", str(folder), "text", "--tool", "localizer=whole_image",
                                 "--trace-dir", str(tmp_path / "t")])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [Path(line["image"]).name for line in lines] == ["a.png", "b.png", "c.jpg"]
    assert lines[0]["error"] is None and lines[0]["findings"][0]["status"] == "not_found"
    assert "not a readable image" in lines[2]["error"]
    result = runner.invoke(app, ["find", str(folder / "a.png"), str(tmp_path / "missing.png"), "x"])
    assert result.exit_code == 2 and "image file not found" in result.output


@pytest.mark.slow
def test_eval_search_on_text_dev_with_the_real_text_cue(tmp_path):
    """Real numbers: the V* read-all search with the PP-OCR text cue finds the 10-px 'WWW.TVR.BY'."""
    if not (TEXT_DEV / "items.jsonl").is_file():
        pytest.skip("../shared/data/text_dev is not here (a user's clone has no shared/)")
    records = [json.loads(line) for line in (TEXT_DEV / "items.jsonl").read_text().splitlines() if line.strip()]
    chosen = [dict(r, id=r["text"], image=str(TEXT_DEV / r["image"])) for r in records if r["text"] == "WWW.TVR.BY"]
    (tmp_path / "one.jsonl").write_text("\n".join(json.dumps(r) for r in chosen) + "\n")
    result = runner.invoke(app, ["eval-search", str(tmp_path / "one.jsonl"), "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    row = read_rows(tmp_path / "s" / "results.jsonl")[0]
    assert row["hit"] and row["iou"] > 0.5 and row["text"] == "WWW.TVR.BY" and row["tool"] == "vstar"
    assert row["search_steps"] >= 1 and row["cue_calls"] >= 1
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert summary["overall"]["hits"] == 1 and summary["overall"]["hit_rate"] == 1.0
