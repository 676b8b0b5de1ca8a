"""Per-tool settings dicts (role -> {"name": ..., option: value}) from Python, from a served graph's
context JSON and through the compiled graph; the option checks; the wording of a model that cannot
load, in the caller's terms."""

import base64
import io
import json

import pytest
from PIL import Image

from lookcloser import Agent, SettingsError
from lookcloser.graphs.agent_graph import graph
from lookcloser.runtime.context import Context, services
from lookcloser.tools import register_tool
from lookcloser.core.types import Box, Detection


class ScoredDetector:
    """A detector double: every phrase is found once, at a fixed box and score."""

    def __init__(self, score: float = 0.5, name: str = "scored") -> None:
        self.name = name
        self.score = score

    def detect(self, image, phrases):
        return [[Detection(box=Box(x1=2, y1=2, x2=10, y2=10), score=self.score, label=p)] for p in phrases]


register_tool("detector", "test_scored", lambda score=0.5: ScoredDetector(score), replace=True)


def _image() -> Image.Image:
    return Image.new("RGB", (32, 32), "white")


def _data_url(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


# ------------------------------------------------------------------------------------- Python
@pytest.mark.parametrize("min_score, status", [(0.6, "not_found"), (0.4, "found")])
def test_a_settings_dict_names_the_tool_and_its_options(min_score, status):
    agent = Agent(tools={"localizer": {"name": "whole_image", "min_score": min_score},
                         "detector": {"name": "test_scored", "score": 0.5}}, trace_dir=None)
    [finding] = agent.find(_image(), "a cat")
    assert (finding.status, finding.tool) == (status, "whole_image+scored")


def test_a_dict_without_name_keeps_the_default_tool():
    agent = Agent(tools={"localizer": {"max_steps": 7, "cue": "vlm"}}, trace_dir=None)
    localizer = agent.tool("localizer")
    assert localizer.name == "vstar" and localizer.inner.config.max_steps == 7 and localizer.inner.cue_spec == "vlm"


def test_both_spellings_are_one_context():
    as_dict = Context(tools={"detector": {"name": "grounding_dino", "model": "/m", "box_threshold": 0.3}})
    apart = Context(tools={"detector": "grounding_dino"}, tool_options={"detector": {"box_threshold": 0.3, "model": "/m"}})
    assert as_dict.tools == {"detector": "grounding_dino"}
    assert as_dict.tool_options == {"detector": {"model": "/m", "box_threshold": 0.3}}
    assert as_dict.key() == apart.key()
    json.loads(as_dict.key())  # stays plain JSON


def test_unknown_option_fails_when_the_agent_is_built_naming_tool_option_and_valid_ones():
    with pytest.raises(SettingsError) as info:
        Agent(tools={"detector": {"name": "grounding_dino", "modle": "/m"}}, trace_dir=None)
    assert str(info.value) == ("unknown option 'modle' for detector 'grounding_dino'; its options are: box_threshold, "
                               "device, dtype, max_per_phrase, model, text_threshold")
    with pytest.raises(SettingsError, match="unknown option 'max_stesp' for localizer 'vstar'; its options are: .*max_steps"):
        Agent(tool_options={"localizer": {"max_stesp": 3}}, trace_dir=None)
    with pytest.raises(SettingsError, match="unknown option 'bogus' for detector 'test_scored'; its options are: score"):
        Agent(tools={"detector": {"name": "test_scored", "bogus": 1}}, trace_dir=None)  # read from the factory


def test_clashing_and_incomplete_settings_are_clear_errors():
    with pytest.raises(SettingsError, match=r"the localizer option 'max_steps' is set both in tools\['localizer'\] "
                                            r"and in tool_options\['localizer'\]; set it in one place"):
        Agent(tools={"localizer": {"name": "vstar", "max_steps": 3}}, tool_options={"localizer": {"max_steps": 4}},
              trace_dir=None)
    with pytest.raises(SettingsError, match=r"tools\['detector'\] needs a 'name': there is no default detector"):
        Agent(tools={"detector": {"model": "/m"}}, trace_dir=None)
    with pytest.raises(SettingsError, match="options for the detector .score. go to a registered tool's factory"):
        Agent(tools={"detector": ScoredDetector()}, tool_options={"detector": {"score": 0.2}}, trace_dir=None)


def test_model_that_cannot_load_names_the_setting_as_agent_keywords(tmp_path):
    agent = Agent(tools={"localizer": {"name": "grounding_dino", "model": str(tmp_path / "gdino")}}, trace_dir=None)
    [finding] = agent.find(_image(), "a cat")
    assert finding.status == "failed"
    assert finding.error == (
        f"ModelLoadError: GroundingDINO model directory not found: {tmp_path / 'gdino'}; point the `model` option at "
        "a local directory holding a saved GroundingDINO model and processor (save_pretrained output): set it with "
        "Agent(tools={'localizer': {'name': 'grounding_dino', 'model': '/models/grounding-dino-tiny'}})")


def test_a_tool_built_by_hand_names_its_keyword(tmp_path):
    from lookcloser.core.errors import ModelLoadError
    from lookcloser.tools.sam2 import Sam2Segmenter

    with pytest.raises(ModelLoadError, match=r"\(save_pretrained output\): pass model='/models/sam2.1-hiera-tiny'$"):
        Sam2Segmenter(model=str(tmp_path / "sam2")).load()


# ---------------------------------------------------------------- served context JSON, compiled graph
def test_services_from_context_json_take_settings_dicts():
    built = services({"tools": {"localizer": {"name": "whole_image", "min_score": 0.45},
                                "detector": {"name": "test_scored", "score": 0.5}}})
    assert built.tool_specs["localizer"] == "whole_image"
    assert built.tool("localizer").inner.min_score == 0.45
    with pytest.raises(SettingsError, match="unknown option 'min_scor' for localizer 'whole_image'; its options are: "
                                            "detector, min_score, ocr"):
        services({"tools": {"localizer": {"name": "whole_image", "min_scor": 0.45}}})


@pytest.mark.parametrize("min_score, status", [(0.6, "not_found"), (0.4, "found")])
def test_compiled_graph_with_a_context_dict(min_score, status):
    context = {"tools": {"localizer": {"name": "whole_image", "min_score": min_score},
                         "detector": {"name": "test_scored", "score": 0.5}}}
    out = graph.invoke({"image": _data_url(_image()), "target": {"name": "a cat", "kind": "object"}}, context=context)
    assert [f["status"] for f in out["findings"]] == [status]


def test_served_graph_words_a_load_error_as_context_json(tmp_path):
    context = {"tools": {"detector": {"name": "grounding_dino", "model": str(tmp_path / "gdino")},
                         "localizer": {"name": "vstar", "cue": "detector"}}}
    out = graph.invoke({"image": _data_url(_image()), "target": {"name": "a cat", "kind": "object"}}, context=context)
    [finding] = out["findings"]
    assert finding["status"] == "failed"
    assert finding["error"].endswith(
        'set it in the graph\'s context: {"tools": {"detector": {"name": "grounding_dino", '
        '"model": "/models/grounding-dino-tiny"}}}')
