"""Paths no file can have, at every door that takes one (issue 30 item 1, and what the property tests found
beyond it): a NUL byte, or a character the file system's encoding cannot write (a lone surrogate such as
'\\ud800', which a JSON client can send as "\\ud800"), is one ImageError line naming the path, never the OS's
bare ValueError / UnicodeEncodeError."""

from __future__ import annotations

from pathlib import Path

import pytest

from lookcloser.core.config import AgentConfig
from lookcloser.core.errors import ImageError
from lookcloser.imaging.load import load_image
from lookcloser.imaging.refs import resolve_image


@pytest.mark.parametrize("path, says", [
    ("a\x00b.png", r"contains a NUL byte"),
    ("\ud800.png", r"has a character no file name can hold \('\\ud800'\)"),
    (Path("x/\udfff.jpg"), r"has a character no file name can hold \('\\udfff'\)"),
])
def test_a_path_no_file_can_have_is_an_image_error(path, says):
    with pytest.raises(ImageError, match=says) as refused:
        load_image(path)
    assert "\n" not in str(refused.value)


def test_a_served_image_name_with_a_lone_surrogate_is_an_image_error(tmp_path):
    with pytest.raises(ImageError, match="has a character no file name can hold"):
        resolve_image("\ud800.png", AgentConfig(image_dir=str(tmp_path)))


def test_a_surrogate_escaped_name_is_still_a_file_name(tmp_path):
    """Bytes that are not UTF-8 in a real file name arrive as surrogate escapes ('\\udcff'): such a file is read."""
    from PIL import Image  # noqa: PLC0415

    name = b"caf\xff.png".decode("utf-8", "surrogateescape")
    Image.new("RGB", (8, 6)).save(tmp_path / name)
    assert load_image(tmp_path / name).size == (8, 6)


def test_a_huge_path_is_quoted_not_repeated(tmp_path):
    with pytest.raises(ImageError) as refused:
        load_image("x" * 100_000 + ".png")
    assert len(str(refused.value)) < 400
