"""Turn any supported image input into an RGB PIL image, safely.

Accepted: a path (str or pathlib), encoded image bytes (`bytes`, `bytearray`, `memoryview`), a
`data:image/...;base64,...` URL string, a PIL image, or a numpy array (HW or HWC, uint8, or uint16 /
float which are rescaled). http(s) URLs are refused: nothing is fetched.

Files and bytes are decoded only in the formats of `ALLOWED_FORMATS` (JPEG, PNG, WebP, TIFF, BMP,
GIF): PostScript/EPS, PDF and the other formats Pillow knows are refused with a one-line ImageError,
so no input can make Pillow call Ghostscript or another outside decoder. The declared size is
checked against `max_pixels` *before* decoding, so a decompression bomb fails fast with a clear
error. EXIF orientation is applied; grayscale, palette, RGBA, CMYK and 16-bit images are converted
to RGB.

Several frames or pages (animated GIF/WebP/PNG, multi-page TIFF): only the first is used. An image
decoded from a file or bytes carries the count in `image.info["lookcloser_frames"]` (1 for most
files), so a caller can record that later frames were ignored; a PIL image passed in with several
frames is used at the frame it was seeked to (the caller's choice), recorded in `image.info["lookcloser_frame"]`.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
import threading
import warnings
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lookcloser.core.config import DEFAULT_MAX_PIXELS
from lookcloser.core.errors import ImageError
from lookcloser.imaging.files import open_image_file

ImageInput = Union[str, os.PathLike, bytes, bytearray, memoryview, Image.Image, np.ndarray]

_PILLOW_LIMIT_LOCK = threading.Lock()

#: The only formats files and bytes are decoded in (Pillow format names; Pillow's JPEG reader also
#: opens the multi-picture JPEGs (MPO) many cameras write).
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF")
_ALLOWED_NAMES = "JPEG, PNG, WebP, TIFF, BMP, GIF"

#: `info` key holding the number of frames/pages the decoded file had (only the first is used).
FRAMES_KEY = "lookcloser_frames"
#: `info` key holding which frame was used (0-based) when it was not the first: a PIL image the caller seeked.
FRAME_KEY = "lookcloser_frame"

URL_REFUSED = "image URLs are not fetched; send the image as a data URL or base64"


def load_image(source: Any, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Return an RGB PIL image from `source`, or raise ImageError naming the problem."""
    if isinstance(source, Image.Image):
        return _from_pil(source, max_pixels)
    if isinstance(source, np.ndarray):
        return _from_array(source, max_pixels)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _from_bytes(bytes(source), max_pixels)
    if isinstance(source, str) and source[:16].lstrip().lower().startswith(("data:", "http://", "https://")):
        return _from_bytes(decode_image_string(source, what="the image"), max_pixels)
    if isinstance(source, (str, os.PathLike)):
        return _from_path(Path(source), max_pixels)
    raise ImageError(
        f"unsupported image input of type {type(source).__name__}: pass a file path, encoded image bytes, "
        "a PIL.Image.Image or a numpy array (H, W[, C]) of uint8"
    )


def _from_pil(source: Image.Image, max_pixels: int | None) -> Image.Image:
    """A PIL image passed in: its pixels read now (a lazily opened file may be truncated, or closed), the frame it
    is at kept (the caller chose it; `FRAME_KEY` says which), EXIF orientation applied, RGB."""
    frames = _frame_count(source)
    check_size(source.size, max_pixels, "the PIL image")
    try:
        frame = source.tell() if frames > 1 else 0
        source.load()
        image = ImageOps.exif_transpose(source) or source
        image = _to_rgb(image, "the PIL image")
    except ImageError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # Pillow's errors for a file it cannot (or no longer) read
        why = "it was closed" if "closed image" in str(exc) else f"{type(exc).__name__}: {str(exc)[:160]}"
        raise ImageError(f"the PIL image cannot be read: {why}") from None
    if frames > 1:
        image = image.copy() if image is source else image
        image.info[FRAMES_KEY] = frames
        image.info[FRAME_KEY] = frame
    return image


def decode_image_string(value: str, *, what: str) -> bytes:
    """The encoded image bytes in a data URL (`data:image/png;base64,...`) or a raw base64 string.

    Whitespace and line breaks inside the base64 are ignored, URL-safe base64 and missing padding
    are accepted. `what` names the value in errors (e.g. "the graph input 'image'"). http(s) URLs
    are refused: nothing is fetched. The bytes are not decoded here; `load_image` does that.
    """
    if not isinstance(value, str):
        raise ImageError(f"{what} must be a string (a data URL or base64), got {type(value).__name__}")
    text = value.strip()
    if not text:
        raise ImageError(f"{what} is empty")
    head = text[:16].lower()
    if head.startswith(("http://", "https://")):
        raise ImageError(f"{what} is a URL ({_clip(text)}): {URL_REFUSED}")
    if head.startswith("data:"):
        header, comma, payload = text[5:].partition(",")
        if not comma:
            raise ImageError(f"{what}: the data URL is malformed (no ',' before the data); "
                             "expected data:image/<type>;base64,<data>")
        params = [p.strip().lower() for p in header.split(";")]
        media_type = params[0]
        if media_type and not media_type.startswith("image/"):
            raise ImageError(f"{what}: data URL media type {_clip(media_type)} is not an image")
        if "base64" not in params[1:]:
            raise ImageError(f"{what}: the data URL is not base64-encoded (no ';base64'); "
                             "expected data:image/<type>;base64,<data>")
        data = _b64decode(payload)
        if data is None:
            raise ImageError(f"{what}: the image data URL is not valid base64")
    else:
        data = _b64decode(text)
        if data is None:
            raise ImageError(f"{what} is neither a data URL (data:image/<type>;base64,...) nor valid base64")
    if not data:
        raise ImageError(f"{what} holds no image data (0 bytes)")
    return data


_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_B64_URLSAFE = re.compile(r"[A-Za-z0-9_-]*={0,2}")


def _b64decode(text: str) -> bytes | None:
    compact = "".join(text.split())
    if _B64.fullmatch(compact):
        altchars = None
    elif _B64_URLSAFE.fullmatch(compact):
        altchars = b"-_"
    else:
        return None
    stripped = compact.rstrip("=")
    if len(stripped) % 4 == 1:
        return None
    padded = stripped + "=" * (-len(stripped) % 4)
    try:
        return base64.b64decode(padded, altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        return None


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_size(size: tuple[int, int], max_pixels: int | None, what: str, *, plural: bool = False) -> None:
    """ImageError unless `size` is non-empty and within `max_pixels` (None: no limit)."""
    width, height = size
    if width < 1 or height < 1:
        raise ImageError(f"{what} {'are' if plural else 'is'} empty ({width}x{height} pixels)")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageError(
            f"{what} {'declare' if plural else 'declares'} {width}x{height} = {width * height:,} pixels, "
            f"more than the limit of {max_pixels:,} (max_pixels); raise the limit if you trust this file"
        )


class _Source:
    """How errors name what is being decoded: `image file PATH` or `the image bytes`."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.name = f"image file {path}" if path is not None else "the image bytes"
        self.plural = path is None

    def unreadable(self) -> str:
        if self.path is not None:
            return f"not a readable image file (unknown or corrupt format): {self.path}"
        return "the image bytes are not a readable image (unknown or corrupt format)"

    def corrupt(self, exc: Exception) -> str:
        if self.path is not None:
            return f"image file is corrupt or truncated: {self.path} ({exc})"
        return f"the image bytes are corrupt or truncated ({exc})"

    def refused(self, fmt: str) -> str:
        subject = f"image file {self.path} is" if self.path is not None else "the image bytes are"
        return f"{subject} in {fmt} format, which lookcloser does not open (allowed: {_ALLOWED_NAMES})"


def _from_path(path: Path, max_pixels: int | None) -> Image.Image:
    """A regular image file of bounded size (lookcloser.imaging.files: a pipe or a device is refused, never opened)."""
    with open_image_file(path) as handle:
        return _decode(handle, _Source(path), max_pixels)


def _from_bytes(data: bytes, max_pixels: int | None) -> Image.Image:
    if not data:
        raise ImageError("the image bytes are empty (0 bytes)")
    return _decode(io.BytesIO(data), _Source(None), max_pixels)


def _decode(handle: Any, source: _Source, max_pixels: int | None) -> Image.Image:
    try:
        # Our own max_pixels check replaces Pillow's bomb warning/error with a clearer message.
        # Pillow's limit and the warning filters are process-global: the lock keeps concurrent loads
        # (Agent.batch threads) from restoring each other's values and leaving the limit off.
        with _PILLOW_LIMIT_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            old_limit = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
            try:
                image = Image.open(handle, formats=ALLOWED_FORMATS)
            finally:
                Image.MAX_IMAGE_PIXELS = old_limit
        check_size(image.size, max_pixels, source.name, plural=source.plural)
        frames = _frame_count(image)
        if frames > 1:
            image.seek(0)
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
        result = _to_rgb(image, source.name)
        if frames > 1:  # Pillow keeps multi-frame files open: detach the pixels, then close it
            result = result.copy() if result is image else result
            image.close()
    except ImageError:
        raise
    except PermissionError:
        raise
    except UnidentifiedImageError:
        handle.seek(0)
        fmt = _sniff_refused_format(handle.read(16))
        raise ImageError(source.refused(fmt) if fmt else source.unreadable()) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(source.corrupt(exc)) from None
    result.info[FRAMES_KEY] = frames
    return result


def _frame_count(image: Image.Image) -> int:
    try:
        return max(1, int(getattr(image, "n_frames", 1) or 1))
    except (TypeError, ValueError):
        return 1


#: Signatures Pillow has no reader for at all, named so the refusal is clear.
_OTHER_SIGNATURES = {b"%PDF": "PDF", b"<svg": "SVG", b"<?xml": "XML/SVG"}


def _sniff_refused_format(prefix: bytes) -> str | None:
    """The name of a format Pillow recognises but lookcloser refuses, from the first 16 bytes
    (the same prefix checks Pillow itself runs; nothing is decoded)."""
    for signature, name in _OTHER_SIGNATURES.items():
        if prefix.startswith(signature):
            return name
    Image.init()
    for fmt in Image.ID:
        if fmt in ALLOWED_FORMATS:
            continue
        accept = Image.OPEN.get(fmt, (None, None))[1]
        if accept is None:
            continue
        try:
            if accept(prefix):
                return fmt
        except Exception:  # noqa: BLE001 - a plugin's prefix check failing just means "not this one"
            continue
    return None


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
    check_size((array.shape[1], array.shape[0]), max_pixels, "the numpy image")
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

