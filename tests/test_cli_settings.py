"""The CLI's settings: `--config FILE` (TOML) and `--tool ROLE=NAME` / `--tool ROLE.OPTION=VALUE` for
`ask` and `find`, the one-line errors for a bad file, a load error worded for CLI users, and
`lookcloser tools` (the real executable where the output format matters)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from lookcloser.entrypoints.cli import app
from test_cli import _FakeAgent, _run, fake_agent  # noqa: F401 - the fixture and the stand-in Agent

runner = CliRunner()


@pytest.fixture
def files(tmp_path):
    Image.new("RGB", (32, 32), "white").save(tmp_path / "a.png")
    (tmp_path / "gdino").mkdir()
    return tmp_path


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lookcloser.toml"
    path.write_text(textwrap.dedent(text))
    return path


GOOD = """
    vlm = "openai:qwen@http://127.0.0.1:9/v1"

    [tools]
    ocr = "tesseract"
    segmenter = { name = "sam2", model = "/models/sam2" }

    [tools.localizer]
    name = "grounding_dino"
    model = "/models/gdino"
    box_threshold = 0.3

    [config]
    timeout = 60
    max_targets = 2
"""


def test_ask_reads_the_config_file(files, fake_agent):
    config = _config(files, GOOD)
    result = runner.invoke(app, ["ask", str(files / "a.png"), "q?", "--config", str(config), "--json",
                                 "--trace-dir", str(files / "t")])
    assert result.exit_code == 0, result.output
    kwargs = fake_agent.made[0].kwargs
    assert kwargs["vlm"] == "openai:qwen@http://127.0.0.1:9/v1"
    assert kwargs["tools"] == {"ocr": "tesseract", "segmenter": {"name": "sam2", "model": "/models/sam2"},
                               "localizer": {"name": "grounding_dino", "model": "/models/gdino", "box_threshold": 0.3}}
    assert (kwargs["config"].timeout, kwargs["config"].max_targets) == (60, 2)
    assert kwargs["spelling"] == "cli"


def test_flags_override_the_file(files, fake_agent):
    config = _config(files, GOOD)
    result = runner.invoke(app, ["ask", str(files / "a.png"), "q?", "--config", str(config), "--json",
                                 "--vlm", "openai:other@http://127.0.0.1:9/v1", "--timeout", "5",
                                 "--tool", "localizer.box_threshold=0.5", "--tool", "ocr=rapidocr",
                                 "--tool", "segmenter=sam2", "--trace-dir", str(files / "t")])
    assert result.exit_code == 0, result.output
    kwargs = fake_agent.made[0].kwargs
    assert kwargs["vlm"] == "openai:other@http://127.0.0.1:9/v1" and kwargs["config"].timeout == 5
    assert kwargs["config"].max_targets == 2  # the file's, not overridden
    assert kwargs["tools"]["localizer"] == {"name": "grounding_dino", "model": "/models/gdino", "box_threshold": 0.5}
    assert kwargs["tools"]["ocr"] == "rapidocr"
    assert kwargs["tools"]["segmenter"] == "sam2"  # ROLE=NAME replaces the file's entry, options too


def test_find_uses_the_files_tools_but_no_vlm(files, fake_agent):
    config = _config(files, GOOD)
    result = runner.invoke(app, ["find", str(files / "a.png"), "x", "--config", str(config), "--json",
                                 "--trace-dir", str(files / "t")])
    assert result.exit_code == 0, result.output
    kwargs = fake_agent.made[0].kwargs
    assert kwargs["vlm"] is None and kwargs["tools"]["localizer"]["name"] == "grounding_dino"


BAD_FILES = [
    (None, "--config file not found: {cfg}"),
    ('vlm = "x"\n[tools\nocr = "a"\n', "{cfg}: not valid TOML: "),
    ('vlm = "x"\n[tools\nocr = "a"\n', "(at line 2, column 7)"),
    ('vlmm = "x"\n', "{cfg}: unknown key 'vlmm'; did you mean 'vlm'?; the keys are: vlm, tools, config"),
    ('[tools]\npainter = "x"\n', "{cfg}: [tools]: unknown role 'painter'; the roles are: localizer, detector, "
                                 "segmenter, ocr"),
    ('[tools]\nlocalizer = "nope"\n', "{cfg}: [tools.localizer] unknown localizer 'nope'; known localizers:"),
    ('[tools.detector]\nname = "grounding_dino"\nmodle = "/m"\n',
     "{cfg}: [tools.detector] unknown option 'modle' for detector 'grounding_dino'; its options are: box_threshold, "
     "device, dtype, max_per_phrase, model, text_threshold"),
    ('[config]\ntimeout = -1\n', "{cfg}: [config] timeout = -1: Input should be greater than 0"),
    ('[config]\ntimeut = 3\n',
     "{cfg}: unknown [config] key 'timeut'; did you mean 'timeout'?; the keys are: max_targets"),
    ('[tools]\nocr = 3\n', "{cfg}: [tools.ocr] must be a tool name, false (off) or a table with name and options"),
]


@pytest.mark.parametrize("text, message", BAD_FILES)
def test_a_bad_config_file_is_one_line_naming_file_and_key(files, text, message):
    config = files / "lookcloser.toml"
    if text is not None:
        config.write_text(text)
    result = _run("find", files / "a.png", "x", "--config", config, "--trace-dir", files / "t")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message.replace("{cfg}", str(config)) in lines[0]


def test_a_bad_tool_flag_is_one_line(files):
    result = _run("ask", files / "a.png", "q", "--tool", "detectr.model=/m")
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: --tool detectr.model=/m: unknown role 'detectr'; did you mean "
                                     "'detector'?; the roles are: "
                                     "localizer, detector, segmenter, ocr")


def test_a_model_that_cannot_load_is_worded_for_the_cli_and_exits_2(tmp_path):
    """find prints the failed finding, then the load error as its one error line, and exits 2 (as the README says)."""
    Image.new("RGB", (32, 32), "white").save(tmp_path / "a.png")
    result = runner.invoke(app, ["find", str(tmp_path / "a.png"), "a cat", "--json", "--trace-dir", str(tmp_path / "t"),
                                 "--tool", "localizer=grounding_dino", "--tool", f"localizer.model={tmp_path / 'no'}"])
    assert result.exit_code == 2, result.output
    [finding] = json.loads(result.stdout)["findings"]
    assert finding["status"] == "failed"
    message = (
        f"GroundingDINO model directory not found: {tmp_path / 'no'}; point the `model` option at a "
        "local directory holding a saved GroundingDINO model and processor (save_pretrained output): set it with "
        "--tool localizer=grounding_dino --tool localizer.model=/models/grounding-dino-tiny (or in a --config file: "
        '[tools.localizer] name = "grounding_dino", model = "/models/grounding-dino-tiny")')
    assert finding["error"] == f"ModelLoadError: {message}"
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [f"error: {message}"]


def test_find_on_many_images_stops_with_exit_2_when_the_localizer_cannot_load(tmp_path):
    for name in ("a.png", "b.png"):
        Image.new("RGB", (32, 32), "white").save(tmp_path / name)
    result = runner.invoke(app, ["find", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "a cat",
                                 "--trace-dir", str(tmp_path / "t"), "--tool", "localizer=grounding_dino",
                                 "--tool", f"localizer.model={tmp_path / 'no'}"])
    assert result.exit_code == 2, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1 and lines[0]["findings"][0]["error"].startswith("ModelLoadError: ")  # not every image again
    assert "error: GroundingDINO model directory not found" in result.stderr


# ------------------------------------------------------------------------------ lookcloser tools
def test_tools_lists_every_builtin_with_its_status_and_fix(files):
    config = _config(files, f"""
        [tools.detector]
        name = "grounding_dino"
        model = "{files / 'gdino'}"
        [tools.segmenter]
        name = "sam2"
        model = "{files / 'no-sam2'}"
    """)
    result = subprocess.run([*_lookcloser_python(), "tools", "--json", "--config", str(config)], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "HF_HOME": str(files / "empty_hf_home")})
    assert result.returncode == 0, result.stderr
    rows = {(r["role"], r["name"]): r for r in json.loads(result.stdout)}
    assert {("localizer", "vstar"), ("localizer", "whole_image"), ("localizer", "grounding_dino"),
            ("detector", "grounding_dino"), ("segmenter", "sam2"), ("ocr", "rapidocr"), ("ocr", "tesseract"),
            ("ocr", "paddleocr")} <= set(rows)
    assert rows[("ocr", "rapidocr")]["status"] == "ok" and rows[("ocr", "rapidocr")]["configured"]
    # a local model directory that exists is present; one that does not, is not
    assert rows[("detector", "grounding_dino")]["status"] == "ok" and rows[("detector", "grounding_dino")]["configured"]
    assert rows[("segmenter", "sam2")]["status"] == "weights not cached"
    assert f"model directory {files / 'no-sam2'} does not exist" in rows[("segmenter", "sam2")]["detail"]
    # the default hub ids are not in an empty Hugging Face cache: the fix downloads them
    localizer = rows[("localizer", "grounding_dino")]
    assert localizer["default_model"] == "IDEA-Research/grounding-dino-tiny"
    assert (localizer["status"], localizer["fix"]) == ("weights not cached", "hf download IDEA-Research/grounding-dino-tiny")


def test_tools_status_for_a_missing_extra_and_a_missing_binary(files):
    env = {**os.environ, "PATH": str(files)}  # no tesseract on this PATH
    result = subprocess.run([*_lookcloser_python(), "tools", "--json"], capture_output=True, text=True, env=env,
                            timeout=120)
    rows = {(r["role"], r["name"]): r for r in json.loads(result.stdout)}
    tesseract = rows[("ocr", "tesseract")]
    assert (tesseract["status"], tesseract["fix"]) == ("binary missing", "apt-get install tesseract-ocr")
    paddle = rows[("ocr", "paddleocr")]
    if paddle["status"] != "ok":  # paddleocr is not in [dev]; where it is installed, this row is ok
        assert (paddle["status"], paddle["fix"]) == ("extra missing", "pip install 'lookcloser[paddle]'")


def test_tools_lists_a_plugin_without_importing_it(tmp_path):
    (tmp_path / "loud_plugin.py").write_text("raise RuntimeError('the plugin was imported')\n")
    dist = tmp_path / "loud_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: loud-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[lookcloser.tools]\nocr:loud = loud_plugin:make\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run([*_lookcloser_python(), "tools", "--json"], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 0 and "imported" not in result.stderr, result.stderr
    [row] = [r for r in json.loads(result.stdout) if r["name"] == "loud"]
    assert row["role"] == "ocr" and row["status"] == "unknown"
    assert row["backend"] == "plugin: ocr:loud = loud_plugin:make from loud-plugin"


def test_tools_table_names_the_fix(tmp_path):
    result = subprocess.run([*_lookcloser_python(), "tools"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "COLUMNS": "200", "HF_HOME": str(tmp_path / "empty_hf_home")})
    assert result.returncode == 0
    [vstar] = [line for line in result.stdout.splitlines() if " vstar " in line]
    assert "weights not cached" in vstar and "hf download google/owlv2-base-patch16-ensemble" in vstar


def _lookcloser_python() -> list[str]:
    return [sys.executable, "-m", "lookcloser.entrypoints.cli"]


def test_tools_finds_weights_in_the_local_hugging_face_cache(tmp_path):
    """A hub id whose files are in the cache (the layout huggingface_hub writes) is usable, offline."""
    repo = tmp_path / "hf" / "hub" / "models--IDEA-Research--grounding-dino-tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "snapshots" / "abc123" / "config.json").write_text("{}")
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([*_lookcloser_python(), "tools", "--json"], capture_output=True, text=True, env=env,
                            timeout=120)
    rows = {(r["role"], r["name"]): r["status"] for r in json.loads(result.stdout)}
    assert rows[("detector", "grounding_dino")] == "ok"
    assert rows[("segmenter", "sam2")] == "weights not cached"


def test_the_settings_roles_are_the_tool_roles():
    """lookcloser.runtime.settings keeps its own copy (the CLI's fast path imports no PIL): it must not drift."""
    from lookcloser.runtime import settings
    from lookcloser.tools.base import ROLES

    assert settings.ROLES == ROLES
