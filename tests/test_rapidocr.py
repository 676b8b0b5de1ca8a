"""RapidOCR (real bundled PP-OCRv4 models) reads real text in a real photo the project ships."""

from pathlib import Path

import pytest

from lookcloser import Box, load_image
from lookcloser.images import crop
from lookcloser.tools import registry

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
    # box is in crop pixels and lies where the word is (around x 100-122, y 51-61 of the crop)
    assert 90 <= taxi.box.x1 <= 110 and 40 <= taxi.box.y1 <= 60 and taxi.score > 0.8


def test_whole_image_pass_misses_the_small_word(ocr):
    """The gap the searcher closes: the engine shrinks the full photo and misreads the word."""
    lines = ocr.read(load_image(EXAMPLES / "instrument.webp"))
    assert not any(line.text.upper() == "TAXI" for line in lines)


def test_blank_image_reads_nothing(ocr):
    from PIL import Image

    assert ocr.read(Image.new("RGB", (64, 64), "white")) == []
