"""Image references: how graph state names an image without holding it.

A reference is a string: an image-store key (`lookcloser-image:<hash>`, what the Python API puts in
state for the image it was handed), a data URL or raw base64 (what a served graph receives), or a
file path, read only inside `AgentConfig.image_dir`. Decoded images are cached in the image store,
so the nodes of one question decode a photo once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import xxhash
from PIL import Image

from lookcloser.config import AgentConfig
from lookcloser.errors import ImageError
from lookcloser import images
from lookcloser.imagestore import IMAGE_REF_PREFIX, is_key, store

__all__ = ["resolve_image", "to_ref"]

_decoded: OrderedDict[str, str] = OrderedDict()  # hash of a reference -> store key
_lock = threading.Lock()
_MAX_DECODED = 64


def to_ref(image: Image.Image) -> str:
    """Put a decoded image in the process store; the reference to carry in state."""
    return f"{IMAGE_REF_PREFIX}{store.put(image)}"


def resolve_image(ref: object, config: AgentConfig) -> Image.Image:
    """The RGB image a reference names, or ImageError saying what is wrong with it.

    The run's own `config` is applied on every call, cached decode or not: a path is read only inside
    this run's image_dir, and an image over this run's max_pixels is refused even when an earlier run
    (with other settings) already decoded it."""
    if not isinstance(ref, str) or not ref.strip():
        raise ImageError(f"the graph input 'image' must be a non-empty string (data URL, base64 or file path), "
                         f"got {type(ref).__name__}")
    ref = ref.strip()
    if ref.startswith(IMAGE_REF_PREFIX) or is_key(ref):
        image = store.get(ref)
        if image is None:
            raise ImageError(f"image {ref[:60]} is not in this process's image store (in-memory images live only "
                             "as long as the process); send the image as a data URL, base64, or a file path")
        return image
    source: str | Path = ref if _is_inline(ref) else _allowed_path(ref, config)
    digest = xxhash.xxh3_128_hexdigest(_cache_name(source).encode("utf-8", "surrogatepass"))
    with _lock:
        key = _decoded.get(digest)
    image = store.get(key) if key else None
    if image is not None:
        images.check_size(image.size, config.max_pixels, "the graph input 'image'")
        return image
    if isinstance(source, Path):
        image = images.load_image(source, config.max_pixels)
    else:
        image = images.load_image(images.decode_image_string(source, what="the graph input 'image'"),
                                  config.max_pixels)
    with _lock:
        _decoded[digest] = store.put(image)
        while len(_decoded) > _MAX_DECODED:
            _decoded.popitem(last=False)
    return image


def _is_inline(ref: str) -> bool:
    """A data URL, raw base64, or a URL (refused by the decoder): not a file path."""
    return ref[:16].lower().startswith(("data:", "http://", "https://")) or _looks_like_base64(ref)


def _allowed_path(ref: str, config: AgentConfig) -> Path:
    """The file `ref` names, if this run may read it: inside its image_dir, never elsewhere."""
    if config.image_dir is None:
        raise ImageError(f"the graph input 'image' looks like a file path ({ref[:80]}); file paths are read only "
                         "inside AgentConfig.image_dir (set by whoever runs the graph): send a data URL or base64")
    root = Path(config.image_dir).resolve()
    path = (root / ref).resolve() if not Path(ref).is_absolute() else Path(ref).resolve()
    if not path.is_relative_to(root):
        raise ImageError(f"image path {ref} is outside the allowed image_dir {root}")
    return path


def _cache_name(source: str | Path) -> str:
    """What identifies a decode: the inline data itself, or the file with its size and modification time."""
    if isinstance(source, str):
        return source
    try:
        stat = source.stat()
    except OSError:
        return f"file:{source}"  # not cached under a stale name: load_image will say what is wrong
    return f"file:{source}:{stat.st_size}:{stat.st_mtime_ns}"


def _looks_like_base64(value: str) -> bool:
    head = value[:256]
    return len(value) >= 64 and "/" not in head[:1] and "." not in head[-8:] and all(
        c.isalnum() or c in "+/=\n\r" for c in head)
