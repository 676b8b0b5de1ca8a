"""Files the CLI reads are regular files of bounded size: a named pipe, /dev/zero or an oversized --config is
refused in one line at once (never opened for an unbounded read, never a hang: pytest-timeout fails a hang),
for the image and --config of ask and find. And `--tool ROLE.OPTION=JSON`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from lookcloser.entrypoints.cli import app
from lookcloser.core.errors import SettingsError
from lookcloser.imaging.files import MAX_SETTINGS_BYTES
from lookcloser.runtime.settings import parse_tool_flags
from test_cli import _FakeAgent, fake_agent  # noqa: F401 - the fixture and the stand-in Agent

runner = CliRunner()
HANG_BOUND_S = 60  # a hang fails here instead of blocking the suite


@pytest.fixture
def files(tmp_path):
    Image.new("RGB", (16, 16), "white").save(tmp_path / "a.png")
    os.mkfifo(tmp_path / "pipe")
    return tmp_path


def _special(files: Path, which: str) -> tuple[Path, str]:
    if which == "zero":
        return Path("/dev/zero"), "is a character device, not a regular file"
    return files / "pipe", "is a named pipe, not a regular file"


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.timeout(HANG_BOUND_S)
@pytest.mark.parametrize("which", ["zero", "pipe"])
@pytest.mark.parametrize("command", ["ask", "find"])
def test_a_pipe_or_a_device_as_the_image_is_refused_in_one_line(files, command, which):
    path, what = _special(files, which)
    line = _one_error_line(runner.invoke(app, [command, str(path), "what?", "--trace-dir", str(files / "t")]))
    assert line == f"error: image file {path} {what}"


@pytest.mark.timeout(HANG_BOUND_S)
@pytest.mark.parametrize("which", ["zero", "pipe"])
@pytest.mark.parametrize("command", ["ask", "find"])
def test_a_pipe_or_a_device_as_the_config_is_refused_in_one_line(files, command, which):
    path, what = _special(files, which)
    line = _one_error_line(runner.invoke(app, [command, str(files / "a.png"), "what?", "--config", str(path),
                                               "--trace-dir", str(files / "t")]))
    assert line == f"error: --config {path} {what}"


@pytest.mark.timeout(HANG_BOUND_S)
def test_an_oversized_config_is_refused_without_reading_it(files):
    config = files / "huge.toml"
    config.write_text("# padding\n" * (MAX_SETTINGS_BYTES // 10 + 1))
    size = config.stat().st_size
    line = _one_error_line(runner.invoke(app, ["find", str(files / "a.png"), "x", "--config", str(config)]))
    assert line == f"error: --config {config} is {size:,} bytes, more than the 1 MiB allowed"


@pytest.mark.timeout(HANG_BOUND_S)
def test_the_real_command_refuses_a_pipe_and_dev_zero_at_once(files):
    """The reported hangs, as a user meets them: `ask PIPE q` and `ask IMAGE q --config /dev/zero`."""
    script = Path(sys.executable).parent / "lookcloser"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "lookcloser.entrypoints.cli"]
    for args, message in (([files / "pipe", "q"], f"image file {files / 'pipe'} is a named pipe"),
                          ([files / "a.png", "q", "--config", "/dev/zero"], "--config /dev/zero is a character device")):
        done = subprocess.run([*command, "ask", *map(str, args)], capture_output=True, text=True, timeout=HANG_BOUND_S)
        assert done.returncode == 2 and done.stdout == "", done.stderr
        assert done.stderr.startswith(f"error: {message}") and len(done.stderr.splitlines()) == 1, done.stderr


@pytest.mark.timeout(HANG_BOUND_S)
def test_find_in_a_folder_skips_a_pipe_and_refuses_one_named(files):
    folder = files / "images"
    folder.mkdir()
    Image.new("RGB", (16, 16), "white").save(folder / "a.png")
    os.mkfifo(folder / "b.png")  # not a regular file: not an image of the folder
    result = runner.invoke(app, ["find", str(folder), "text", "--tool", "localizer=whole_image",
                                 "--trace-dir", str(files / "t")])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [Path(line["image"]).name for line in lines] == ["a.png"]
    line = _one_error_line(runner.invoke(app, ["find", str(folder / "a.png"), str(folder / "b.png"), "x"]))
    assert "is a named pipe, not a regular file" in line


# ------------------------------------------------------------------------------ --tool JSON values
def test_tool_option_values_are_toml_or_json():
    tools = parse_tool_flags(['localizer.text_options={"max_input_pixels": 0}', "localizer.steps=[1, 2]",
                              "detector.model=/models/gdino", "detector.box_threshold=0.3",
                              "segmenter.extra={ points = 2 }"])
    assert tools["localizer"] == {"text_options": {"max_input_pixels": 0}, "steps": [1, 2]}
    assert tools["detector"] == {"model": "/models/gdino", "box_threshold": 0.3}
    assert tools["segmenter"] == {"extra": {"points": 2}}  # a TOML inline table still reads as before


def test_a_broken_json_value_is_one_line_naming_the_option(files):
    flag = 'localizer.text_options={"max_input_pixels":'
    with pytest.raises(SettingsError, match="--tool localizer.text_options="):
        parse_tool_flags([flag])
    line = _one_error_line(runner.invoke(app, ["find", str(files / "a.png"), "x", "--tool", flag]))
    assert line.startswith(f"error: --tool {flag}: the value is neither JSON nor TOML")


def test_a_json_value_reaches_the_agent_as_a_table(files, fake_agent):
    result = runner.invoke(app, ["find", str(files / "a.png"), "x", "--json", "--trace-dir", str(files / "t"),
                                 "--tool", 'localizer.text_options={"max_input_pixels": 4000000}'])
    assert result.exit_code == 0, result.output
    assert fake_agent.made[0].kwargs["tools"]["localizer"] == {"text_options": {"max_input_pixels": 4000000}}
