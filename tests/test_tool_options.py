"""Typed tool options, checked once when the agent is built: an unknown option (nested ones too), a
wrong type, NaN or a value out of range is one line naming the role, the tool, the option and the value."""

from __future__ import annotations

import pytest

from lookcloser import Agent
from lookcloser.core.errors import SettingsError
from lookcloser.tools import registry

VLM = "openai:stub@http://127.0.0.1:9/v1"  # never called: the agent fails while it is built


@pytest.mark.parametrize("tools, message", [
    ({"localizer": {"name": "vstar", "max_steps": {"a": 1}}},
     "localizer 'vstar' option 'max_steps' = {'a': 1}: Input should be a valid integer"),
    ({"localizer": {"name": "vstar", "max_steps": 0}}, "localizer 'vstar' options {'max_steps': 0}: max_steps must be >= 1"),
    ({"localizer": {"name": "vstar", "max_seconds": 1e10}}, "max_seconds must be > 0 and at most a day"),
    ({"localizer": {"name": "vstar", "text_options": {"max_input_pixel": 0}}},
     "unknown option 'text_options.max_input_pixel' for localizer 'vstar'; the options of text_options are: "),
    ({"localizer": {"name": "vstar", "text_options": {"det_side": "wide"}}},
     "localizer 'vstar' option 'text_options.det_side' = 'wide': Input should be a valid integer"),
    ({"localizer": {"name": "vstar", "read_max_upscale": 0.5}},
     "localizer 'vstar' option 'read_max_upscale' = 0.5: Input should be greater than or equal to 1"),
    ({"detector": {"name": "grounding_dino", "box_threshold": float("nan")}},
     "detector 'grounding_dino' option 'box_threshold' = nan: Input should be a finite number"),
    ({"detector": {"name": "grounding_dino", "box_threshold": 1.5}},
     "detector 'grounding_dino' option 'box_threshold' = 1.5: Input should be less than or equal to 1"),
    ({"localizer": {"name": "whole_image", "min_score": "high"}},
     "localizer 'whole_image' option 'min_score' = 'high': Input should be a valid number"),
    ({"ocr": {"name": "tesseract", "timeout": 1e12}}, "ocr 'tesseract' option 'timeout' = 1000000000000.0"),
    ({"ocr": {"name": "rapidocr", "bogus": 1}}, "rapidocr engine option 'bogus' is not in RapidOCR 3.x's config.yaml"),
    ({"ocr": {"name": "rapidocr", "min_score": "NaN"}}, "ocr 'rapidocr' option 'min_score' = 'NaN'"),
])
def test_a_bad_option_fails_when_the_agent_is_built(tools, message):
    with pytest.raises(SettingsError) as caught:
        Agent(vlm=VLM, tools=tools)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_good_options_are_read_as_the_tool_takes_them():
    checked = registry.check_options("localizer", "vstar", {"max_steps": "7", "text_options": {"det_side": 640}})
    assert checked == {"max_steps": 7, "text_options": {"det_side": 640}}
    localizer = registry.create("localizer", "vstar", None, max_steps="7", cue="vlm")
    assert localizer.config.max_steps == 7


def test_every_builtin_declares_its_options():
    """Every built-in but PaddleOCR, which passes options on to its worker process (PaddleOCR checks them)."""
    unchecked = {(role, name) for role, name, _, _ in registry.listing() if registry.options_model(role, name) is None}
    assert unchecked <= {("ocr", "paddleocr")}
