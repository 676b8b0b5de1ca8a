"""The Tesseract OCR reader: real reads with the Debian binary, TSV grouping, clear load errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from lookcloser.core.errors import ModelLoadError
from lookcloser.tools import registry
from lookcloser.tools.base import OCR
from lookcloser.tools.tesseract import TesseractOCR, parse_tsv
from lookcloser.tools.vstar.text_match import normalise
from lookcloser.core.types import Box

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None,
                                     reason="Debian package 'tesseract-ocr' is not installed "
                                            "(make system-deps installs it when root)")

TSV = """level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext
1\t1\t0\t0\t0\t0\t0\t0\t600\t200\t-1\t
4\t1\t1\t1\t1\t0\t44\t40\t331\t29\t-1\t
5\t1\t1\t1\t1\t1\t44\t40\t120\t29\t96.5\tHELLO
5\t1\t1\t1\t1\t2\t180\t41\t150\t28\t93.5\tWORLD
5\t1\t1\t1\t2\t1\t42\t117\t80\t25\t50\t \t
5\t1\t1\t1\t2\t2\t130\t118\t60\t24\t60\tline
5\t1\t2\t1\t1\t1\t10\t150\t30\t20\t-1\tjunk
"""


def test_tsv_words_are_grouped_into_lines():
    lines = parse_tsv(TSV)
    assert [line.text for line in lines] == ["HELLO WORLD", "line"]
    assert lines[0].box == Box(x1=44, y1=40, x2=330, y2=69) and lines[0].score == pytest.approx(0.95)
    assert lines[1].score == pytest.approx(0.6)  # the empty word does not count
    assert parse_tsv("") == []


def test_missing_binary_is_one_clear_error():
    with pytest.raises(ModelLoadError, match="apt-get install tesseract-ocr"):
        TesseractOCR(binary="tesseract-not-installed-here")
    with pytest.raises(ValueError, match="psm"):
        TesseractOCR(psm="single line", binary="tesseract-not-installed-here")


@needs_tesseract
def test_missing_language_names_its_package():
    with pytest.raises(ModelLoadError, match="apt-get install tesseract-ocr-xyz"):
        TesseractOCR(lang="eng+xyz")


def label(lines: list[str], size: int = 36) -> Image.Image:
    image = Image.new("RGB", (40 + 22 * size * max(len(t) for t in lines) // 36, 40 + int(size * 2) * len(lines)),
                      "white")
    draw = ImageDraw.Draw(image)
    for i, text in enumerate(lines):
        draw.text((20, 20 + int(size * 2) * i), text, fill="black", font_size=size)
    return image


@needs_tesseract
def test_reads_a_rendered_label_line_by_line():
    ocr = registry.create("ocr", "tesseract")
    assert isinstance(ocr, OCR) and ocr.name == "tesseract" and ocr.describe()["backend"].startswith("tesseract")
    image = label(["PLATFORM 9 EXIT", "Open daily 7-22"])
    lines = ocr.read(image)
    assert [normalise(line.text) for line in lines] == ["platform9exit", "opendaily722"]
    first = lines[0]
    assert 15 <= first.box.x1 <= 30 and 20 <= first.box.y1 <= 40 and first.score > 0.8
    assert all(line.label is None and 0 <= line.score <= 1 for line in lines)
    assert lines[1].box.y1 > first.box.y2  # one box per line, in reading order
    assert ocr.page_mode(image) == 3 and ocr.page_mode(Image.new("RGB", (800, 120))) == 6  # a line strip: one block


@needs_tesseract
def test_blank_and_tiny_images_read_nothing():
    ocr = TesseractOCR()
    assert ocr.read(Image.new("RGB", (64, 64), "white")) == []
    assert ocr.read(Image.new("RGB", (1, 1), "gray")) == []


@needs_tesseract
def test_reads_a_crop_of_a_real_photo():
    """The vending machine's phone / address panel, enlarged 3x: Tesseract reads the web address."""
    photo = Image.open(EXAMPLES / "vending_machine.jpg").convert("RGB")
    region = photo.crop((2090, 890, 2210, 925))
    region = region.resize((region.width * 3, region.height * 3), Image.Resampling.BICUBIC)
    lines = TesseractOCR(min_score=0.0).read(region)
    assert any("tvrby" in normalise(line.text) or "tyrby" in normalise(line.text) for line in lines), \
        [line.text for line in lines]
    assert all(0 <= line.box.x1 <= line.box.x2 <= region.width for line in lines)
