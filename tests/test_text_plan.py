"""How a photo's text is read (issue 29 item 2): the cost model's choice, every mode by hand, the fast tiling path.

Real PP-OCRv6 models on text drawn here. The cost model's numbers are detector input pixels, which
do not depend on the runtime, so its choices can be asserted exactly.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from lookcloser import Agent
from lookcloser.core.errors import SettingsError
from lookcloser.core.geometry import line_overlap_batch
from lookcloser.core.types import Detection, Target
from lookcloser.tools.rapidocr import RapidOCRTool
from lookcloser.tools.vstar.config import SearchConfig
from lookcloser.tools.vstar.localizer import VStarLocalizer
from lookcloser.tools.vstar.text_cue import TextCue
from lookcloser.tools.vstar.text_match import reading
from lookcloser.tools.vstar.text_plan import TextPlan, choose_after_root, read_text
from lookcloser.tools.vstar.tiles import tile_grid

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "text_search.py"
TEXT = Target(name="text", kind="text")


@pytest.fixture(scope="module")
def cue():
    return TextCue()


def _benchmark():
    spec = importlib.util.spec_from_file_location("text_search_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("size", [(2250, 1500), (1680, 876), (1000, 700), (5650, 3767), (1024, 3000)])
def test_tile_grid_is_the_plain_tiling_the_benchmark_compares_with(size):
    tiles = tile_grid(*size)
    assert [t.to_list() for t in tiles] == [list(map(float, b)) for b in _benchmark().tile_boxes(*size)]
    covered = Image.new("1", size, 0)
    for t in tiles:
        covered.paste(1, tuple(int(v) for v in t.to_list()))
    assert covered.getbbox() == (0, 0, *size) and np.asarray(covered).all()  # every pixel in a tile


def sparse_photo() -> Image.Image:
    """A 2250x1500 grey photo with one small sign: little text, so the search costs less than tiling."""
    image = Image.new("RGB", (2250, 1500), (110, 120, 115))
    draw = ImageDraw.Draw(image)
    draw.rectangle((1500, 1000, 1760, 1040), fill="white")
    draw.text((1510, 1008), "PLATFORM 9 EXIT", fill="black", font=ImageFont.load_default(size=20))
    return image


def test_cost_model_searches_a_photo_with_little_text_and_a_one_tile_photo_in_one_pass(cue):
    result, plan = read_text(sparse_photo(), cue, SearchConfig())
    assert plan.mode == "search" and plan.tiles == 6
    assert plan.root_mpx + plan.rest_mpx <= plan.tiling_mpx
    assert any(reading(line.text or "") == reading("PLATFORM 9 EXIT") for line in result.lines)
    small = sparse_photo().crop((1000, 500, 2000, 1200))  # 1000x700: one tile, which is the root's plain pass
    calls = cue.detector_calls
    result, plan = read_text(small, cue, SearchConfig())
    assert plan.mode == "search" and plan.tiles == 1 and cue.detector_calls == calls + 1  # nothing left unread
    assert plan.root_mpx == plan.tiling_mpx
    assert result.steps  # the search's look, as progress shows it
    assert any(reading(line.text or "") == reading("PLATFORM 9 EXIT") for line in result.lines)


def small_print_card() -> Image.Image:
    """A 1000x700 card (one tile): a 28-px heading over twelve lines of 7-px small print, mild sensor noise. The
    root's plain pass reads most of the small print; its map shows the rest as text too small to read."""
    image = Image.new("RGB", (1000, 700), (235, 235, 228))
    draw = ImageDraw.Draw(image)
    draw.text((40, 40), "PLATFORM 9 EXIT", fill="black", font=ImageFont.load_default(size=28))
    for row, y in enumerate(range(300, 660, 30)):
        draw.text((40, y), f"small print line {row:02d} gate", fill="black", font=ImageFont.load_default(size=7))
    pixels = np.asarray(image).astype(np.int16) + np.random.default_rng(0).integers(-4, 5, (700, 1000, 1))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def test_a_one_tile_photo_is_read_in_its_plain_pass_and_looked_at_closer_only_by_hand():
    """Plain tiling of a one-tile photo is one plain pass, so any closer look costs more than tiling: the cost model
    stops after the root (mode "root") and reads every line one plain RapidOCR pass reads; mode "search" still looks
    closer and reads small print the plain pass cannot."""
    image = small_print_card()
    auto, searching = TextCue(), TextCue()
    result, plan = read_text(image, auto, SearchConfig())
    assert plan.mode == "root" and plan.tiles == 1 and auto.detector_calls == 1
    assert plan.rest_mpx > 0  # the root's map showed text left to read: the search would have gone on
    assert result.steps  # the root look, as progress shows it
    plain = {reading(line.text) for line in RapidOCRTool().read(image) if line.text}
    assert plain <= {reading(line.text) for line in result.lines if line.text}
    closer, closer_plan = read_text(image, searching, SearchConfig(), mode="search")
    assert searching.detector_calls > 1
    small = lambda r: {reading(line.text) for line in r.lines if line.text and line.text.startswith("small print line")}  # noqa: E731
    assert len(small(closer)) > len(small(result))


def test_the_choice_after_the_root_look_of_a_one_tile_photo():
    one = dict(mode="auto", asked="auto", tiling_mpx=0.78, tiles=1, root_mpx=0.78, root_scale=1.05, tile_scale=1.05)
    assert choose_after_root(TextPlan(**one, rest_mpx=0.4, marked_mpx=0.78)) == "root"  # more than tiling's one pass
    assert choose_after_root(TextPlan(**one, rest_mpx=0.0, marked_mpx=0.0)) == "search"  # nothing left: done anyway


def notice_wall(x_end: int = 500) -> Image.Image:
    """A 2250x1500 light wall with two columns of 11-px notices at its left (x < `x_end`), with mild
    sensor noise: PP-OCRv6's detector marks a perfectly flat light area as text, which no photo has."""
    image = Image.new("RGB", (2250, 1500), (235, 235, 228))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=11)
    for row, y in enumerate(range(20, 1480, 40)):
        for x in range(20, x_end, 240):
            draw.text((x, y), f"NOTICE {row:02d}{x // 240} GATE", fill="black", font=font)
    pixels = np.asarray(image).astype(np.int16) + np.random.default_rng(0).integers(-4, 5, (1500, 2250, 1))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def test_tile_marked_reads_the_root_then_only_the_tiles_holding_unread_text(cue):
    pixels = cue.detector_pixels
    result, plan = read_text(notice_wall(), cue, SearchConfig(), mode="tile_marked")
    assert plan.mode == "tile_marked" and plan.marked_tiles == 2  # the left column of tiles, where the notices are
    assert all(t.x1 == 0 for t in plan.marked)
    spent = (cue.detector_pixels - pixels) / 1e6
    assert spent == pytest.approx(plan.root_mpx + plan.marked_mpx, rel=0.01)  # the root, then the marked tiles
    assert sum(line.text.startswith("NOTICE") for line in result.lines if line.text) == 74


def test_the_cost_model_goes_on_searching_where_that_costs_less_than_the_marked_tiles(cue):
    pixels = cue.detector_pixels
    result, plan = read_text(notice_wall(), cue, SearchConfig())
    assert plan.mode == "search" and plan.rest_mpx < plan.marked_mpx
    assert (cue.detector_pixels - pixels) / 1e6 < plan.tiling_mpx  # cheaper than tiling, as estimated
    assert sum(line.text.startswith("NOTICE") for line in result.lines if line.text) == 74


@pytest.mark.parametrize("root, rest, marked, root_scale, chosen", [
    (3.7, 2.0, 6.3, 1.0, "search"),       # root + rest within tiling's 6.3
    (3.7, 5.3, 6.3, 1.0, "search"),       # over tiling, but going on costs less than the marked tiles
    (0.6, 17.8, 4.2, 0.25, "tile_marked"),  # a coarse root queued views worth 17.8 Mpx: 4 tiles hold them
    (3.7, 17.8, 4.2, 1.0, "search"),      # the same, but the root saw the photo as closely as a tile would
])
def test_the_choice_after_the_root_look(root, rest, marked, root_scale, chosen):
    plan = TextPlan(mode="auto", asked="auto", tiling_mpx=6.3, tiles=6, root_mpx=root, rest_mpx=rest, marked_mpx=marked,
                    root_scale=root_scale, tile_scale=1.0)
    assert choose_after_root(plan) == chosen


def test_the_fast_tiling_path_reads_what_plain_tiling_reads_with_fewer_recognitions(cue):
    """Tile mode = RapidOCR's own pass on each tile; a line in the overlap of two tiles is recognised once
    (so where two tiles' passes read it differently, it keeps one of their readings)."""
    image = sparse_photo()
    plain = RapidOCRTool()
    by_hand = [Detection(box=line.box.shift(t.x1, t.y1), score=line.score, text=line.text)
               for t in tile_grid(*image.size) for line in plain.read(image.crop(tuple(int(v) for v in t.to_list())))]
    calls = cue.recognizer_calls
    result, plan = read_text(image, cue, SearchConfig(), mode="tile")
    assert plan.mode == "tile"
    for line in by_hand:  # every line a tile's plain pass reads is read, as one of those passes read it
        there = line_overlap_batch(line.box, [d.box for d in by_hand])[0] > 0.5
        readings = {reading(d.text) for d, same in zip(by_hand, there) if same}
        assert any(reading(r.text or "") in readings for r in result.lines
                   if line_overlap_batch(line.box, [r.box])[0, 0] > 0.5), (line.text, readings)
    assert sum(line_overlap_batch(by_hand[0].box, [d.box for d in by_hand])[0] > 0.5) >= 2  # in the overlap of tiles
    reused = cue.recognizer_calls - calls
    calls = cue.recognizer_calls
    for t in tile_grid(*image.size):  # the same plain looks, each tile on its own (no reads passed on)
        cue(image.crop(tuple(int(v) for v in t.to_list())), "text", plain=True)
    assert reused < cue.recognizer_calls - calls


@pytest.mark.parametrize("mode", ["search", "tile", "tile_marked", "auto"])
def test_every_mode_is_reachable_by_the_localizers_text_options(mode):
    localizer = VStarLocalizer(text_options={"mode": mode})
    findings = localizer.locate(sparse_photo().crop((1000, 500, 2250, 1500)), TEXT)
    plan = findings[0].search["plan"]
    assert plan["asked"] == mode and plan["mode"] in ("search", "tile", "tile_marked", "root")
    if mode != "auto":
        assert plan["mode"] == mode
    assert any(reading(f.text or "") == reading("PLATFORM 9 EXIT") for f in findings)


def test_a_wrong_text_mode_is_one_line_when_the_agent_is_built():
    with pytest.raises(SettingsError, match="localizer 'vstar' option 'text_options.mode' = 'tiles'"):
        Agent(vlm="openai:stub@http://127.0.0.1:9/v1",
              tools={"localizer": {"name": "vstar", "text_options": {"mode": "tiles"}}})
