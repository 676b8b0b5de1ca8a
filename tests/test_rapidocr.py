"""RapidOCR (real bundled PP-OCRv6 small models) reads real text in a real photo the project ships."""

from pathlib import Path

import pytest

from lookcloser import Box, load_image
from lookcloser.imaging.load import crop
from lookcloser.tools import registry
from lookcloser.tools.base import OCR
from lookcloser.core.types import Detection, Target

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def ocr():
    return registry.create("ocr", "rapidocr")


def test_reads_text_on_a_zoomed_crop_of_a_real_photo(ocr):
    image = load_image(EXAMPLES / "instrument.webp")
    region = Box(x1=436, y1=593, x2=664, y2=707)
    lines = ocr.read(crop(image, region))
    assert any(line.text.upper() == "TAXI" for line in lines), [l.text for l in lines]
    taxi = next(line for line in lines if line.text.upper() == "TAXI")
    assert isinstance(ocr, OCR) and all(isinstance(line, Detection) and line.label is None for line in lines)
    # box is in crop pixels and lies where the word is (around x 100-122, y 51-61 of the crop)
    assert 90 <= taxi.box.x1 <= 110 and 40 <= taxi.box.y1 <= 60 and taxi.score > 0.8


def larger_photo():
    """The street photo in the top-left quarter of a 3360 x 1752 frame (a 5.9-MP photo with the scene
    in one part). PP-OCRv6 reads the 14-px "TAXI" in the 1680 x 876 photo itself in one whole-image
    pass; the engine shrinks a larger frame to 2000 px, and then it is lost."""
    from PIL import Image

    photo = load_image(EXAMPLES / "instrument.webp")
    frame = Image.new("RGB", (photo.width * 2, photo.height * 2), (128, 128, 128))
    frame.paste(photo, (0, 0))
    return frame


def test_whole_image_pass_misses_the_small_word(ocr):
    """The gap the searcher closes: the engine shrinks the full photo and misreads the word."""
    lines = ocr.read(larger_photo())
    assert not any(line.text.upper() == "TAXI" for line in lines)


def test_blank_image_reads_nothing(ocr):
    from PIL import Image

    assert ocr.read(Image.new("RGB", (64, 64), "white")) == []


def test_whole_image_localizer_turns_each_line_into_a_finding(ocr):
    from lookcloser.tools.whole_image import WholeImageLocalizer

    image = crop(load_image(EXAMPLES / "instrument.webp"), Box(x1=436, y1=593, x2=664, y2=707))
    localizer = WholeImageLocalizer(ocr=ocr)
    findings = localizer.locate(image, Target(name="the word TAXI", kind="text"))
    taxi = next(f for f in findings if f.text.upper() == "TAXI")
    assert taxi.status == "found" and taxi.tool == "whole_image+rapidocr" and taxi.score > 0.8
    assert 90 <= taxi.box.x1 <= 110 and 40 <= taxi.box.y1 <= 60
    from PIL import Image

    [blank] = localizer.locate(Image.new("RGB", (64, 64), "white"), Target(name="text", kind="text"))
    assert blank.status == "not_found" and blank.box is None
