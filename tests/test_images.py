import base64
import io
import os

import numpy as np
import re

import pytest
from PIL import Image

from lookcloser import Agent, Box, ImageError, load_image
from lookcloser.imaging.load import ALLOWED_FORMATS, FRAMES_KEY, decode_image_string
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


@pytest.mark.parametrize("value", [42, None, [1, 2, 3], {"image": "x"}])
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


def _encoded(fmt, size=(12, 8), colour=(200, 30, 40), **save):
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, fmt, **save)
    return buffer.getvalue()


def _bomb_png():
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 10)) + chunk(b"IEND", b"")


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n%%EndComments\nshowpage\n%%EOF\n"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF"])
def test_every_allowed_format_loads_from_file_and_bytes(tmp_path, fmt):
    data = _encoded(fmt)
    path = tmp_path / f"a.{fmt.lower()}"
    path.write_bytes(data)
    for source in (path, data, bytearray(data), memoryview(data)):
        image = load_image(source)
        assert (image.mode, image.size, image.info[FRAMES_KEY]) == ("RGB", (12, 8), 1)
    assert set(ALLOWED_FORMATS) == {"JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF"}


def test_eps_is_refused_without_calling_ghostscript(tmp_path, monkeypatch):
    from PIL import EpsImagePlugin

    def no_ghostscript(*args, **kwargs):
        raise AssertionError("Ghostscript must never be called")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", no_ghostscript)
    path = tmp_path / "figure.eps"
    path.write_bytes(EPS)
    with pytest.raises(ImageError) as caught:
        load_image(path)
    message = str(caught.value)
    assert "figure.eps" in message and "EPS format" in message and "allowed: JPEG, PNG, WebP, TIFF, BMP, GIF" in message
    assert "\n" not in message
    with pytest.raises(ImageError, match="the image bytes are in EPS format"):
        load_image(EPS)


def test_formats_pillow_could_decode_are_refused_too(tmp_path):
    path = tmp_path / "picture.ppm"
    path.write_bytes(_encoded("PPM"))
    with pytest.raises(ImageError, match=r"picture.ppm is in PPM format, which lookcloser does not open"):
        load_image(path)
    with pytest.raises(ImageError, match="the image bytes are in PDF format"):
        load_image(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj")


def test_permission_denied_names_the_path(tmp_path, monkeypatch):
    path = tmp_path / "secret.png"
    path.write_bytes(_encoded("PNG"))

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(os, "open", denied)  # lookcloser.imaging.files opens image files with os.open
    with pytest.raises(ImageError, match=f"permission denied: cannot read image file {path}"):
        load_image(path)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_permission_denied_on_a_real_unreadable_file(tmp_path):
    path = tmp_path / "secret.png"
    path.write_bytes(_encoded("PNG"))
    path.chmod(0)
    try:
        with pytest.raises(ImageError, match="permission denied"):
            load_image(path)
    finally:
        path.chmod(0o600)


def test_bytes_errors_say_the_image_bytes():
    with pytest.raises(ImageError, match=r"^the image bytes are empty \(0 bytes\)$"):
        load_image(b"")
    with pytest.raises(ImageError, match=r"^the image bytes are not a readable image"):
        load_image(b"this is not an image at all")
    with pytest.raises(ImageError, match=r"^the image bytes are corrupt or truncated"):
        load_image(_encoded("JPEG", size=(200, 200))[:300])
    with pytest.raises(ImageError, match=r"^the image bytes declare 100000x100000 .* more than the limit"):
        load_image(_bomb_png())
    with pytest.raises(ImageError, match="more than the limit"):
        load_image(_encoded("PNG"), max_pixels=50)


def test_decode_image_string_data_urls_and_raw_base64():
    data = _encoded("PNG")
    text = base64.b64encode(data).decode()
    assert decode_image_string(f"data:image/png;base64,{text}", what="the image") == data
    wrapped = "\n".join(text[i:i + 20] for i in range(0, len(text), 20))
    assert decode_image_string(f"  data:image/png;base64,\n{wrapped}\n", what="the image") == data
    assert decode_image_string(f"DATA:IMAGE/PNG;BASE64,{text}", what="the image") == data
    assert decode_image_string(text, what="the image") == data
    assert decode_image_string(base64.urlsafe_b64encode(data).decode().rstrip("="), what="the image") == data
    assert load_image(f"data:image/png;base64,{wrapped}").size == (12, 8)


@pytest.mark.parametrize(
    "value, message",
    [("data:image/png;base64,@@not base64@@", "the image: the image data URL is not valid base64"),
     ("data:text/plain;base64,aGVsbG8=", "the image: data URL media type text/plain is not an image"),
     ("data:image/png,%89PNG", "the data URL is not base64-encoded"),
     ("data:image/png;base64", "the data URL is malformed"),
     ("data:image/png;base64,", "holds no image data"),
     ("not base64 at all!", "is neither a data URL"),
     ("   ", "the image is empty"),
     ("https://example.com/cat.png", "image URLs are not fetched; send the image as a data URL or base64"),
     ("HTTP://example.com/cat.png", "image URLs are not fetched")],
)
def test_decode_image_string_errors(value, message):
    with pytest.raises(ImageError, match=re.escape(message)) as caught:
        decode_image_string(value, what="the image")
    assert "\n" not in str(caught.value)


def test_load_image_refuses_urls_instead_of_looking_for_a_file():
    with pytest.raises(ImageError, match="image URLs are not fetched; send the image as a data URL or base64"):
        load_image("https://example.com/cat.png")


def _frames_gif(path):
    frames = [Image.new("RGB", (10, 6), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)


def test_animated_gif_uses_the_first_frame_and_says_how_many(tmp_path):
    path = tmp_path / "anim.gif"
    _frames_gif(path)
    image = load_image(path)
    assert image.info[FRAMES_KEY] == 3
    assert image.getpixel((0, 0)) == (255, 0, 0)
    assert load_image(path.read_bytes()).info[FRAMES_KEY] == 3
    with Image.open(path) as opened:  # a multi-frame PIL image handed in directly
        assert load_image(opened).info[FRAMES_KEY] == 3


def test_multipage_tiff_uses_the_first_page(tmp_path):
    path = tmp_path / "pages.tiff"
    first, second = Image.new("RGB", (9, 7), (10, 20, 30)), Image.new("RGB", (5, 5), (200, 200, 200))
    first.save(path, save_all=True, append_images=[second])
    image = load_image(path)
    assert (image.size, image.getpixel((0, 0)), image.info[FRAMES_KEY]) == ((9, 7), (10, 20, 30), 2)
    image.load()  # the pixels stay usable after the file was closed
    assert image.copy().size == (9, 7)
