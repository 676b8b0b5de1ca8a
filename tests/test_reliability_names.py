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
