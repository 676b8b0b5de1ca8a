"""The real `text` cue (PP-OCRv6 small detector map + recognizer) and the read-all helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lookcloser.tools.vstar.text_cue import TextCue, detector_input_size
from lookcloser.tools.vstar.text_match import match_score, normalise, quoted_text, rank_lines
from lookcloser.core.types import Box, Detection

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TAXI_BOX = Box(x1=536, y1=643, x2=564, y2=657)  # read by eye


def test_quoted_text_and_matching():
    assert quoted_text('the sign saying "EXIT"') == "EXIT"
    assert quoted_text("the label “Café Nord”") == "Café Nord"
    assert quoted_text("the word EXIT") == "EXIT"
    assert quoted_text("the text on the black framed board") is None
    assert quoted_text("the black framed board") is None
    assert normalise("Caffè, No. 7!") == "caffeno7"
    assert match_score("EMERGENCY EXIT", "exit") == 1.0
    assert match_score("EX1T", "EXIT") == pytest.approx(0.75)
    lines = [Detection(box=Box(x1=0, y1=0, x2=10, y2=5), score=0.99, text="OPEN"),
             Detection(box=Box(x1=0, y1=20, x2=10, y2=25), score=0.9, text="EXIT")]
    assert [d.text for d, _ in rank_lines(lines, 'the sign saying "exit"')] == ["EXIT", "OPEN"]
    assert [m for _, m in rank_lines(lines, "the board")] == [None, None]


def test_detector_input_size_rule():
    assert detector_input_size(1680, 876, 960, 3.0) == (960, 512)  # multiples of 32
    assert detector_input_size(100, 50, 960, 3.0) == (288, 160)  # at most 3x up
    assert detector_input_size(1, 1, 960, 3.0) == (32, 32)
    native = 2048 * 2048
    # up to native_max_pixels: native resolution or larger, sides rounded UP (no pixel lost)
    assert detector_input_size(1680, 876, 960, 3.0, native) == (1696, 896)
    assert detector_input_size(2250, 1500, 960, 3.0, native) == (2272, 1504)
    assert detector_input_size(300, 100, 960, 3.0, native) == (928, 320)  # small: enlarged up to 3x
    # larger patches get a coarse look at det_side
    assert detector_input_size(5650, 3767, 960, 3.0, native) == (960, 640)
    # a coarse look is at least coarse_scale, sides rounded UP (the search trusts that scale)
    assert detector_input_size(2250, 1500, 960, 2.0, 1024 * 1024, 0.7) == (1600, 1056)
    assert detector_input_size(5650, 3767, 960, 2.0, 1024 * 1024, 0.7) == (3968, 2656)
    assert detector_input_size(1000, 1000, 960, 2.0, 1024 * 1024, 0.7) == (1024, 1024)  # native: unchanged


@pytest.fixture(scope="module")
def cue():
    return TextCue()


def test_text_cue_reads_synthetic_text_and_counts_calls(cue):
    image = Image.new("RGB", (400, 120), "white")
    draw = ImageDraw.Draw(image)
    draw.text((40, 40), "HELLO 42", fill="black", font_size=36)
    before_det, before_rec = cue.detector_calls, cue.recognizer_calls
    out = cue(image, "text")
    assert out.heatmap.ndim == 2 and 0.5 < out.peak <= 1.0
    assert cue.detector_calls == before_det + 1 and cue.recognizer_calls == before_rec + len(out.detections)
    assert out.extra["detector_input"] == [800, 256] and out.extra["scale"] >= 2.0  # small: enlarged 2x, sides rounded up
    assert cue.input_scale(400, 120) == pytest.approx(out.extra["scale"])
    assert any("HELLO" in (d.text or "") for d in out.detections)
    assert all(d.label is None for d in out.detections)  # the text is in `text`, not `label`
    line = next(d for d in out.detections if "HELLO" in (d.text or ""))
    assert 30 <= line.box.x1 <= 50 and line.box.x2 > 150 and line.score > 0.8
    blank = cue(Image.new("RGB", (300, 200), "white"), "text")
    assert blank.detections == [] and blank.peak < 0.3
    tiny = cue(Image.new("RGB", (1, 1), "gray"), "text")  # padded up to the 32-px minimum, no crash
    assert tiny.detections == []


@pytest.mark.slow
def test_vstar_reads_small_text_that_whole_image_ocr_misses(cue):
    from lookcloser.tools.rapidocr import RapidOCRTool
    from lookcloser.tools.vstar.localizer import VStarLocalizer
    from lookcloser.core.types import Target

    # the street photo in the top-left quarter of a 3360 x 1752 frame: PP-OCRv6 reads "TAXI" in the photo
    # alone in one whole-image pass, not once the engine shrinks the larger frame to 2000 px
    photo = Image.open(EXAMPLES / "instrument.webp").convert("RGB")
    image = Image.new("RGB", (photo.width * 2, photo.height * 2), (128, 128, 128))
    image.paste(photo, (0, 0))
    whole_texts = [normalise(line.text) for line in RapidOCRTool().read(image)]
    assert not any("taxi" in t for t in whole_texts)  # the gap the search closes

    localizer = VStarLocalizer(text_cue=cue)
    findings = localizer.locate(image, Target(name='the word "TAXI"', kind="text"))
    first = findings[0]
    assert first.status == "found" and normalise(first.text) == "taxi"  # quoted text ranks first
    assert first.box.iou(TAXI_BOX) > 0.5
    search = first.search
    assert search["mode"] == "read_all" and search["cue_calls"] <= 12 and search["match"] == 1.0
    assert all(f.search["steps"] == search["steps"] for f in findings)


VENDING_URL_BOX = Box(x1=2119, y1=904, x2=2174, y2=917)  # "WWW.TVR.BY", 13 px high (read by eye)


@pytest.mark.slow
def test_coarse_look_mode_reads_the_small_url_with_fewer_detector_pixels():
    """The coarse-look mode (one 0.7x look resolves the photo; closer looks only at unread text blobs) on
    the vending photo in a 4500x3000 frame: it reads the 13-px URL, as the default (native) search does,
    for far fewer detector pixels."""
    from lookcloser.tools.vstar.config import SearchConfig
    from lookcloser.tools.vstar.read_all import read_all

    photo = Image.open(EXAMPLES / "vending_machine.jpg").convert("RGB")
    image = Image.new("RGB", (photo.width * 2, photo.height * 2), (128, 128, 128))
    image.paste(photo, (0, 0))
    runs = {}
    for mode, cue, config in (
            ("native", TextCue(), SearchConfig()),
            ("coarse", TextCue(coarse_scale=0.7, native_max_pixels=1024 * 1024),
             SearchConfig(read_resolved_scale=0.7, read_blob_views=True))):
        result = read_all(image, cue, config)
        url = [d for d in result.lines if normalise(d.text) == "wwwtvrby"]
        assert url and url[0].box.iou(VENDING_URL_BOX) > 0.5, mode
        runs[mode] = cue.detector_pixels
    # the root look alone: 3168x2112 px coarse vs every region of the frame at native scale
    assert runs["coarse"] < 0.6 * runs["native"]


@pytest.mark.slow
def test_find_reads_the_small_url_on_the_vending_machine(tmp_path):
    """`lookcloser find examples/vending_machine.jpg text --json`: the read-all search with the bundled
    PP-OCRv6 models reads the 13-px "WWW.TVR.BY" on the 2250 x 1500 photo, where it is."""
    import json

    from typer.testing import CliRunner

    from lookcloser.entrypoints.cli import app
    from lookcloser.tools.vstar.text_match import edit_distance

    result = CliRunner().invoke(app, ["find", str(EXAMPLES / "vending_machine.jpg"), "text", "--json",
                                      "--trace-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    findings = json.loads(result.stdout[result.stdout.index("{"):])["findings"]
    assert findings and all(f["tool"] == "vstar" and f["kind"] == "text" for f in findings)  # read-all search
    url = [f for f in findings if f["text"] and edit_distance(normalise(f["text"]), "wwwtvrby") <= 1]
    assert url, [f["text"] for f in findings]
    assert url[0]["status"] == "found" and Box.from_list(url[0]["box"]).iou(VENDING_URL_BOX) > 0.5


@pytest.mark.slow
def test_text_cue_map_and_reads_match_rapidocrs_own_pipeline():
    """The cue runs the detector itself (it needs the map) but must see what RapidOCR's engine sees, set up
    as the `rapidocr` tool sets it up: the same map for the same input, and the same lines read."""
    from rapidocr import RapidOCR

    from lookcloser.tools.rapidocr import engine_params
    from lookcloser.tools.vstar.text_match import edit_distance

    patch = Image.open(EXAMPLES / "vending_machine.jpg").convert("RGB").crop((1200, 600, 2224, 1368))
    bgr = np.ascontiguousarray(np.asarray(patch)[:, :, ::-1])
    engine = RapidOCR(params=engine_params({}))
    detector = engine._load_det_model()
    tensor = detector.get_preprocess()(bgr)  # 1024 x 768: the engine's own input size, which is also the cue's
    reference = detector.session(tensor)[0, 0]
    cue = TextCue()
    prob, size = cue.probability_map(np.asarray(patch))
    assert size == (tensor.shape[3], tensor.shape[2])
    ours, theirs = prob > 0.3, reference > 0.3
    assert theirs.sum() > 1000 and (ours & theirs).sum() / (ours | theirs).sum() >= 0.99
    result = engine(bgr)
    read = [(normalise(d.text), d.box) for d in cue(patch, "text").detections if d.text and d.score >= 0.5]
    assert len(result.txts) >= 5
    for text, points in zip(result.txts, result.boxes):
        box = Box(x1=float(points[:, 0].min()), y1=float(points[:, 1].min()), x2=float(points[:, 0].max()),
                  y2=float(points[:, 1].max()))
        same_place = [other for other, other_box in read if box.iou(other_box) >= 0.5]
        assert same_place, f"the cue read nothing where RapidOCR read {text!r}"
        assert min(edit_distance(normalise(text), other) for other in same_place) <= max(1, len(text) // 5)
