"""The operator's setup (LOOKCLOSER_VLM, LOOKCLOSER_CONFIG) and what a run's context may change in it,
in-process (the served graph through the SDK is tests/test_served_graph.py); and per-run settings on an
image another run already decoded."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from lookcloser.core.config import AgentConfig
from lookcloser.core.errors import ImageError, SettingsError
from lookcloser.imaging.refs import Access, resolve_image
from lookcloser.runtime.context import Context, services
from lookcloser.runtime.serving import Operator

OPERATOR_VLM = "openai:operator@http://10.0.0.5:8000/v1"


def operator(tmp_path, toml: str = "", vlm: str | None = OPERATOR_VLM) -> Operator:
    env = {}
    if toml:
        path = tmp_path / "operator.toml"
        path.write_text(toml)
        env["LOOKCLOSER_CONFIG"] = str(path)
    if vlm:
        env["LOOKCLOSER_VLM"] = vlm
    return Operator.from_env(env)


POLICY = """
[tools]
localizer = "whole_image"
ocr = { name = "rapidocr", min_score = 0.4 }

[config]
image_dir = "/srv/images"
max_search_seconds = 30
timeout = 60

[serve]
vlms = ["openai:small@http://10.0.0.6:8000/v1"]
[serve.tools]
localizer = ["vstar"]
[serve.options]
ocr = ["min_score"]
localizer = ["max_steps"]
"""


def test_no_context_runs_on_the_operators_setup(tmp_path):
    op = operator(tmp_path, POLICY)
    for given in (None, {}, Context()):
        context = op.admit(given)
        assert context.vlm == OPERATOR_VLM
        assert context.tools["localizer"] == "whole_image" and context.tool_options["ocr"] == {"min_score": 0.4}
        assert context.config.image_dir == "/srv/images" and context.config.timeout == 60


def test_the_environment_vlm_wins_over_the_files(tmp_path):
    assert operator(tmp_path, 'vlm = "openai:file@http://h/v1"\n').context.vlm == OPERATOR_VLM
    assert operator(tmp_path, 'vlm = "openai:file@http://h/v1"\n', vlm=None).context.vlm == "openai:file@http://h/v1"


def test_a_client_changes_only_what_the_operator_allows(tmp_path):
    op = operator(tmp_path, POLICY)
    context = op.admit({"vlm": "openai:small@http://10.0.0.6:8000/v1", "tools": {"localizer": {"name": "vstar",
                        "max_steps": 5}, "ocr": {"min_score": 0.7}, "segmenter": None},
                        "config": {"max_search_seconds": 10, "max_targets": 2}})
    assert context.vlm == "openai:small@http://10.0.0.6:8000/v1"
    assert context.tools["localizer"] == "vstar" and context.tool_options["localizer"] == {"max_steps": 5}
    assert context.tool_options["ocr"] == {"min_score": 0.7} and context.tools["segmenter"] is None
    assert (context.config.max_search_seconds, context.config.max_targets, context.config.timeout) == (10, 2, 60)
    assert context.config.image_dir == "/srv/images"


@pytest.mark.parametrize("client, message", [
    ({"vlm": "openai:x@http://attacker.example/v1"}, "context 'vlm' names a VLM this server's operator does not allow"),
    ({"vlm": "transformers:/etc"}, "context 'vlm'"),
    ({"config": {"image_dir": "/"}}, "'config.image_dir' is the server operator's setting"),
    ({"config": {"max_search_seconds": 31}}, "'config.max_search_seconds' = 31.0 is over this server's limit of 30.0"),
    ({"config": {"timeout": None}}, "'config.timeout' = None is over this server's limit of 60.0"),
    ({"config": {"max_pixels": None}}, "'config.max_pixels' = None is over this server's limit"),
    ({"config": {"max_pixels": 10**12}}, "'config.max_pixels' = 1000000000000 is over"),
    ({"config": {"timeout": float("nan")}}, "timeout: Input should be a finite number"),
    ({"config": {"max_search_seconds": 1e10}}, "less than or equal to 86400"),
    ({"tools": {"localizer": "grounding_dino"}}, "'tools.localizer' = 'grounding_dino' is not allowed on this server; "
                                                 "the localizer may be 'whole_image', 'vstar' or null"),
    ({"tools": {"detector": "grounding_dino"}}, "'tools.detector' = 'grounding_dino' is not allowed"),
    ({"tools": {"localizer": {"name": "vstar", "model": "/etc/passwd"}}},
     "option 'model' of the localizer is the server operator's to set; a run may set: max_steps"),
    ({"tools": {"segmenter": {"name": "sam2", "device": "cuda:7"}}}, "'tools.segmenter' = 'sam2' is not allowed"),
    ({"tool_options": {"ocr": {"engine": "x"}}}, "option 'engine' of the ocr is the server operator's"),
    ({"tools": {"camera": "x"}}, "unknown tool role 'camera'"),
])
def test_everything_else_is_refused_in_one_line_naming_the_setting(tmp_path, client, message):
    op = operator(tmp_path, POLICY)
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        op.admit(client)
    assert "\n" not in str(caught.value)


def test_without_a_serve_table_a_client_may_only_lower_limits(tmp_path):
    op = operator(tmp_path)
    assert op.admit({"config": {"max_targets": 2, "choice": "likelihood"}}).config.max_targets == 2
    for client in ({"vlm": "openai:other@http://h/v1"}, {"tools": {"localizer": "whole_image"}},
                   {"tools": {"ocr": {"min_score": 0.9}}}, {"config": {"image_dir": "/tmp"}}):
        with pytest.raises(SettingsError):
            op.admit(client)
    # naming the operator's own choices is not a change
    assert op.admit({"vlm": OPERATOR_VLM, "tools": {"localizer": "vstar", "ocr": "rapidocr"}}).vlm == OPERATOR_VLM


@pytest.mark.parametrize("toml, message", [
    ("[serve]\nvlm = ['x']\n", r"\[serve\] vlm: Extra inputs are not permitted"),
    ("[serve.tools]\ncamera = ['x']\n", "unknown role 'camera'"),
    ("[serve]\nvlms = 'openai:x'\n", r"\[serve\] vlms: Input should be a valid list"),
    ("[tools]\nlocalizer = 'nope'\n", "nope"),
    ("[config]\nmax_targets = 0\n", "max_targets"),
    ("serve = 3\n", r"\[serve\] must be a table"),
])
def test_a_bad_operator_setup_fails_at_start_naming_the_file_and_key(tmp_path, toml, message):
    with pytest.raises(SettingsError, match=message):
        operator(tmp_path, toml)


def test_runs_differing_only_in_config_share_models_but_not_settings():
    fast, slow = Context(vlm=OPERATOR_VLM, config={"max_targets": 1}), Context(vlm=OPERATOR_VLM, config={})
    assert services(fast) is services(slow)
    assert (fast.config.max_targets, slow.config.max_targets) == (1, 4)
    assert services(Context(vlm=OPERATOR_VLM, tools={"localizer": "vstar"})) is services(slow)  # the default named
    assert services(Context(vlm=OPERATOR_VLM, tools={"localizer": "whole_image"})) is not services(slow)


def _data_url(size=(40, 30)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, "red").save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_each_run_applies_its_own_limits_to_a_cached_decode(tmp_path):
    url = _data_url()
    assert resolve_image(url, AgentConfig()).size == (40, 30)  # decoded and cached
    with pytest.raises(ImageError, match="40x30 = 1,200 pixels, more than the limit of 1,000"):
        resolve_image(url, AgentConfig(max_pixels=1000))
    Image.new("RGB", (20, 10), "blue").save(tmp_path / "a.png")
    assert resolve_image("a.png", AgentConfig(image_dir=str(tmp_path))).size == (20, 10)  # cached too
    with pytest.raises(ImageError, match="file paths are read only inside AgentConfig.image_dir"):
        resolve_image("a.png", AgentConfig())
    with pytest.raises(ImageError, match="outside the allowed image_dir"):
        resolve_image(str(tmp_path / "a.png"), AgentConfig(image_dir=str(tmp_path / "other")))
    Image.new("RGB", (8, 6), "blue").save(tmp_path / "a.png")  # the file changed: read again
    assert resolve_image("a.png", AgentConfig(image_dir=str(tmp_path))).size == (8, 6)


def test_several_folders_each_searched_for_a_relative_name(tmp_path):
    """Access.folders (the MCP server's --image-dir, repeated): a name is looked up in each folder; a path is read
    when it is inside one of them; a symlink loop is one line."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    Image.new("RGB", (20, 10)).save(second / "b.png")
    Image.new("RGB", (30, 10)).save(tmp_path / "outside.png")
    (first / "loop.png").symlink_to(first / "loop.png")
    access = Access(folders=(str(first), str(second)), what="the tool argument 'image'", setting="--image-dir")
    assert resolve_image("b.png", AgentConfig(), access).size == (20, 10)
    assert resolve_image(str(second / "b.png"), AgentConfig(), access).size == (20, 10)
    with pytest.raises(ImageError, match=f"outside the allowed image_dir {first}, {second}"):
        resolve_image("../outside.png", AgentConfig(), access)
    with pytest.raises(ImageError, match="image file not found: .*first/nope.png"):
        resolve_image("nope.png", AgentConfig(), access)
    with pytest.raises(ImageError, match="loop.png cannot be checked"):
        resolve_image("loop.png", AgentConfig(), access)
    with pytest.raises(ImageError, match="the tool argument 'image' looks like a file path .* inside --image-dir"):
        resolve_image("b.png", AgentConfig(), Access(what="the tool argument 'image'", setting="--image-dir"))
