"""Turn any supported image input into an RGB PIL image, safely.

Accepted: a path (str or pathlib), a PIL image, or a numpy array (HW or HWC, uint8, or
uint16 / float which are rescaled). EXIF orientation is applied; grayscale, palette, RGBA,
CMYK and 16-bit images are converted to RGB. The declared size is checked against
`max_pixels` *before* decoding, so a decompression bomb fails fast with a clear error.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lookcloser.errors import ImageError

ImageInput = Union[str, os.PathLike, Image.Image, np.ndarray]

_PILLOW_LIMIT_LOCK = threading.Lock()

#: Default guard: 100 megapixels (a 12000 x 8000 aerial photo still loads).
DEFAULT_MAX_PIXELS = 100_000_000


def load_image(source: Any, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Return an RGB PIL image from `source`, or raise ImageError naming the problem."""
    if isinstance(source, Image.Image):
        image = source
        _check_size(image.size, max_pixels, "the PIL image")
        image = ImageOps.exif_transpose(image) or image
        return _to_rgb(image, "the PIL image")
    if isinstance(source, np.ndarray):
        return _from_array(source, max_pixels)
    if isinstance(source, (str, os.PathLike)):
        return _from_path(Path(source), max_pixels)
    raise ImageError(
        f"unsupported image input of type {type(source).__name__}: "
        "pass a file path, a PIL.Image.Image or a numpy array (H, W[, C]) of uint8"
    )


def _check_size(size: tuple[int, int], max_pixels: int | None, what: str) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise ImageError(f"{what} is empty ({width}x{height} pixels)")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageError(
            f"{what} declares {width}x{height} = {width * height:,} pixels, more than the limit of "
            f"{max_pixels:,} (max_pixels); raise the limit if you trust this file"
        )


def _from_path(path: Path, max_pixels: int | None) -> Image.Image:
    if not path.exists():
        raise ImageError(f"image file not found: {path}")
    if path.is_dir():
        raise ImageError(f"image path is a directory, not a file: {path}")
    if path.stat().st_size == 0:
        raise ImageError(f"image file is empty (0 bytes): {path}")
    try:
        # Our own max_pixels check replaces Pillow's bomb warning/error with a clearer message.
        # Pillow's limit and the warning filters are process-global: the lock keeps concurrent loads
        # (Agent.batch threads) from restoring each other's values and leaving the limit off.
        with _PILLOW_LIMIT_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            old_limit = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
            try:
                image = Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = old_limit
            _check_size(image.size, max_pixels, f"image file {path}")
            image.load()
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"not a readable image file (unknown or corrupt format): {path}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"image file is corrupt or truncated: {path} ({exc})") from None
    image = ImageOps.exif_transpose(image) or image
    return _to_rgb(image, f"image file {path}")


def _to_rgb(image: Image.Image, what: str) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        return _from_array(array, None)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    try:
        return image.convert("RGB")
    except (OSError, ValueError) as exc:
        raise ImageError(f"cannot convert {what} from mode {image.mode} to RGB: {exc}") from None


def _from_array(array: np.ndarray, max_pixels: int | None) -> Image.Image:
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise ImageError(
            f"numpy image must have shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got {array.shape}"
        )
    _check_size((array.shape[1], array.shape[0]), max_pixels, "the numpy image")
    if array.dtype != np.uint8:
        if array.dtype == np.bool_:
            array = array.astype(np.uint8) * 255
        elif np.issubdtype(array.dtype, np.floating) and array.size and array.max() <= 1.0 and array.min() >= 0.0:
            array = np.round(array * 255).astype(np.uint8)
        elif np.issubdtype(array.dtype, np.number):
            if not np.all(np.isfinite(array)):
                raise ImageError("numpy image contains NaN or infinite values")
            top = 65535.0 if array.max() > 255 else 255.0
            array = np.clip(np.round(array.astype(np.float64) / top * 255), 0, 255).astype(np.uint8)
        else:
            raise ImageError(f"numpy image has unsupported dtype {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    image = Image.fromarray(np.ascontiguousarray(array))
    return _to_rgb(image, "the numpy image")


def crop(image: Image.Image, box: "Box") -> Image.Image:  # noqa: F821 - doc type only
    """Crop with a box in image pixels, rounding outwards and never returning an empty image."""
    x1 = int(np.floor(max(box.x1, 0)))
    y1 = int(np.floor(max(box.y1, 0)))
    x2 = int(np.ceil(min(box.x2, image.width)))
    y2 = int(np.ceil(min(box.y2, image.height)))
    x2 = max(x2, min(x1 + 1, image.width))
    y2 = max(y2, min(y1 + 1, image.height))
    return image.crop((x1, y1, x2, y2))


def crop_around(image: Image.Image, box: "Box", factor: float = 1.2, min_size: float = 32) -> Image.Image:  # noqa: F821
    """SEAL's crop for the VLM: centred on the box at `factor` x its size, at least `min_size` a side."""
    return crop(image, box.expand(factor, image.width, image.height, min_size=min_size))
