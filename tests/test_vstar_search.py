"""The V* search algorithm on synthetic cue models with known optima."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from lookcloser.graphs.counting import counting
from lookcloser.core.geometry import is_leaf, split_box
from lookcloser.tools.vstar.config import SearchConfig
from lookcloser.tools.vstar.cue import CueOutput
from lookcloser.tools.vstar.read_all import _cut, _focus, _seen_as_close, dedupe_lines
from lookcloser.tools.vstar.find_one import find_one
from lookcloser.tools.vstar.read_all import read_all
from lookcloser.tools.vstar.search import rect_mass, split_patch
from lookcloser.core.types import Box, Detection
from vstar_fakes import Blob, FakeTextCue, SyntheticCue, Thing, coord_image

CFG = SearchConfig()


def boxes(items):
    return [list(b) for b in items]


def test_split_tall_wide_square_and_remainder():
    tall = split_box(Box(x1=10, y1=0, x2=110, y2=303), CFG)  # h/w = 3.03 -> 1 col x 4 rows
    assert boxes(tall) == [[10, 0, 110, 75], [10, 75, 110, 150], [10, 150, 110, 225], [10, 225, 110, 303]]
    wide = split_box(Box(x1=0, y1=5, x2=403, y2=105), CFG)  # h/w = 0.248 -> 4 cols x 1 row
    assert boxes(wide) == [[0, 5, 100, 105], [100, 5, 200, 105], [200, 5, 300, 105], [300, 5, 403, 105]]
    square = split_box(Box(x1=0, y1=0, x2=301, y2=201), CFG)  # 0.67 -> 2 x 2, row-major
    assert boxes(square) == [[0, 0, 150, 100], [150, 0, 301, 100], [0, 100, 150, 201], [150, 100, 301, 201]]
    # exactly at the ratios: h/w == 2 is tall, h/w == 0.5 is wide
    assert len({x1 for x1, _, _, _ in split_box(Box(x1=0, y1=0, x2=100, y2=200), CFG)}) == 1
    assert len({y1 for _, y1, _, _ in split_box(Box(x1=0, y1=0, x2=200, y2=100), CFG)}) == 1
    assert split_box(Box(x1=0, y1=0, x2=1, y2=1), CFG) == []
    # the search's children are those parts as Boxes
    assert split_patch(Box(x1=0, y1=0, x2=301, y2=201), CFG) == [Box.from_list(b) for b in square]


def test_min_size_and_leaf_rule():
    assert CFG.min_patch_size(1000, 800) == 224
    assert CFG.min_patch_size(4000, 3001) == 751  # ceil(3001 / 4)
    assert is_leaf(Box(x1=0, y1=0, x2=900, y2=224), 224)  # shorter side at the size: leaf
    assert not is_leaf(Box(x1=0, y1=0, x2=225, y2=225), 224)
    # a flat map and no target: every patch is visited down to the leaves, leaves are never split
    cue = SyntheticCue(blobs=[])
    result = find_one(coord_image(896, 896), "thing", cue, CFG)
    assert result.stop_reason == "exhausted" and not result.found
    assert [s.level for s in result.steps].count(3) == 16 and len(result.steps) == 21
    for step in result.steps:
        assert step.leaf == (min(step.box.width, step.box.height) <= 224)
        assert (step.children == 0) == step.leaf
    assert all(s.box.width == 224 and s.box.height == 224 for s in result.steps if s.level == 3)


def test_rect_mass_is_exact_for_fractional_cells():
    heat = np.ones((4, 4))
    patch = Box(x1=100, y1=100, x2=140, y2=140)  # 10 px per cell
    assert rect_mass(heat, Box(x1=100, y1=100, x2=120, y2=140), patch) == pytest.approx(8.0)
    assert rect_mass(heat, Box(x1=105, y1=100, x2=110, y2=110), patch) == pytest.approx(0.5)


def test_global_best_first_leaves_a_deep_branch_for_a_better_shallow_sibling():
    # Root map: a strong blob in the top-left quadrant, a slightly weaker one bottom-right.
    # Inside the top-left quadrant the blob is wide, so its four children each get only 1/4:
    # their priorities fall below the bottom-right quadrant, which must be visited next.
    blobs = [Blob(224, 224, 150, 1.0), Blob(672, 672, 120, 0.9)]
    cue = SyntheticCue(blobs=blobs)
    result = find_one(coord_image(896, 896), "thing", cue, CFG.with_options(max_steps=4))
    order = [(s.level, s.box.to_list(None)) for s in result.steps]
    assert order[0] == (1, [0, 0, 896, 896])
    assert order[1] == (2, [0, 0, 448, 448])
    assert order[2] == (2, [448, 448, 896, 896])  # the shallow sibling beats the deep branch
    assert result.steps[1].children == 4
    # priorities are the official ancestor-weighted sums
    assert result.steps[1].priority > result.steps[2].priority > 0


def test_stops_at_confident_hit_and_maps_coordinates_back_through_levels():
    # 4000x1000 (leaf size 250): 4 columns of 1000 -> 2x2 of 500 -> 2x2 of 250 (leaf); the thing
    # is only detectable in a level-4 patch.
    target = Box(x1=1613.5, y1=640.25, x2=1640.0, y2=660.75)
    cue = SyntheticCue(blobs=[Blob(1626, 650, 40)], things=[Thing(target, 0.8, visible_side=260)])
    result = find_one(coord_image(4000, 1000), "thing", cue, CFG)
    assert result.found and result.stop_reason == "confident"
    assert result.best.box == target and result.best.score == 0.8
    final = result.steps[-1]
    assert final.level == 4 and final.box.to_list(None) == [1500, 500, 1750, 750]
    assert len(result.steps) == 4  # straight down the hot branch: 1 + 1 + 1 + 1
    assert cue.seen == [s.box for s in result.steps]  # the cue really got those pixels


def test_best_seen_fallback_and_not_found():
    target = Box(x1=100, y1=100, x2=130, y2=120)
    fallback = find_one(coord_image(896, 896), "thing",
                      SyntheticCue(blobs=[Blob(115, 110, 50)], things=[Thing(target, 0.4, 10_000)]), CFG)
    assert fallback.found and fallback.stop_reason == "best_seen"
    assert fallback.best.box == target and len(fallback.steps) == 21  # looked everywhere first
    missing = find_one(coord_image(896, 896), "thing",
                     SyntheticCue(blobs=[Blob(115, 110, 50)], things=[Thing(target, 0.2, 10_000)]), CFG)
    assert not missing.found and missing.stop_reason == "exhausted"
    absent = find_one(coord_image(896, 896), "thing", SyntheticCue(blobs=[Blob(115, 110, 50)]), CFG)
    assert not absent.found and absent.best is None and absent.summary()["best"] is None


def test_deterministic():
    def run():
        cue = SyntheticCue(blobs=[Blob(300, 500, 80), Blob(700, 200, 60, 0.7)],
                           things=[Thing(Box(x1=690, y1=190, x2=710, y2=210), 0.45, 300)])
        summary = find_one(coord_image(1000, 800), "thing", cue, CFG).summary()
        summary.pop("seconds")
        return json.dumps(summary, sort_keys=True)

    assert run() == run()


def test_budget_stops():
    cue = SyntheticCue(blobs=[])
    by_steps = find_one(coord_image(896, 896), "thing", cue, CFG.with_options(max_steps=3))
    assert by_steps.stop_reason == "budget" and len(by_steps.steps) == 3
    by_time = find_one(coord_image(896, 896), "thing", cue, CFG.with_options(max_seconds=1e-9))
    assert by_time.stop_reason == "budget" and len(by_time.steps) == 0


def test_context_cue_used_when_weak_skipped_when_absent():
    weak = [Blob(100, 100, 30, 0.2)]  # peak 0.2 < strong 0.5
    calls = []

    def prior(patch, phrase):
        calls.append(patch.size)
        heat = np.zeros((8, 8))
        heat[6:, 6:] = 1.0  # "it is usually bottom-right"
        return heat

    with_ctx = find_one(coord_image(896, 896), "thing", SyntheticCue(blobs=weak), CFG.with_options(max_steps=2),
                      context_cue=prior)
    assert with_ctx.steps[0].context == "used" and with_ctx.context_calls == 2 and calls[0] == (896, 896)
    assert with_ctx.steps[1].box.to_list(None) == [448, 448, 896, 896]
    without = find_one(coord_image(896, 896), "thing", SyntheticCue(blobs=weak), CFG.with_options(max_steps=2))
    assert without.steps[0].context == "skipped" and without.context_calls == 0
    assert without.steps[1].box.to_list(None) == [0, 0, 448, 448]
    nothing = find_one(coord_image(896, 896), "thing", SyntheticCue(blobs=weak), CFG.with_options(max_steps=1),
                     context_cue=lambda p, q: None)
    assert nothing.steps[0].context == "no_prior"
    strong = find_one(coord_image(896, 896), "thing", SyntheticCue(blobs=[Blob(100, 100, 30)]),
                    CFG.with_options(max_steps=1), context_cue=prior)
    assert strong.steps[0].context == "not_needed" and strong.context_calls == 0


def test_read_all_reads_every_line_and_skips_textless_patches():
    lines = [Thing(Box(x1=40, y1=60, x2=140, y2=80), 0.95, 10_000, "BIG SIGN"),  # legible from the root
             Thing(Box(x1=700, y1=700, x2=760, y2=714), 0.95, 300, "tiny")]  # needs a close look
    cue = FakeTextCue(lines)
    result = read_all(coord_image(1000, 1000), cue, CFG)
    texts = [d.text for d in result.lines]
    assert texts == ["BIG SIGN", "tiny"] or texts == ["tiny", "BIG SIGN"]
    assert "?" not in texts  # the poor read of 'tiny' at coarse levels was replaced by the legible one
    tiny = next(d for d in result.lines if d.text == "tiny")
    assert tiny.box == lines[1].box
    assert result.stop_reason == "exhausted" and result.found
    # the root (seen at scale 1.0: resolved) read 'tiny' badly; only the quadrant holding it is
    # expanded, and looked at only around the line (48 px of context), not as a whole quadrant
    assert len(result.steps) == 2
    close = result.steps[1]
    assert close.level == 2 and close.box == Box(x1=652, y1=652, x2=808, y2=762)
    assert cue.seen[1] == close.box


def test_read_all_looks_at_each_group_of_unread_lines_not_at_their_common_box():
    """Two small lines far apart in one quadrant: one close look each (48 px of context), not one look
    at the box spanning both; lines whose views overlap share one look."""
    far = [Thing(Box(x1=520, y1=520, x2=580, y2=534), 0.95, 300, "one"),
           Thing(Box(x1=900, y1=900, x2=960, y2=914), 0.95, 300, "two")]
    blobs = CFG.with_options(read_blob_views=True)  # the coarse-look mode's setting
    result = read_all(coord_image(1000, 1000), FakeTextCue(far), blobs)
    assert sorted(d.text for d in result.lines) == ["one", "two"]
    assert [s.box for s in result.steps[1:]] in ([Box(x1=472, y1=472, x2=628, y2=582), Box(x1=852, y1=852, x2=1000, y2=962)],
                                                 [Box(x1=852, y1=852, x2=1000, y2=962), Box(x1=472, y1=472, x2=628, y2=582)])
    spanning = read_all(coord_image(1000, 1000), FakeTextCue(far), CFG)  # default: per child
    # per child: first the box spanning both (too large to read them), then each line again
    assert len(spanning.steps) == 4 and spanning.steps[1].box == Box(x1=472, y1=472, x2=1000, y2=962)
    assert sum(s.box.area for s in spanning.steps[1:]) > 4 * sum(s.box.area for s in result.steps[1:])

    near = [Thing(Box(x1=520, y1=520, x2=580, y2=534), 0.95, 300, "one"),
            Thing(Box(x1=600, y1=560, x2=660, y2=574), 0.95, 300, "two")]  # views overlap: merged
    merged = read_all(coord_image(1000, 1000), FakeTextCue(near), blobs)
    assert sorted(d.text for d in merged.lines) == ["one", "two"]
    assert len(merged.steps) == 2 and merged.steps[1].box == Box(x1=472, y1=472, x2=708, y2=622)


def test_read_all_unresolved_patches_expand_every_child_and_cut_lines_are_not_final():
    """A patch seen below read_resolved_scale proves nothing about small text: every child is looked
    at (padded). A line cut by a patch border is read again whole and the whole read wins."""

    class CoarseCue(FakeTextCue):
        def __call__(self, patch, phrase):
            out = super().__call__(patch, phrase)
            out.extra["scale"] = 0.5 if max(patch.size) > 600 else 1.0
            return out

    line = Thing(Box(x1=300, y1=400, x2=500, y2=420), 0.95, 10_000, "ACROSS")
    cue = CoarseCue([line])
    result = read_all(coord_image(1000, 1000), cue, CFG)
    assert [d.text for d in result.lines] == ["ACROSS"]
    assert result.steps[0].children == 4 and [s.level for s in result.steps[1:5]] == [2, 2, 2, 2]
    assert _cut(Box(x1=0, y1=5, x2=50, y2=20), Box(x1=0, y1=0, x2=100, y2=100), 1000, 1000) is False  # image edge
    assert _cut(Box(x1=60, y1=5, x2=100, y2=20), Box(x1=0, y1=0, x2=100, y2=100), 1000, 1000) is True
    assert dedupe_lines([Detection(box=Box(x1=0, y1=0, x2=50, y2=20), score=0.99, text="ACR"),
                         Detection(box=Box(x1=0, y1=0, x2=100, y2=20), score=0.9, text="ACROSS")],
                        0.5, cut=[True, False])[0].text == "ACROSS"


def test_read_all_with_no_text_is_clean():
    result = read_all(coord_image(600, 400), FakeTextCue([]), CFG)
    assert not result.found and result.lines == [] and len(result.steps) == 1 and result.best is None


def test_dedupe_keeps_most_confident():
    a = Detection(box=Box(x1=0, y1=0, x2=100, y2=20), score=0.7, text="EX1T")
    b = Detection(box=Box(x1=2, y1=1, x2=98, y2=21), score=0.97, text="EXIT")
    c = Detection(box=Box(x1=0, y1=50, x2=100, y2=70), score=0.9, text="OTHER")
    assert [d.text for d in dedupe_lines([a, b, c], 0.5)] == ["EXIT", "OTHER"]


def test_bad_inputs():
    cue = SyntheticCue(blobs=[])
    with pytest.raises(ValueError, match="non-empty"):
        find_one(coord_image(50, 50), "  ", cue, CFG)
    tiny = find_one(coord_image(1, 1), "thing", cue, CFG)
    assert len(tiny.steps) == 1 and tiny.steps[0].leaf and not tiny.found

    class FlatCue:  # coord_image cannot encode 20000 px; this cue needs no coordinates
        name = "flat"
        calibration = cue.calibration

        def __call__(self, patch, phrase):
            return CueOutput(heatmap=np.zeros((4, 4)), peak=0.0)

    strip = find_one(Image.new("RGB", (20000, 200)), "thing", FlatCue(), CFG)
    assert len(strip.steps) == 1 and strip.steps[0].leaf and strip.stop_reason == "exhausted"
    tall = find_one(Image.new("RGB", (300, 5000)), "thing", FlatCue(), CFG)
    assert all(min(s.box.width, s.box.height) > 0 for s in tall.steps)
    # 300x5000 -> 4 rows of 300x1250 -> 4 rows of 300x312 -> 2x2 of 150x156 (leaves): 1 + 4 + 16 + 64
    assert len(tall.steps) == 85 and all(min(s.box.width, s.box.height) <= 224 for s in tall.steps if s.leaf)


def test_counts_search_steps_and_traces_each_step_under_the_current_run():
    """One `search_steps` per visited patch (a cue call is not a tool call), one "vstar.step" chain
    run per patch, nested under the run the search was called in (a graph node in the agent)."""
    from langchain_core.runnables import RunnableLambda
    from langchain_core.tracers.run_collector import RunCollectorCallbackHandler

    cue = SyntheticCue(blobs=[Blob(100, 100, 30)])
    collector = RunCollectorCallbackHandler()

    def node(_):
        with counting() as stats:
            return find_one(coord_image(896, 896), "thing", cue, CFG.with_options(max_steps=5)), stats

    result, stats = RunnableLambda(node).invoke(None, config={"callbacks": [collector]})
    assert stats.search_steps == len(result.steps) == result.cue_calls == 5
    assert stats.tool_calls == 0 and stats.vlm_calls == 0
    [root] = collector.traced_runs
    steps = [r for r in root.child_runs if r.name == "vstar.step"]
    assert len(steps) == 5 and all(r.run_type == "chain" for r in steps)
    assert steps[0].inputs["box"] == [0, 0, 896, 896] and steps[0].inputs["mode"] == "find"
    assert [r.outputs["children"] for r in steps] == [s.children for s in result.steps]
    assert "peak" in steps[0].outputs and steps[0].outputs["detections"] == []
    # outside any run and any counting(): no trace, no error
    assert len(find_one(coord_image(896, 896), "thing", cue, CFG.with_options(max_steps=2)).steps) == 2


def test_focus_takes_the_whole_line_and_repeated_looks_are_skipped():
    """A close look around an unread blob grows over the text next to it (a line read only in part
    is looked at whole); a look inside a box already seen at least as closely is not repeated."""
    patch = Box(x1=0, y1=0, x2=200, y2=200)
    evidence = np.zeros((100, 100))  # map cells are 2x2 px
    evidence[20:23, 20:25] = 1  # unread blob: x 40-50, y 40-46 px
    text = evidence.astype(bool)
    text[19:24, 25:40] = True  # the part of the same line that was read: x 50-80 px
    text[80:90, 80:90] = True  # other text, far away: not taken
    view = _focus(evidence, text, patch, Box(x1=0, y1=0, x2=100, y2=100), 5, 1000, 1000)
    assert view == Box(x1=35, y1=33, x2=85, y2=53)

    class ScaledCue:
        def input_scale(self, width, height):
            return 2.0 if max(width, height) <= 100 else 1.0

    looked = [(Box(x1=0, y1=0, x2=500, y2=500), 1.0)]
    assert not _seen_as_close(Box(x1=10, y1=10, x2=60, y2=40), looked, ScaledCue(), CFG)  # 2x closer: look
    assert _seen_as_close(Box(x1=10, y1=10, x2=310, y2=40), looked, ScaledCue(), CFG)  # same scale: skip
    assert not _seen_as_close(Box(x1=400, y1=10, x2=700, y2=40), looked, ScaledCue(), CFG)  # mostly outside
