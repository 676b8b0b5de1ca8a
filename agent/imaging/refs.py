"""Image references: how graph state names an image without holding it.

A reference is a string: an image-store key (`lookcloser-image:<hash>`, what the Python API puts in
state for the image it was handed), a data URL or raw base64 (what a served graph receives), the URL of a
photo the served graph's guard stored (`<server>/lookcloser/images/<hash>`: read from the store by its hash,
never fetched; `lookcloser.imaging.uploads`), or a
file path, read only inside `AgentConfig.image_dir` (or the folders of an `Access`: the MCP server's
`--image-dir`s). Decoded images are cached in the image store, so the nodes of one question decode a
photo once.
"""

from __future__ import annotations

import base64
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import xxhash
from PIL import Image

from lookcloser.core.config import AgentConfig
from lookcloser.core.errors import ImageError
from lookcloser.imaging.files import IMAGE_SUFFIXES, check_path
from lookcloser.imaging.load import check_size, decode_image_string, load_image
from lookcloser.imaging.store import IMAGE_REF_PREFIX, is_key, store
from lookcloser.imaging.uploads import reference_key, resolve_upload

__all__ = ["Access", "resolve_image", "to_ref"]

_decoded: OrderedDict[str, str] = OrderedDict()  # hash of a reference -> store key
_lock = threading.Lock()
_MAX_DECODED = 64


@dataclass(frozen=True)
class Access:
    """Which files a reference may name, and how refusals word it: `folders` (none: no file at all),
    `what` the value is (the graph input, a tool's argument), `setting`: where the folders are set."""

    folders: tuple[str, ...] = ()
    what: str = "the graph input 'image'"
    setting: str = "AgentConfig.image_dir (set by whoever runs the graph)"


def to_ref(image: Image.Image) -> str:
    """Put a decoded image in the process store; the reference to carry in state."""
    return f"{IMAGE_REF_PREFIX}{store.put(image)}"


def resolve_image(ref: object, config: AgentConfig, access: Access | None = None) -> Image.Image:
    """The RGB image a reference names, or ImageError saying what is wrong with it.

    The run's own `config` is applied on every call, cached decode or not: a path is read only inside
    this run's image_dir (or `access.folders` when given), and an image over this run's max_pixels is
    refused even when an earlier run (with other settings) already decoded it."""
    if access is None:
        access = Access(folders=(config.image_dir,) if config.image_dir else ())
    if not isinstance(ref, str) or not ref.strip():
        raise ImageError(f"{access.what} must be a non-empty string (data URL, base64 or file path), "
                         f"got {type(ref).__name__}")
    ref = ref.strip()
    if ref.startswith(IMAGE_REF_PREFIX) or is_key(ref):
        image = store.get(ref)
        if image is None:
            raise ImageError(f"image {ref[:60]} is not in this process's image store (in-memory images live only "
                             "as long as the process); send the image as a data URL, base64, or a file path")
        return image
    upload = reference_key(ref)  # a photo the served graph's guard stored (lookcloser.imaging.uploads)
    source: str | Path = ref if upload is not None or _is_inline(ref) else _allowed_path(ref, access)
    name = f"upload:{upload}" if upload is not None else _cache_name(source)
    digest = xxhash.xxh3_128_hexdigest(name.encode("utf-8", "surrogatepass"))
    with _lock:
        key = _decoded.get(digest)
    image = store.get(key) if key else None
    if image is not None:
        check_size(image.size, config.max_pixels, access.what)
        return image
    if upload is not None:
        image = load_image(resolve_upload(ref), config.max_pixels)
    elif isinstance(source, Path):
        image = load_image(source, config.max_pixels)
    else:
        image = load_image(decode_image_string(source, what=access.what), config.max_pixels)
    with _lock:
        _decoded[digest] = store.put(image)
        while len(_decoded) > _MAX_DECODED:
            _decoded.popitem(last=False)
    return image


def _is_inline(ref: str) -> bool:
    """A data URL, raw base64, or a URL (refused by the decoder): not a file path."""
    return ref[:16].lower().startswith(("data:", "http://", "https://")) or _looks_like_base64(ref)


def _allowed_path(ref: str, access: Access) -> Path:
    """The file `ref` names, if it may be read: inside one of the folders (symlinks resolved first, so a
    link out of a folder is outside it), never elsewhere. A relative name is looked up in each folder."""
    if not access.folders:
        if "/" in ref or "\\" in ref or Path(ref).suffix.lower() in IMAGE_SUFFIXES:
            raise ImageError(f"{access.what} looks like a file path ({ref[:80]}); file paths are read only "
                             f"inside {access.setting}: send a data URL or base64")
        raise ImageError(f"{access.what} ({ref[:80]!r}) is neither a data URL nor base64 image data, and file paths "
                         f"are read only inside {access.setting}: send a data URL or base64")
    check_path(ref, what="image", error=ImageError)
    try:
        roots = [Path(folder).resolve() for folder in access.folders]
        given = Path(ref)
        candidates = [given.resolve()] if given.is_absolute() else [(root / given).resolve() for root in roots]
    except (OSError, RuntimeError) as exc:  # a symlink loop, an unsearchable folder
        raise ImageError(f"image path {ref[:200]} cannot be checked: {getattr(exc, 'strerror', None) or exc}") from None
    inside = [path for path in candidates if any(path.is_relative_to(root) for root in roots)]
    if not inside:
        raise ImageError(f"image path {ref} is outside the allowed image_dir {', '.join(map(str, roots))}")
    return next((path for path in inside if os.path.exists(path)), inside[0])


def _cache_name(source: str | Path) -> str:
    """What identifies a decode: the inline data itself, or the file with its size and modification time."""
    if isinstance(source, str):
        return source
    try:
        stat = source.stat()
    except OSError:
        return f"file:{source}"  # not cached under a stale name: load_image will say what is wrong
    return f"file:{source}:{stat.st_size}:{stat.st_mtime_ns}"


#: The first bytes of the image formats Pillow reads most (JPEG, PNG, GIF, WebP/RIFF, BMP, TIFF).
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"RIFF", b"BM", b"II*\x00", b"MM\x00*")


def _looks_like_base64(value: str) -> bool:
    """Raw base64 of an image, not a path: the base64 alphabet only, and either it decodes to an image
    format's first bytes (a JPEG's base64 starts with "/9j/", like an absolute path) or it does not
    start like a path at all."""
    head = value[:256]
    if len(value) < 64 or not all(c.isalnum() or c in "+/=\n\r" for c in head):
        return False
    try:
        if base64.b64decode(head[:16], validate=True).startswith(_IMAGE_MAGIC):
            return True
    except ValueError:
        pass
    return not head.startswith("/") and "." not in head[-8:]
