"""ZoomEye's rules (om-ai-lab/ZoomEye) in our search: confidences, views, the depth-weighted priority and
the answering stop with τ lowered after 3·D pops, each with a scripted yes-probability VLM that knows
which node it is shown only by comparing pixels."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

from lookcloser.core.errors import SettingsError
from lookcloser.core.types import Box, Target
from lookcloser.tools.options import check
from lookcloser.tools.vstar.config import SearchConfig
from lookcloser.tools.vstar.localizer import VStarLocalizer, vstar_options
from lookcloser.tools.vstar.search import Expansion, Node, _Frontier, split_patch
from lookcloser.tools.vstar.vlm_cue import (ZOOMEYE_ANSWERING, ZOOMEYE_ZOOM, ZOOMEYE_ZOOM_INTRO, VLMCue, ZoomEyeAsk,
                                            confidence, view_box)
from lookcloser.tools.vstar.zoomeye import ZoomEyeConfig, priority_weight, tree_depth, zoomeye_search

SIDE = 1600  # patch 448: 1600 -> 800 -> 400 (< 448, a leaf): D = 2, 1 + 4 + 16 nodes
ROOT = Box(x1=0, y1=0, x2=SIDE, y2=SIDE)
TL, TR, BL, BR = split_patch(ROOT, SearchConfig())


def _noise(side: int = SIDE, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8))


def _key(image: Image.Image) -> str:
    return hashlib.sha1(np.asarray(image.convert("RGB")).tobytes()).hexdigest()


def _nodes(box: Box, depth: int, max_depth: int) -> list[Box]:
    found = [box]
    if depth < max_depth:
        for child in split_patch(box, SearchConfig()):
            found += _nodes(child, depth + 1, max_depth)
    return found


def _p(conf: float) -> float:
    return (conf + 1) / 2


class TableVLM:
    """P(yes) from per-node tables of ZoomEye confidences. It tells which node it is shown by its pixels:
    the whole photo alone is the root; otherwise the second image must be exactly ZoomEye's window of a
    tree node (an unknown picture fails the test). Logs (question kind, node) for every call."""

    name = "scripted-zoomeye"

    def __init__(self, image: Image.Image, existence=None, latent=None, answering=None, *, default=-0.9):
        self.image = image
        self.tables = {"existence": existence or {}, "latent": latent or {}, "answering": answering or {}}
        self.default = default
        self.log: list[tuple[str, tuple[float, ...]]] = []
        self.views = {_key(image.crop(view_box(b, *image.size, 448, 1.2))): b for b in _nodes(ROOT, 0, 2)[1:]}

    def generate(self, messages, *, max_new_tokens=256):
        raise AssertionError("ZoomEye's search only reads yes/no probabilities")

    def yes_probability(self, image, prompt):
        images = [image] if isinstance(image, Image.Image) else list(image)
        if len(images) == 1:
            assert _key(images[0]) == _key(self.image), "a single image must be the whole photo"
            box = ROOT
        else:
            assert len(images) == 2 and prompt.startswith("The first image is the whole photo")
            box = self.views[_key(images[1])]
        kind = "answering" if "Question:" in prompt else "latent" if "zooming" in prompt else "existence"
        corners = tuple(box.to_list())
        self.log.append((kind, corners))
        return _p(self.tables[kind].get(corners, self.default))


def _corners(box: Box) -> tuple[float, ...]:
    return tuple(box.to_list())


# --- the rules one by one ----------------------------------------------------------------------------


def test_confidence_weight_and_tree_depth_follow_zoomeyes_formulas():
    assert confidence(0.9) == pytest.approx(0.8) and confidence(0.5) == 0.0 and confidence(0.0) == -1.0
    # w = (1 - b) / D^2 * depth^2 + b: b at the root, 1 at depth D, quadratic between
    assert priority_weight(0, 2, 0.6) == pytest.approx(0.6)
    assert priority_weight(1, 2, 0.6) == pytest.approx(0.7)
    assert priority_weight(2, 2, 0.6) == pytest.approx(1.0)
    assert priority_weight(1, 3, 0.2) == pytest.approx(0.2 + 0.8 / 9)
    split = SearchConfig()
    assert tree_depth(SIDE, SIDE, 448, split) == 2
    assert tree_depth(1792, 1792, 448, split) == 3  # 448 is not under 448: split once more
    assert tree_depth(400, 300, 448, split) == 0
    # 4000x500 -> 1000x500 (4 columns) -> 250x500 (height/width 0.5: 4 columns) -> 250x125 (4 rows)
    assert tree_depth(4000, 500, 448, split) == 3


def test_the_node_window_is_zoomeyes_get_patch():
    # at least 448 a side, times 1.2 (int), centred, clipped left/top, cut (not shifted) right/bottom
    assert view_box(Box(x1=0, y1=0, x2=100, y2=100), 1000, 1000, 448, 1.2) == (0, 0, 537, 537)
    assert view_box(Box(x1=900, y1=900, x2=1000, y2=1000), 1000, 1000, 448, 1.2) == (682, 682, 1000, 1000)
    assert view_box(Box(x1=400, y1=400, x2=500, y2=500), 1000, 1000, 448, 1.2) == (182, 182, 719, 719)
    assert view_box(Box(x1=0, y1=0, x2=800, y2=600), 2000, 2000, 448, 1.2) == (0, 0, 960, 720)
    assert view_box(Box(x1=0, y1=0, x2=100, y2=100), 1000, 1000, 448, None) == (0, 0, 448, 448)


def test_a_node_is_shown_as_the_photo_with_its_window_outlined_plus_the_window():
    photo = Image.new("RGB", (1600, 800), (90, 90, 90))
    photo.paste((10, 200, 10), (1300, 100, 1350, 150))
    seen = []

    class Recorder:
        name = "recorder"

        def generate(self, messages, *, max_new_tokens=256):
            raise AssertionError

        def yes_probability(self, image, prompt):
            seen.append((image, prompt))
            return 0.9 if "enlarged region" in prompt and "Is there" in prompt else 0.25

    cue = VLMCue(Recorder())
    child = Box(x1=1200, y1=0, x2=1600, y2=400)
    ask = ZoomEyeAsk(image=photo, box=Box(x1=0, y1=0, x2=1600, y2=800), children=(child,), question="What colour?",
                     answer_stop=None)
    out = cue(photo, "green tile", zoomeye=ask)
    assert out.extra["answering"] == pytest.approx(-0.5)  # the whole photo, P(yes) 0.25
    assert out.extra["existence"] == [pytest.approx(0.8)] and out.extra["latent"] == [pytest.approx(-0.5)]
    (root_image, root_prompt), (images, existence_prompt), (_, latent_prompt) = seen
    assert root_image is photo and root_prompt.startswith("Question: What colour?\n")
    assert "green tile" in existence_prompt and "zooming further" in latent_prompt and "green tile" in latent_prompt
    main, zoomed = images
    window = view_box(child, 1600, 800, 448, 1.2)
    assert window == (1132, 0, 1600, 537)  # 537 = int(448 * 1.2) a side, centred on (1400, 200), clipped
    assert np.array_equal(np.asarray(zoomed), np.asarray(photo.crop(window)))  # the window at native pixels
    assert main.size == (448, 224)
    red = np.all(np.asarray(main) == (255, 0, 0), axis=-1)
    rows, cols = np.nonzero(red)
    # the window at scale 448 / 1600 is (317, 0, 448, 150); the line, 448 // 120 = 3 px, lies just outside it
    line = 3
    assert (cols.min(), rows.min(), cols.max(), rows.max()) == (317 - line, 0, 447, 150 + line - 1)
    inside = red[rows.min() + line + 1:rows.max() - line, cols.min() + line + 1:cols.max() - line]
    assert inside.size > 0 and not inside.any()  # an outline, not a filled box


def test_a_confident_answer_means_the_children_are_not_asked():
    photo = _noise()
    vlm = TableVLM(photo, answering={_corners(ROOT): 0.6})
    cue = VLMCue(vlm)
    children = (TL, TR)
    stopped = cue(photo, "cat", zoomeye=ZoomEyeAsk(photo, ROOT, children, "q?", answer_stop=0.6))
    assert [k for k, _ in vlm.log] == ["answering"] and stopped.extra["existence"] == []
    vlm.log.clear()
    going = cue(photo, "cat", zoomeye=ZoomEyeAsk(photo, ROOT, children, "q?", answer_stop=0.61))
    assert [k for k, _ in vlm.log] == ["answering", "existence", "latent", "existence", "latent"]
    assert len(going.extra["existence"]) == 2 and going.extra["vlm_calls"] == 5


def test_the_queue_is_ranked_by_weighted_existence_and_latent_not_by_existence_alone():
    """Depth 1 (w = 0.7): TL 0.7·0.2 + 0.3·0.9 = 0.41 beats TR 0.7·0.3 + 0.3·(−0.5) = 0.06, though TR's
    existence is higher. Depth 2 = D (w = 1): only existence counts, so TL's child with existence 0.5 but
    latent −1 (0.5) goes before TR, and TL's child with latent 1 but existence −0.2 after it."""
    photo = _noise()
    tl = split_patch(TL, SearchConfig())
    existence = {_corners(TL): 0.2, _corners(TR): 0.3, _corners(BL): -0.8, _corners(BR): -0.8,
                 _corners(tl[3]): 0.5, _corners(tl[0]): -0.2}
    latent = {_corners(TL): 0.9, _corners(TR): -0.5, _corners(BL): -0.8, _corners(BR): -0.8,
              _corners(tl[3]): -1.0, _corners(tl[0]): 1.0}
    vlm = TableVLM(photo, existence, latent, default=-0.9)
    result = zoomeye_search(photo, "cat", VLMCue(vlm), SearchConfig(max_steps=4), question="Is the cat black?")
    boxes = [step.box for step in result.steps]
    assert boxes == [ROOT, TL, tl[3], TR]
    assert [round(step.priority, 4) for step in result.steps[1:]] == [0.41, 0.5, 0.06]
    assert result.stop_reason == "budget" and not result.found
    # existence alone would have looked at TR before TL
    assert existence[_corners(TR)] > existence[_corners(TL)]
    answering = [corners for kind, corners in vlm.log if kind == "answering"]
    assert answering == [_corners(b) for b in boxes]


@pytest.mark.parametrize(("best", "steps"), [(0.96, 2), (0.92, 6), (0.85, 8), (0.7, 10), (0.3, 14), (0.0, 16)])
def test_the_stop_fires_when_the_answering_confidence_reaches_the_lowered_tau(best, steps):
    """τ 0.95 (ZoomEye's Qwen value). D = 2, so after 3·2 = 6 pops τ drops by 0.05, then every 2 pops by
    0.1, then by 0.2: 0.90 at pop 6, 0.80 at 8, 0.60 at 10, 0.40 at 12, 0.20 at 14, 0.0 at 16. The node
    popped second (TL) holds `best`; every other node −0.9. The search ends exactly at the pop where τ
    first falls to `best` (at once, when `best` >= 0.95), with TL as the answer."""
    photo = _noise()
    vlm = TableVLM(photo, answering={_corners(TL): best})
    result = zoomeye_search(photo, "cat", VLMCue(vlm), question="Is the cat black?")
    assert len(result.steps) == steps
    assert result.steps[1].box == TL
    assert result.found and result.best.box == TL and result.best.score == pytest.approx(_p(best))
    assert result.stop_reason == ("confident" if best >= 0.95 else "best_seen")
    assert vlm.log[-1][0] == "answering"  # the last pop asked nothing about its children


def test_when_tau_falls_below_the_floor_the_search_gives_up():
    photo = _noise()
    vlm = TableVLM(photo, default=-0.9)  # nothing ever looks answerable
    result = zoomeye_search(photo, "cat", VLMCue(vlm))
    # τ: 0.9 (pop 6), 0.8 (8), 0.6 (10), 0.4 (12), 0.2 (14), then "0.0" at pop 16: in floats the steps sum
    # to 0.95 - 0.95000000000000017, just under the floor 0, so the search gives up there, as ZoomEye's
    # own loop does (the same subtractions in the same order)
    assert len(result.steps) == 16 and not result.found and result.best is None
    assert result.stop_reason == "exhausted"
    # with the floor at -0.5, τ is about -0.4 at pop 20 and the queue (21 nodes) runs dry first
    deeper = zoomeye_search(photo, "cat", VLMCue(vlm), zoomeye=ZoomEyeConfig(answer_lower=-0.5))
    assert len(deeper.steps) == 21 and deeper.stop_reason == "exhausted" and not deeper.found


def test_the_answering_question_defaults_to_zoomeyes_question_about_the_target():
    photo = _noise()
    asked = []

    class Asking(TableVLM):
        def yes_probability(self, image, prompt):
            asked.append(prompt)
            return super().yes_probability(image, prompt)

    zoomeye_search(photo, "red mug", VLMCue(Asking(photo)), SearchConfig(max_steps=1))
    assert asked[0].startswith("Question: What does the red mug look like?\n")


def test_the_localizer_runs_zoomeye_with_the_vlm_cue_and_checks_its_options():
    photo = _noise()
    vlm = TableVLM(photo, answering={_corners(TR): 0.97})
    localizer = VStarLocalizer(cue="vlm", vlm=vlm, search="zoomeye")
    (finding,) = localizer.locate(photo, Target(name="cat"))
    assert finding.status == "found" and finding.box == TR
    assert finding.search["stop_reason"] == "confident"
    assert finding.search["steps"][-1]["context"].startswith("zoomeye: answering +0.970")
    assert VStarLocalizer(cue="vlm", vlm=TableVLM(photo), search="zoomeye",
                          zoomeye_options={"answer_lower": 0.5}).locate(photo, "cat")[0].status == "not_found"
    with pytest.raises(ValueError, match="needs cue='vlm'"):
        VStarLocalizer(cue="owlv2", search="zoomeye")
    with pytest.raises(ValueError, match="search must be one of vstar, zoomeye"):
        VStarLocalizer(cue="vlm", search="zoom")
    model = vstar_options()
    with pytest.raises(SettingsError, match=r"option 'search' = 'zoom'.*'vstar' or 'zoomeye'"):
        check(model, {"search": "zoom"}, role="localizer", tool="vstar")
    with pytest.raises(SettingsError, match=r"zoomeye_options\.bias.*less than or equal to 1"):
        check(model, {"search": "zoomeye", "zoomeye_options": {"bias": 2}}, role="localizer", tool="vstar")
    assert check(model, {"zoomeye_options": {"decrease": [0.1]}}, role="localizer", tool="vstar") == {
        "zoomeye_options": {"decrease": (0.1,)}}


def test_other_strategies_keep_the_v_star_priority_and_a_wrong_count_is_refused():
    frontier = _Frontier(ROOT)
    root = frontier.pop()
    guide = np.array([[1.0, 0.0], [0.0, 0.0]])  # all of the map in the top-left quarter
    with pytest.raises(ValueError, match="2 priorities for 4 children"):
        frontier.expand(root, Expansion(guide, [(b, b, 1) for b in (TL, TR, BL, BR)], priorities=[0.1, 0.2]),
                        SearchConfig())
    frontier.expand(root, Expansion(guide, [(b, b, 1) for b in (TL, TR, BL, BR)]), SearchConfig())
    first: Node = frontier.pop()
    assert first.box == TL and first.priority == pytest.approx(1 / 4)  # all the mass / 4 ** level 1


def test_a_tiny_random_qwen_runs_the_zoomeye_search_through_its_real_processor(tiny_qwen_path):
    """Two-image questions reach a real processor and model; each confidence is 2·P(yes) − 1 of the
    backend's own yes_probability, and the search ends within its tree (D = 1: the root and 4 leaves)."""
    from lookcloser.vlm import TransformersVLM

    vlm = TransformersVLM(str(tiny_qwen_path), device="cpu", dtype="float32").load()
    photo = _noise(600, seed=3)
    cue = VLMCue(vlm)
    result = zoomeye_search(photo, "cat", cue, question="Is the cat black?")
    assert 1 <= len(result.steps) <= 5 and result.stop_reason in ("confident", "best_seen", "exhausted")
    assert cue.vlm_calls <= 1 + 4 * 2 + 4
    whole, corner = Box(x1=0, y1=0, x2=600, y2=600), Box(x1=0, y1=0, x2=300, y2=300)
    ask = ZoomEyeAsk(photo, whole, (corner,), "Is the cat black?", answer_stop=None)
    out = cue(photo, "cat", zoomeye=ask)
    images, zoom = cue.zoomeye_views(ask, corner)
    assert zoom and len(images) == 2
    p = vlm.yes_probability(images, ZOOMEYE_ZOOM_INTRO + ZOOMEYE_ZOOM["existence"].format(target="cat"))
    assert out.extra["existence"][0] == pytest.approx(2 * p - 1, abs=1e-5)
    assert out.extra["answering"] == pytest.approx(
        2 * vlm.yes_probability(photo, ZOOMEYE_ANSWERING.format(question="Is the cat black?")) - 1, abs=1e-5)


def test_the_agent_runs_zoomeye_from_a_settings_dict():
    from lookcloser import Agent

    photo = _noise()
    agent = Agent(vlm=TableVLM(photo, answering={_corners(BL): 0.99}), trace_dir=None,
                  tools={"localizer": {"cue": "vlm", "search": "zoomeye", "zoomeye_options": {"bias": 0.2}}})
    [finding] = agent.find(photo, "cat")
    assert finding.status == "found" and finding.box == BL and finding.tool == "vstar"
    assert agent.tool("localizer").inner.zoomeye.bias == 0.2
