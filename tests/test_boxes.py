"""The VLM families' box conventions (lookcloser.core.boxes) on each family's documented output, the grids they
are read on, and bad output (outside, inverted, NaN, prose, truncated JSON, thousands of boxes) as notes."""

from __future__ import annotations

import time
import types

import pytest

pytest.importorskip("supervision")

from lookcloser.core import boxes  # noqa: E402


def _parse(text, name, sent=(1000, 1000), out=(1000, 1000)):
    return boxes.parse(text, boxes.convention(name), sent_size=sent, out_size=out)


def _xyxy(parsed):
    return [tuple(round(v, 1) for v in b.xyxy) for b in parsed.boxes]


# ------------------------------------------------------------------ each family's documented output
def test_qwen2_5_vl_absolute_pixels_of_the_grid():
    # QwenLM/Qwen2.5-VL cookbooks/spatial_understanding.ipynb: ```json [{"bbox_2d": [x1, y1, x2, y2], "label"}]```
    # in pixels of the smart-resized input; here the model saw a 1148x840 grid of a 4000x3000 photo
    reply = '```json\n[\n\t{"bbox_2d": [135, 114, 1016, 672], "label": "cake"},\n\t{"bbox_2d": [0, 0, 287, 210], "label": "plate"}\n]\n```'
    parsed = _parse(reply, "qwen2_5_vl", sent=(1148, 840), out=(4000, 3000))
    assert [b.label for b in parsed.boxes] == ["cake", "plate"] and not parsed.notes
    x1, y1, x2, y2 = parsed.boxes[0].xyxy
    assert (x1, y1, x2, y2) == pytest.approx((135 * 4000 / 1148, 114 * 3000 / 840, 1016 * 4000 / 1148, 672 * 3000 / 840))


def test_qwen3_vl_relative_0_to_1000():
    # QwenLM/Qwen3-VL cookbooks/2d_grounding.ipynb: the same JSON, coordinates relative 0-1000
    reply = '```json\n[{"bbox_2d": [250, 100, 500, 400], "label": "dog"}]\n```'
    parsed = _parse(reply, "qwen3_vl", sent=(1156, 867), out=(4000, 3000))
    assert _xyxy(parsed) == [(1000.0, 300.0, 2000.0, 1200.0)] and parsed.boxes[0].label == "dog"


def test_a_lone_qwen_object_or_a_box_without_label_is_still_read():
    # what supervision's parser skips (a single object, no "label") is read from its bbox_2d
    assert _xyxy(_parse('{"bbox_2d": [100, 200, 300, 400]}', "qwen3_vl")) == [(100.0, 200.0, 300.0, 400.0)]


def test_glm_box_tokens_in_any_bracket_style():
    # zai-org/GLM-V README (Grounding): <|begin_of_box|>[x1,y1,x2,y2]<|end_of_box|>, 0-1000, "the bracket style
    # may vary ([], [[]], (), <>, etc.)"; GLM-4.6V served by vLLM answers [[94,598,177,991]]
    parsed = _parse("The second bottle from the right is <|begin_of_box|>[[94,598,177,991]]<|end_of_box|>.", "glm",
                    out=(2000, 1000))
    assert _xyxy(parsed) == [(188.0, 598.0, 354.0, 991.0)]
    assert _xyxy(_parse("at <|begin_of_box|>(816, 162, 838, 172)<|end_of_box|>", "glm")) == [(816.0, 162.0, 838.0, 172.0)]
    # decoded with skip_special_tokens the markers are gone: the bracketed box is still read
    assert _xyxy(_parse("It is at [816, 162, 838, 172].", "glm")) == [(816.0, 162.0, 838.0, 172.0)]


def test_internvl_ref_and_box():
    # OpenGVLab/InternVL internvl_chat/eval/refcoco/evaluate_grounding.py: <ref>..</ref><box>[[x1,y1,x2,y2]]</box>,
    # divided by 1000 and scaled to the image; several boxes of one ref in one list
    reply = "<ref>circle</ref><box>[[278,24,354,100],[515,10,611,106]]</box>"
    parsed = _parse(reply, "internvl", out=(640, 640))
    assert [b.label for b in parsed.boxes] == ["circle", "circle"]
    assert _xyxy(parsed)[0] == pytest.approx((278 * 0.64, 24 * 0.64, 354 * 0.64, 100 * 0.64), abs=0.06)


def test_paligemma_loc_tokens_y_first_1024_bins():
    # PaliGemma model card / supervision's from_paligemma: <locY1><locX1><locY2><locX2> label, " ; " between objects
    parsed = _parse("<loc0256><loc0128><loc0768><loc0640> cat ; <loc0000><loc0000><loc0512><loc0512> dog", "paligemma",
                    sent=(448, 448), out=(2048, 1024))
    assert [b.label for b in parsed.boxes] == ["cat", "dog"]
    assert _xyxy(parsed) == [(256.0, 256.0, 1280.0, 768.0), (0.0, 0.0, 1024.0, 512.0)]


def test_florence_2_raw_loc_text_equals_transformers_post_processing():
    # transformers florence2 processing_florence2.py: phrase<loc_x1><loc_y1><loc_x2><loc_y2>, 1000 bins, dequantized
    # at the bin's centre; our reading of the raw text is compared with the processor's own (which truncates to int)
    torch = pytest.importorskip("torch")  # noqa: F841 - the post-processor builds tensors
    from transformers.models.florence2.processing_florence2 import Florence2PostProcessor

    text = "</s><s>A green car<loc_52><loc_333><loc_932><loc_774>a wall<loc_0><loc_0><loc_998><loc_400><loc_5><loc_6><loc_7><loc_8></s>"
    size = (1600, 1200)
    reference = Florence2PostProcessor({}, types.SimpleNamespace(all_special_tokens=[])) \
        .parse_phrase_grounding_from_text_and_spans(text, image_size=size)
    expected = [(inst["cat_name"], box) for inst in reference for box in inst["bbox"]]
    parsed = _parse(text, "florence_2", sent=(768, 768), out=size)
    assert [b.label for b in parsed.boxes] == [label for label, _ in expected] == ["A green car", "a wall", "a wall"]
    for found, (_, box) in zip(parsed.boxes, expected):
        assert [int(v) for v in found.xyxy] == box


def test_molmo_points_become_small_boxes_and_say_so():
    # allenai/Molmo-7B-O-0924 discussion 1: <point x="61.5" y="40.6" alt="...">, 0-100 of the image
    parsed = _parse('<point x="61.5" y="40.6" alt="the cat">the cat</point>', "molmo", sent=(1000, 1000), out=(2000, 1000))
    assert parsed.boxes[0].point and parsed.boxes[0].label == "the cat"
    x1, y1, x2, y2 = parsed.boxes[0].xyxy
    assert ((x1 + x2) / 2, (y1 + y2) / 2) == pytest.approx((1230.0, 406.0))
    assert x2 - x1 == pytest.approx(boxes.POINT_BOX_PX * 2)  # 32 px of the 1000-px view, in 2000-px pixels
    assert any("points" in note for note in parsed.notes)
    # several points of one tag: x1= y1= x2= y2=
    assert len(_parse('<points x1="10" y1="20" x2="30.5" y2="40" alt="cups">cups</points>', "molmo").boxes) == 2
    # allenai/Molmo2-4B model card: <points coords="FRAME IDX X Y IDX X Y ..."> with X, Y scaled by 1000
    parsed = _parse('<points coords="1 1 520 430 2 600 700">penguins</points>', "molmo")
    assert [tuple(round((b.xyxy[i] + b.xyxy[i + 2]) / 2) for i in (0, 1)) for b in parsed.boxes] == [(520, 430), (600, 700)]


# ------------------------------------------------------------------ which convention, which grid
@pytest.mark.parametrize(("model_type", "name", "expected"), [
    ("qwen2_5_vl", None, "qwen2_5_vl"), ("qwen3_vl_moe", None, "qwen3_vl"), ("glm4v_moe", None, "glm"),
    ("internvl", None, "internvl"), ("paligemma", None, "paligemma"), ("florence2", None, "florence_2"),
    ("molmo2", None, "molmo"), (None, "Qwen/Qwen2.5-VL-7B-Instruct", "qwen2_5_vl"), (None, "qwen2.5vl:7b", "qwen2_5_vl"),
    (None, "Qwen/Qwen3-VL-8B-Instruct", "qwen3_vl"), (None, "glm-4.5v", "glm"), (None, "zai-org/GLM-4.6V-Flash", "glm"),
    (None, "OpenGVLab/InternVL3-8B", "internvl"), (None, "google/paligemma2-3b-pt-448", "paligemma"),
    (None, "microsoft/Florence-2-large", "florence_2"), (None, "allenai/Molmo-7B-D-0924", "molmo"),
    (None, "gpt-4o", "relative_1000"), ("llava", "llava-hf/llava-1.5-7b-hf", "relative_1000"),
])
def test_the_convention_comes_from_the_model(model_type, name, expected):
    assert boxes.derive_convention(model_type=model_type, model_name=name)[0].name == expected


def test_box_format_overrides_and_unknown_formats_are_one_line():
    conv, why = boxes.derive_convention("qwen3_vl", model_type="qwen2_5_vl")
    assert conv.name == "qwen3_vl" and why == "box_format"
    with pytest.raises(ValueError, match="unknown box_format 'yolo'; known: qwen2_5_vl, qwen3_vl"):
        boxes.convention("yolo")


def test_smart_resize_is_the_processors():
    torch = pytest.importorskip("torchvision")  # noqa: F841 - transformers' Qwen image processor module needs it
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    for width, height in [(4000, 3000), (3000, 4000), (1155, 866), (17, 4000), (56, 56), (10, 10), (6000, 1000),
                          (2250, 1500), (1008, 756), (333, 777)]:
        for max_pixels in (boxes.QWEN25_MAX_PIXELS, 1280 * 28 * 28, 256 * 28 * 28):
            try:
                h, w = smart_resize(height, width, factor=28, min_pixels=56 * 56, max_pixels=max_pixels)
            except ValueError:  # an aspect ratio above 200: both refuse it
                with pytest.raises(ValueError, match="aspect ratio"):
                    boxes.smart_resize(width, height, max_pixels=max_pixels)
                continue
            assert boxes.smart_resize(width, height, max_pixels=max_pixels) == (w, h), (width, height, max_pixels)


def test_views_are_sent_on_the_grid_within_the_budget():
    qwen25, qwen3 = boxes.convention("qwen2_5_vl"), boxes.convention("qwen3_vl")
    w, h = boxes.view_size(4000, 3000, qwen25, 1280 * 28 * 28)
    assert w % 28 == 0 and h % 28 == 0 and w * h <= 1280 * 28 * 28
    assert boxes.smart_resize(w, h) == (w, h)  # a processor's smart resize leaves it as it is
    assert boxes.view_size(4000, 3000, qwen3, 1_000_000) == (1154, 866)
    assert boxes.view_size(800, 600, qwen3, 1_000_000) == (800, 600)  # never enlarged


def test_prompts_name_every_target_where_the_family_batches():
    assert '"red car", "dog"' in boxes.prompt(boxes.convention("qwen2_5_vl"), ["red car", "dog"])
    assert boxes.prompt(boxes.convention("paligemma"), ["cat", "dog"]) == "detect cat ; dog"
    assert boxes.prompt(boxes.convention("internvl"), ["the man"]).endswith("<ref>the man</ref>")
    with pytest.raises(ValueError, match="one target per call"):
        boxes.prompt(boxes.convention("glm"), ["a", "b"])


# ------------------------------------------------------------------ bad output: notes, never an exception
@pytest.mark.parametrize(("reply", "note"), [
    ("I am sorry, I cannot find a red car in this image.", "no box in the reply"),
    ("", "an empty reply"),
    ('[{"bbox_2d": [NaN, 20, 30, 40], "label": "car"}]', "malformed"),
    ('[{"bbox_2d": ["left", 20, 30, 40], "label": "car"}]', "malformed"),
    ('[{"bbox_2d": [10, 20, 30], "label": "car"}]', "malformed"),
    ('[{"bbox_2d": [500, 600, 100, 200], "label": "car"}]', "inverted"),
    ('[{"bbox_2d": [100, 600, 500, 200], "label": "car"}]', "inverted"),
    ('[{"bbox_2d": [1200, 1100, 1500, 1400], "label": "car"}]', "outside the image"),
    ('[{"bbox_2d": [-300, -300, -100, -100], "label": "car"}]', "outside the image"),
    ('[{"bbox_2d": [100, 100, 100, 300], "label": "car"}]', "empty"),
])
def test_bad_replies_are_notes_not_exceptions(reply, note):
    parsed = _parse(reply, "qwen3_vl")
    assert parsed.boxes == [] and any(note in n for n in parsed.notes), parsed.notes


def test_inverted_boxes_are_dropped_in_every_parser():
    assert any("inverted" in n for n in _parse("<loc0768><loc0640><loc0256><loc0128> cat", "paligemma").notes)
    assert any("inverted" in n for n in _parse("<|begin_of_box|>[500, 600, 100, 200]<|end_of_box|>", "glm").notes)
    kept = _parse('[{"bbox_2d": [10, 20, 30, 40], "label": "a"}, {"bbox_2d": [90, 80, 70, 60], "label": "b"}]',
                  "qwen2_5_vl", sent=(100, 100))
    assert [b.label for b in kept.boxes] == ["a"] and any("inverted" in n for n in kept.notes)


def test_boxes_partly_outside_are_clipped():
    parsed = _parse('[{"bbox_2d": [900, -50, 1300, 200], "label": "car"}]', "qwen3_vl", out=(2000, 1000))
    assert _xyxy(parsed) == [(1800.0, 0.0, 2000.0, 200.0)]


def test_a_truncated_json_list_keeps_its_complete_boxes():
    reply = '```json\n[{"bbox_2d": [10, 20, 30, 40], "label": "car"}, {"bbox_2d": [50, 60, 70, 80], "label": "car"}, {"bbox_2d": [1, 2'
    assert _xyxy(_parse(reply, "qwen3_vl")) == [(10.0, 20.0, 30.0, 40.0), (50.0, 60.0, 70.0, 80.0)]


def test_thousands_of_boxes_are_a_runaway_reply_read_quickly():
    reply = "[" + ", ".join(f'{{"bbox_2d": [{i % 900}, {i // 900}, {i % 900 + 50}, 60], "label": "car"}}'
                            for i in range(5000)) + "]"
    start = time.perf_counter()
    parsed = _parse(reply, "qwen3_vl")
    assert time.perf_counter() - start < 2.0
    assert parsed.boxes == [] and any(f"more than {boxes.MAX_BOXES}: taken as a runaway" in n for n in parsed.notes)
    assert any(f"only the first {boxes.MAX_CHARS}" in n for n in parsed.notes)  # 5000 boxes are ~280k characters
    # one box repeated in a loop is one box, and one note says how many repeats were dropped
    looping = _parse("[" + ", ".join(['{"bbox_2d": [10, 10, 20, 20], "label": "car"}'] * 300) + "]", "qwen3_vl")
    assert len(looping.boxes) == 1 and looping.notes == ["box [10, 10, 20, 20] and 298 more dropped: a repeat of an earlier box"]


def test_every_convention_survives_garbage_in_linear_time():
    garbage = ["<|begin_of_box|>[[1,2]]<|end_of_box|>", "<box>[[a,b,c,d]]</box>", "<loc_1><loc_2>", "<point x=>",
               '<points coords="junk">', "[[[[[[", "{" * 500, "\x00\xff" * 100, "1e999, 1e999, 1e999, 1e999",
               # openings that never close, repeated up to the 20,000 characters read: no regex may go quadratic
               "<" * 20000, "[1," * 7000, "(1,2),(" * 3000, '"bbox_2d": [' * 1700, "<ref>" * 4000, "<box>" * 4000,
               "<|begin_of_box|>" * 1300, "<point " * 3000, "<loc_1>" * 3000, "<loc0001>" * 2300]
    _parse("warm up supervision's import", "qwen3_vl")
    for name in boxes.CONVENTIONS:
        for text in garbage:
            start = time.perf_counter()
            parsed = _parse(text, name)
            assert time.perf_counter() - start < 0.5, (name, text[:20])
            assert all(0 <= v <= 1000 for b in parsed.boxes for v in b.xyxy), (name, text[:20])
