"""A misspelt name at the doors the first probe's fix did not reach (issue 30 item 3: "refuse them in one line,
with the closest valid name"): a served context's or an Agent's tool role, and the operator's --config file (its
keys, its [config] keys, its roles, and --tool flags). Each refusal names the closest valid name."""

from __future__ import annotations

import pytest

from lookcloser.core.errors import SettingsError
from lookcloser.runtime.context import Context
from lookcloser.runtime.settings import load


def test_a_misspelt_tool_role_in_a_context_names_the_closest_role():
    with pytest.raises(SettingsError, match=r"unknown tool role 'localiser'; did you mean 'localizer'\?"):
        Context(tools={"localiser": "whole_image"})
    with pytest.raises(SettingsError, match=r"tool_options names unknown role 'ocrr'; did you mean 'ocr'\?"):
        Context(tool_options={"ocrr": {"min_score": 0.5}})


@pytest.mark.parametrize("text, says", [
    ('vlmm = "openai:m@http://127.0.0.1:9/v1"\n', r"unknown key 'vlmm'; did you mean 'vlm'\?"),
    ("[config]\nmax_target = 2\n", r"unknown \[config\] key 'max_target'; did you mean 'max_targets'\?"),
    ('[tools]\nlocaliser = "whole_image"\n', r"unknown role 'localiser'; did you mean 'localizer'\?"),
])
def test_a_misspelt_name_in_the_config_file_names_the_closest_one(tmp_path, text, says):
    path = tmp_path / "lookcloser.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError, match=says):
        load(path)


def test_a_misspelt_role_in_a_tool_flag_names_the_closest_one():
    with pytest.raises(SettingsError, match=r"unknown role 'segmentor'; did you mean 'segmenter'\?"):
        load(None, tool_flags=["segmentor=sam2"])


def test_a_name_like_none_is_not_given_a_guess():
    with pytest.raises(SettingsError) as refused:
        Context(tools={"qqqqqq": "whole_image"})
    assert "did you mean" not in str(refused.value)


def test_several_unknown_keys_are_one_short_line_listing_the_known_ones_once():
    """Found by tests/test_properties_doors.py: each unknown key repeated the whole list of known ones (two unknown
    config keys made a 710-character line, ten of them 3,500)."""
    with pytest.raises(SettingsError) as refused:
        Context(config={f"k{i}": 1 for i in range(10)} | {"max_target": 2})
    text = str(refused.value)
    assert text.count("(known: ") == 1 and len(text) < 600, text
    assert text.startswith("bad context: unknown keys in 'config' 'k0', 'k1', 'k2', 'k3', 'k4' and 6 more")


def test_several_unknown_langchain_arguments_are_one_short_line():
    from langchain_core.messages import AIMessage  # noqa: PLC0415

    from lookcloser import Agent  # noqa: PLC0415
    from lookcloser.entrypoints.langchain_tools import lookcloser_tools  # noqa: PLC0415
    from tests.doubles import ScriptedVLM  # noqa: PLC0415
    from tests.test_reliability_doors import _tool_message  # noqa: PLC0415

    tools = lookcloser_tools(Agent(vlm=ScriptedVLM([]), tools={"localizer": "whole_image"}))
    call = AIMessage(content="", tool_calls=[{"name": "look_closer", "id": "c1", "type": "tool_call", "args": {
        "question": "q?", "option": ["a", "b"], "imag": "x", "zzz": 1}}])
    text = _tool_message(tools, call).content
    assert text.startswith("look_closer: unknown arguments 'option' (did you mean 'options'?), 'imag' (did you mean "
                           "'image'?), 'zzz' (known: "), text
    assert text.count("(known: ") == 1
