import io

import numpy as np
import pytest
from PIL import Image

from lookcloser import Agent, Box, ImageError, load_image
from doubles import ScriptedVLM


def test_paths_pil_and_numpy(tmp_path):
    path = tmp_path / "a.png"
    Image.new("RGB", (40, 30), (255, 0, 0)).save(path)
    assert load_image(path).size == (40, 30)
    assert load_image(str(path)).getpixel((0, 0)) == (255, 0, 0)
    assert load_image(Image.new("L", (5, 6), 128)).mode == "RGB"
    assert load_image(np.zeros((6, 5, 3), np.uint8)).size == (5, 6)
    assert load_image(np.zeros((6, 5), np.uint8)).mode == "RGB"


def test_rgba_cmyk_16bit_and_float_arrays():
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert load_image(rgba).getpixel((0, 0)) == (255, 255, 255)  # transparent -> white background
    assert load_image(Image.new("CMYK", (4, 4))).mode == "RGB"
    sixteen = np.full((4, 4), 65535, np.uint16)
    assert load_image(sixteen).getpixel((0, 0)) == (255, 255, 255)
    assert load_image(Image.fromarray(np.full((4, 4), 65535, np.uint16))).getpixel((0, 0)) == (255, 255, 255)
    assert load_image(np.full((4, 4, 3), 0.5)).getpixel((0, 0)) == (128, 128, 128)


def test_exif_orientation_applied(tmp_path):
    image = Image.new("RGB", (60, 20))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif)
    assert load_image(path).size == (20, 60)


def test_missing_empty_corrupt_and_directory(tmp_path):
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "nope.jpg")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match="empty \\(0 bytes\\)"):
        load_image(empty)
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"this is not an image at all")
    with pytest.raises(ImageError, match="not a readable image"):
        load_image(junk)
    truncated = tmp_path / "trunc.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (200, 200), (10, 200, 30)).save(buffer, "JPEG")
    truncated.write_bytes(buffer.getvalue()[:300])
    with pytest.raises(ImageError, match="corrupt or truncated"):
        load_image(truncated)
    with pytest.raises(ImageError, match="directory"):
        load_image(tmp_path)


def test_huge_declared_size_fails_before_decoding(tmp_path):
    # A PNG header declaring 100000 x 100000 pixels: must be refused from the header alone.
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 10)) + chunk(b"IEND", b""))
    with pytest.raises(ImageError, match="100000x100000 .* more than the limit"):
        load_image(bomb)
    with pytest.raises(ImageError, match="more than the limit"):
        load_image(np.zeros((20, 20, 3), np.uint8), max_pixels=100)


@pytest.mark.parametrize("value", [42, b"bytes", None, [1, 2, 3]])
def test_wrong_types(value):
    with pytest.raises(ImageError, match="unsupported image input"):
        load_image(value)


@pytest.mark.parametrize("shape", [(4, 4, 2), (4,), (2, 2, 2, 3)])
def test_bad_array_shapes(shape):
    with pytest.raises(ImageError, match="numpy image must have shape"):
        load_image(np.zeros(shape, np.uint8))


def test_agent_reports_bad_image_clearly(tmp_path):
    agent = Agent(vlm=ScriptedVLM([]), trace_dir=None)
    with pytest.raises(ImageError, match="not found"):
        agent.run(tmp_path / "missing.png", "q?")


def test_box_validation_and_geometry():
    with pytest.raises(ValueError, match="x2 >= x1"):
        Box(x1=10, y1=0, x2=5, y2=5)
    with pytest.raises(ValueError, match="finite"):
        Box(x1=0, y1=0, x2=float("nan"), y2=1)
    box = Box.from_list([10, 10, 20, 30])
    assert box.shift(5, 5).to_list() == [15, 15, 25, 35]
    assert box.expand(1.2, 100, 100).to_list() == [9, 8, 21, 32]
    assert box.expand(3, 25, 25).to_list() == [0, 0, 25, 25]  # clipped to the image
    assert box.iou(box) == 1.0
    with pytest.raises(ValueError, match="4 numbers"):
        Box.from_list([1, 2, 3])
