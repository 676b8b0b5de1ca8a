"""Files lookcloser reads by path (images, settings files): regular files of bounded size, opened without blocking.

Why: `open()` on a named pipe waits until a writer comes, and /dev/zero or /dev/urandom never end; a path
that names one must be refused in one line, never hang or read until the kernel kills the process.
`open_regular` looks with `stat` first (no open at all for a pipe or a device), opens with O_NONBLOCK (a
pipe put there since opens at once instead of waiting) and checks the open descriptor again with `fstat`,
so what is read is the regular file that was checked. Only the stdlib: the CLI checks its arguments with
it before Pillow or any model is imported.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO

from lookcloser.core.errors import ImageError

__all__ = ["IMAGE_SUFFIXES", "MAX_IMAGE_BYTES", "MAX_SETTINGS_BYTES", "check_path", "open_image_file", "open_regular",
           "read_regular", "write_atomic"]

#: Image files: at most 2 GiB (an uncompressed 100-megapixel 16-bit TIFF is about 600 MB).
MAX_IMAGE_BYTES = 2 * 1024**3

#: Settings files (`--config`, LOOKCLOSER_CONFIG): at most 1 MiB (a real one is a few hundred bytes).
MAX_SETTINGS_BYTES = 1024**2

#: File extensions of the formats lookcloser decodes (lookcloser.imaging.load.ALLOWED_FORMATS): what a folder of
#: images is read for (`find DIR`, a V* Bench folder).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")

_KINDS = ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a plain file")


def _size(count: int) -> str:
    return f"{count / 1024**3:g} GiB" if count >= 1024**3 else f"{count / 1024**2:g} MiB"


def _check(path: Path, info: os.stat_result, what: str, max_bytes: int, error: type[Exception]) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{what} {_clip(str(path))} is {_kind(info.st_mode)}, not a regular file")
    if info.st_size > max_bytes:
        raise error(f"{what} {_clip(str(path))} is {info.st_size:,} bytes, "
                    f"more than the {_size(max_bytes)} allowed")


def check_path(path: str | os.PathLike, *, what: str, error: type[Exception]) -> None:
    """`error(message)` for a path no file can have, which the OS would refuse with a bare ValueError: a NUL byte,
    or a character the file system's encoding cannot write (a lone surrogate such as '\\ud800', which JSON can
    carry; the surrogate escapes of a real file name's undecodable bytes are written back and pass)."""
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    if "\x00" in text:
        raise error(f"{what} path {_clip(repr(text))} contains a NUL byte (\\x00); no file can have that name")
    try:
        os.fsencode(text)
    except UnicodeError:
        bad = next(ch for ch in text if not _encodable(ch))
        raise error(f"{what} path {_clip(repr(text))} has a character no file name can hold ({bad!r})") from None


def _encodable(ch: str) -> bool:
    try:
        os.fsencode(ch)
    except UnicodeError:
        return False
    return True


def _clip(text: str, limit: int = 120) -> str:
    """A caller's path in a message: at most `limit` characters of it (a 100,000-character name is not repeated)."""
    return text if len(text) <= limit else f"{text[: limit - 1]}… ({len(text):,} characters)"


def open_regular(path: str | os.PathLike, *, what: str, max_bytes: int, error: type[Exception]) -> BinaryIO:
    """Open `path` for reading (binary) when it is a regular file of at most `max_bytes`.

    `error(message)` (the caller's error type) for a pipe, a device, a socket or a file too large, the
    message naming `what` and the path; the OS's own FileNotFoundError, IsADirectoryError, PermissionError
    (or another OSError) otherwise, for the caller to word. Never blocks.
    """
    check_path(path, what=what, error=error)
    path = Path(path)
    _check(path, os.stat(path), what, max_bytes, error)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        _check(path, os.fstat(fd), what, max_bytes, error)  # the file opened is the file checked
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike, *, what: str, max_bytes: int, error: type[Exception]) -> bytes:
    """The bytes of `path`, read as `open_regular` allows (never more than `max_bytes`, even if it grows)."""
    with open_regular(path, what=what, max_bytes=max_bytes, error=error) as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise error(f"{what} {_clip(str(path))} grew past the {_size(max_bytes)} allowed while it was read")
    return data


def open_image_file(path: str | os.PathLike) -> BinaryIO:
    """An image file opened for decoding, or one ImageError line: not found, a directory, empty, a pipe or
    a device, larger than MAX_IMAGE_BYTES, not readable."""
    path = Path(path)
    try:
        handle = open_regular(path, what="image file", max_bytes=MAX_IMAGE_BYTES, error=ImageError)
    except FileNotFoundError:
        raise ImageError(f"image file not found: {_clip(str(path))}") from None
    except IsADirectoryError:
        raise ImageError(f"image path is a directory, not a file: {_clip(str(path))}") from None
    except PermissionError:
        raise ImageError(f"permission denied: cannot read image file {_clip(str(path))}") from None
    except OSError as exc:
        raise ImageError(f"cannot read image file {_clip(str(path))}: {exc.strerror or exc}") from None
    if os.fstat(handle.fileno()).st_size == 0:
        handle.close()
        raise ImageError(f"image file is empty (0 bytes): {_clip(str(path))}")
    return handle


def write_atomic(path: Path, data: bytes) -> None:
    """Write via a temp file in the same folder + rename: readers never see a half-written file."""
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
