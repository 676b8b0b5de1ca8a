"""The `lookcloser` command through typer's runner (same code path as the installed script)."""

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from lookcloser.cli import app

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
runner = CliRunner()


def test_find_missing_file_is_one_clear_line(tmp_path):
    result = runner.invoke(app, ["find", str(tmp_path / "nope.jpg"), "text", "--kind", "text"])
    assert result.exit_code == 2
    assert "image file not found" in result.output and "Traceback" not in result.output


def test_find_unreadable_image(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    result = runner.invoke(app, ["find", str(bad), "x", "--trace-dir", str(tmp_path / "t")])
    assert result.exit_code == 2 and "not a readable image" in result.output


def test_unknown_tool_and_bad_kind(tmp_path):
    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(image)
    result = runner.invoke(app, ["find", str(image), "x", "--tool", "localizer=nope"])
    assert result.exit_code == 2 and "unknown localizer 'nope'; known localizers:" in result.output
    result = runner.invoke(app, ["find", str(image), "x", "--kind", "thing"])
    assert result.exit_code == 2 and "--kind must be" in result.output


def test_ask_with_unloadable_model_is_one_clear_line(tmp_path):
    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(image)
    result = runner.invoke(app, ["ask", str(image), "What?", "--vlm", f"transformers:{tmp_path / 'no_model'}",
                                 "--trace-dir", str(tmp_path / "t")])
    assert result.exit_code == 2
    assert "no_model" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_find_text_json_on_real_photo_with_whole_image_pass(tmp_path):
    result = runner.invoke(app, ["find", str(EXAMPLES / "instrument.webp"), "text", "--kind", "text",
                                 "--tool", "localizer=whole_image", "--json", "--trace-dir", str(tmp_path / "t"),
                                 "--save-vis", str(tmp_path / "vis.png")])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["findings"] and {"name", "kind", "status", "box", "score", "text", "tool", "error"} <= set(payload["findings"][0])
    assert all(f["kind"] == "text" for f in payload["findings"])
    assert Image.open(tmp_path / "vis.png").size[0] > 0


@pytest.mark.slow
def test_find_text_on_real_photo_reads_the_small_web_address(tmp_path):
    """The README's promise: `lookcloser find examples/vending_machine.jpg text --json` reads small text."""
    result = runner.invoke(app, ["find", str(EXAMPLES / "vending_machine.jpg"), "text", "--json",
                                 "--trace-dir", str(tmp_path / "t")])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    texts = [f["text"] for f in payload["findings"]]
    assert "WWW.TVR.BY" in texts, texts  # 10 px high in a 2250x1500 photo
    assert all(f["kind"] == "text" and f["tool"] == "vstar" for f in payload["findings"])
