"""A content-addressed, in-process store of decoded images.

Graph state must be plain data, so it names images instead of holding them: an image the Python API
was handed (a PIL image, an array) is put here and the state carries its key; traces refer to crops
and inputs by the same kind of key, so one picture is one file however often it is used.
Keys are content hashes (never `id()`, which CPython reuses). The store is bounded (least recently
used images are dropped past `max_bytes`); a key whose image was dropped reads back as None.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict

import xxhash
from PIL import Image

IMAGE_REF_PREFIX = "lookcloser-image:"
KEY_LENGTH = 32  # hex characters of a 128-bit XXH3 digest (xxhash ships with langgraph and langsmith)

#: 1 GiB: about thirty 12-Mpx photos, and any number of crops.
DEFAULT_MAX_BYTES = 1 << 30


def image_key(image: Image.Image) -> str:
    """Content hash of the decoded pixels (mode and size included)."""
    digest = xxhash.xxh3_128(f"{image.mode}:{image.width}x{image.height}:".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def is_key(value: str) -> bool:
    return len(value) == KEY_LENGTH and all(c in "0123456789abcdef" for c in value)


class ImageStore:
    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._images: OrderedDict[str, Image.Image] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._known: dict[int, tuple[weakref.ref, str]] = {}  # id -> (weakref, key): skip re-hashing

    def put(self, image: Image.Image) -> str:
        """Store `image` (if new) and return its key. Hashes each image object once."""
        if not isinstance(image, Image.Image):
            raise TypeError(f"the image store holds PIL images, got {type(image).__name__}")
        known = self._known.get(id(image))
        key = known[1] if known is not None and known[0]() is image else None
        if key is None:
            key = image_key(image)
            try:
                ref = weakref.ref(image, lambda _ref, ident=id(image): self._forget(ident, _ref))
                self._known[id(image)] = (ref, key)
            except TypeError:  # pragma: no cover - PIL images support weak references
                pass
        with self._lock:
            if key in self._images:
                self._images.move_to_end(key)
                return key
            self._images[key] = image
            self._bytes += _size(image)
            while self._bytes > self.max_bytes and len(self._images) > 1:
                _, dropped = self._images.popitem(last=False)
                self._bytes -= _size(dropped)
        return key

    def get(self, key: str) -> Image.Image | None:
        if key.startswith(IMAGE_REF_PREFIX):
            key = key[len(IMAGE_REF_PREFIX):]
        with self._lock:
            image = self._images.get(key)
            if image is not None:
                self._images.move_to_end(key)
            return image

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def _forget(self, ident: int, ref: weakref.ref) -> None:
        entry = self._known.get(ident)
        if entry is not None and entry[0] is ref:
            self._known.pop(ident, None)


def _size(image: Image.Image) -> int:
    return image.width * image.height * max(1, len(image.getbands()))


#: The process-wide store shared by the graph, the agent and the tracers.
def _max_bytes_from_env() -> int:
    """LOOKCLOSER_IMAGE_CACHE_MB (decoded images kept per process, in MB), else DEFAULT_MAX_BYTES."""
    value = os.environ.get("LOOKCLOSER_IMAGE_CACHE_MB", "").strip()
    if not value:
        return DEFAULT_MAX_BYTES
    try:
        megabytes = float(value)
    except ValueError:
        raise ValueError(f"LOOKCLOSER_IMAGE_CACHE_MB must be a number of megabytes, got {value!r}") from None
    if not 1 <= megabytes <= 1 << 20:
        raise ValueError(f"LOOKCLOSER_IMAGE_CACHE_MB must be between 1 and 1048576, got {value!r}")
    return int(megabytes * (1 << 20))


store = ImageStore(_max_bytes_from_env())
