"""VStarLocalizer: findings, search records, bad inputs, load errors (synthetic cues)."""

from __future__ import annotations

import json

import pytest

from lookcloser.core.errors import ModelLoadError
from lookcloser.tools.base import Localizer
from lookcloser.tools import registry
from lookcloser.tools.vstar.localizer import VStarLocalizer, create_vstar_localizer
from lookcloser.core.types import Box, Target
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
    with pytest.raises(ValueError, match="unknown option 'nonsense' for localizer 'vstar'"):
        registry.create("localizer", "vstar", None, nonsense=1)  # how every caller reaches the factory


def test_context_cue_is_used_when_the_context_has_a_vlm(monkeypatch):
    import lookcloser.tools.vstar.context_cue as context_cue

    made = []

    def fake_make(vlm, mapper=None):
        made.append(vlm)
        return lambda patch, phrase: None

    monkeypatch.setattr(context_cue, "make_context_cue", fake_make)

    class Ctx:
        vlm = object()

    weak = SyntheticCue(blobs=[Blob(100, 100, 30, 0.1)])
    localizer = create_vstar_localizer(Ctx(), cue=weak, max_steps=1)
    [finding] = localizer.locate(coord_image(896, 896), Target(name="cat"))
    assert made == [Ctx.vlm] and finding.search["steps"][0]["context"] == "no_prior"


def test_a_confident_first_look_keeps_every_confident_instance():
    boxes = [Box(x1=100, y1=100, x2=140, y2=130), Box(x1=500, y1=500, x2=540, y2=530), Box(x1=300, y1=50, x2=330, y2=80)]
    cue = SyntheticCue(blobs=[Blob(120, 115, 30)], things=[Thing(boxes[0], 0.9, 10_000), Thing(boxes[1], 0.7, 10_000),
                                                             Thing(boxes[2], 0.4, 10_000)])
    findings = VStarLocalizer(cue=cue).locate(coord_image(800, 800), Target(name="apple"))
    # official V*: every box above the stop confidence (0.5) at the whole image, best first; 0.4 is not one
    assert [(f.status, f.box, f.score) for f in findings] == [("found", boxes[0], 0.9), ("found", boxes[1], 0.7)]
    assert len(findings[0].search["instances"]) == 2 and findings[1].search["instance"] == 2


def test_the_best_box_below_the_accept_score_is_still_given_marked_unless_switched_off():
    weak = Box(x1=600, y1=600, x2=630, y2=620)
    cue = SyntheticCue(blobs=[Blob(615, 610, 30)], things=[Thing(weak, 0.1, 300)])
    [finding] = VStarLocalizer(cue=cue).locate(coord_image(896, 896), Target(name="cat"))
    assert finding.status == "found" and finding.box == weak and finding.score == 0.1
    assert finding.search["below_accept"] is True and finding.search["found"] is False
    [strict] = VStarLocalizer(cue=cue, keep_best_below_accept=False).locate(coord_image(896, 896), Target(name="cat"))
    assert strict.status == "not_found" and strict.box is None and strict.score == 0.1


def test_the_contextual_cue_maps_the_context_object_with_the_object_cue_and_records_it():
    from lookcloser.core.vlm_protocol import VLMReply

    class Vlm:
        name = "scripted"

        def generate(self, messages, *, max_new_tokens=256):
            return VLMReply(text="On the table, bottom-right.")

    class Ctx:
        vlm = Vlm()

    weak = SyntheticCue(blobs=[Blob(100, 100, 30, 0.1)])
    [finding] = create_vstar_localizer(Ctx(), cue=weak, max_steps=2).locate(coord_image(896, 896), Target(name="cat"))
    assert finding.search["steps"][0]["context"] == "object: table"
    [grid] = create_vstar_localizer(Ctx(), cue=SyntheticCue(blobs=[Blob(100, 100, 30, 0.1)]), max_steps=2,
                                    context_map="grid").locate(coord_image(896, 896), Target(name="cat"))
    assert grid.search["steps"][0]["context"] == "grid: bottom-right"
    # the object map ranks the children: the first child visited is where the cue's map of "table" is
    # (the synthetic cue maps every phrase to its blob at (100, 100), top-left); the grid prior sends it bottom-right
    assert finding.search["steps"][1]["box"][0] < 448 and grid.search["steps"][1]["box"][0] >= 448
    with pytest.raises(ValueError, match="context_map"):
        create_vstar_localizer(None, context_map="nearby")
