"""VStarLocalizer: findings, search records, bad inputs, load errors (synthetic cues)."""

from __future__ import annotations

import json

import pytest

from lookcloser.errors import ModelLoadError
from lookcloser.tools.base import Localizer
from lookcloser.tools.vstar.localizer import VStarLocalizer, create_vstar_localizer
from lookcloser.types import Box, Target
from vstar_fakes import Blob, FakeTextCue, SyntheticCue, Thing, coord_image

TARGET = Box(x1=700, y1=120, x2=740, y2=150)


def test_object_target_found_with_box_and_json_safe_record():
    cue = SyntheticCue(blobs=[Blob(720, 135, 40)], things=[Thing(TARGET, 0.9, 500)])
    localizer = VStarLocalizer(cue=cue)
    assert isinstance(localizer, Localizer)
    [finding] = localizer.locate(coord_image(896, 896), Target(name="red cup"))
    assert finding.status == "found" and finding.box == TARGET and finding.tool == "vstar"
    assert finding.score == 0.9 and finding.text is None and finding.mask is None
    assert finding.search["stop_reason"] == "confident"
    json.dumps(finding.search)
    json.dumps(finding.model_dump(mode="json"))  # plain JSON: it can sit in graph state


def test_absent_object_is_not_found_and_empty_phrase_is_an_error():
    localizer = VStarLocalizer(cue=SyntheticCue(blobs=[Blob(100, 100, 50)]))
    [finding] = localizer.locate(coord_image(600, 400), Target(name="unicorn"))
    assert finding.status == "not_found" and finding.box is None and finding.search["stop_reason"] == "exhausted"
    with pytest.raises(ValueError, match="non-empty"):
        localizer.locate(coord_image(60, 40), "   ")


def test_text_target_returns_one_finding_per_line_quoted_first():
    lines = [Thing(Box(x1=40, y1=60, x2=140, y2=80), 0.95, 10_000, "OPEN"),
             Thing(Box(x1=600, y1=600, x2=660, y2=614), 0.95, 10_000, "EXIT")]
    localizer = VStarLocalizer(text_cue=FakeTextCue(lines))
    findings = localizer.locate(coord_image(800, 800), Target(name='the sign saying "exit"', kind="text"))
    assert [f.text for f in findings] == ["EXIT", "OPEN"]
    assert all(f.status == "found" for f in findings)
    assert [f.box for f in findings] == [lines[1].box, lines[0].box] and findings[0].score == 0.95
    assert findings[0].search["match"] == 1.0
    assert sorted(d["text"] for d in findings[0].search["lines"]) == ["EXIT", "OPEN"]
    none = VStarLocalizer(text_cue=FakeTextCue([])).locate(coord_image(300, 300), Target(name="text", kind="text"))
    assert [f.status for f in none] == ["not_found"]


def test_unloadable_object_cue_raises_model_load_error():
    localizer = VStarLocalizer(cue="owlv2", model="/nonexistent/owlv2")
    with pytest.raises(ModelLoadError):
        localizer.locate(coord_image(300, 300), Target(name="cat"))
    with pytest.raises(ModelLoadError, match="needs a VLM"):
        VStarLocalizer(cue="vlm").locate(coord_image(300, 300), Target(name="cat"))
    with pytest.raises(ValueError, match="unknown V\\* object cue"):
        VStarLocalizer(cue="sam")


def test_factory_passes_config_and_rejects_unknown_options():
    localizer = create_vstar_localizer(None, max_steps=7, cue="vlm")
    assert localizer.config.max_steps == 7 and localizer.vlm is None
    with pytest.raises(ValueError, match="unknown"):
        create_vstar_localizer(None, nonsense=1)


def test_context_cue_is_used_when_the_context_has_a_vlm(monkeypatch):
    import lookcloser.tools.vstar.context_cue as context_cue

    made = []

    def fake_make(vlm):
        made.append(vlm)
        return lambda patch, phrase: None

    monkeypatch.setattr(context_cue, "make_context_cue", fake_make)

    class Ctx:
        vlm = object()

    weak = SyntheticCue(blobs=[Blob(100, 100, 30, 0.1)])
    localizer = create_vstar_localizer(Ctx(), cue=weak, max_steps=1)
    [finding] = localizer.locate(coord_image(896, 896), Target(name="cat"))
    assert made == [Ctx.vlm] and finding.search["steps"][0]["context"] == "no_prior"
