"""Photos that a served graph's clients send, stored once and named by an HTTP URL of the same server.

Why: a client sends its photo inline (a data URL: ~5 MB for a 12-Mpx JPEG) and the LangGraph server keeps a run's
input in every checkpoint's values, in the run's record and in a chat's messages, and returns all of them in a
thread's history: 16 MB for one question on a 4 MB photo. The served graph's HTTP guard
(`lookcloser.runtime.context_guard`) moves each inline image of a run's input into this content-addressed store
before the server sees it and puts a short reference in its place: `<server>/lookcloser/images/<xxh3-128 of the
bytes>`, an absolute URL the same server answers (so a chat UI shows the photo by URL). The graph reads the photo
back from the store by its hash (`resolve_upload`): it never fetches a URL, so a URL cannot make the server call an
address; a reference whose hash the store does not hold is one ImageError line.

Stores (`LOOKCLOSER_IMAGE_STORE`): a `postgresql://` URI (a table `lookcloser_images` in that database: what
`lookcloser serve` uses, its own database, so every server process and replica shares it) or a folder (files named
by hash; `langgraph dev`'s default is `uploads` under LOOKCLOSER_BLOB_DIR, `.langgraph_api/lookcloser-images`).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import threading
from pathlib import Path
from typing import Any, Protocol

import xxhash

from lookcloser.core.errors import ImageError
from lookcloser.imaging.files import write_atomic

__all__ = ["ROUTE", "ImageFiles", "PostgresImages", "image_store", "inline_image_bytes", "media_type",
           "reference_key", "resolve_upload", "valid_key"]

#: The path of the image route, below the server's root (`GET /lookcloser/images/<hash>`).
ROUTE = "/lookcloser/images/"
_KEY = re.compile(r"[0-9a-f]{32}")
#: The first bytes of the formats a client may send, and the media type the route answers with.
_MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"GIF8", "image/gif"),
          (b"BM", "image/bmp"), (b"II*\x00", "image/tiff"), (b"MM\x00*", "image/tiff"))


class Images(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def put(self, data: bytes) -> str: ...


def valid_key(key: str) -> bool:
    return bool(_KEY.fullmatch(key))


def key_of(data: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(data)


def media_type(data: bytes) -> str | None:
    """The image media type of encoded image bytes, by their first bytes; None when they are not one we take."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for magic, kind in _MAGIC if data.startswith(magic)), None)


class ImageFiles:
    """Content-addressed files under `root` (`<root>/<2 hex>/<hash>`, written atomically, never rewritten); share
    the folder between processes."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / key

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def put(self, data: bytes) -> str:
        key = key_of(data)
        path = self._path(key)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, data)
        return key

    def __repr__(self) -> str:
        return f"the folder {self.root}"


class PostgresImages:
    """A table `lookcloser_images` (key, bytes) in a PostgreSQL database: one connection per thread (the guard
    calls it from worker threads, the graph's nodes from theirs); the table is created on first use."""

    TABLE = "lookcloser_images"

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._local = threading.local()
        self._ready = False
        self._lock = threading.Lock()

    def _run(self, sql: str, params: tuple[Any, ...]) -> Any:
        import psycopg  # noqa: PLC0415  (the [serve] extra)

        for attempt in (0, 1):
            connection = getattr(self._local, "connection", None)
            try:
                if connection is None or connection.closed:
                    connection = self._local.connection = psycopg.connect(self.uri, autocommit=True,
                                                                          connect_timeout=10)
                self._setup(connection)
                return connection.execute(sql, params).fetchone()
            except psycopg.OperationalError as exc:  # a connection the server closed: one new one, then the error
                self._local.connection = None
                if attempt:
                    raise ImageError(f"the image store ({self!r}) cannot be reached: "
                                     f"{(str(exc).strip() or type(exc).__name__).splitlines()[0][:200]}") from None
        return None  # pragma: no cover

    def _setup(self, connection: Any) -> None:
        if self._ready:
            return
        import psycopg  # noqa: PLC0415

        with self._lock:
            if self._ready:
                return
            try:
                connection.execute(f"CREATE TABLE IF NOT EXISTS {self.TABLE} (key text PRIMARY KEY, data bytea NOT "
                                   "NULL, created_at timestamptz NOT NULL DEFAULT now())")
            except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
                pass  # another process created it at the same moment
            self._ready = True

    def get(self, key: str) -> bytes | None:
        row = self._run(f"SELECT data FROM {self.TABLE} WHERE key = %s", (key,))
        return None if row is None else bytes(row[0])

    def put(self, data: bytes) -> str:
        key = key_of(data)
        self._run(f"INSERT INTO {self.TABLE} (key, data) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING "
                  "RETURNING key", (key, data))
        return key

    def __repr__(self) -> str:
        host = self.uri.rpartition("@")[2]
        return f"PostgreSQL at {host}, table {self.TABLE}"


_stores: dict[str, Images] = {}
_stores_lock = threading.Lock()


def store_setting() -> str:
    """Where this process keeps uploaded photos: LOOKCLOSER_IMAGE_STORE, else `uploads` in the served checkpointer's
    blob folder (LOOKCLOSER_BLOB_DIR, default .langgraph_api/lookcloser-images)."""
    given = os.environ.get("LOOKCLOSER_IMAGE_STORE", "").strip()
    if given:
        return given
    blobs = os.environ.get("LOOKCLOSER_BLOB_DIR") or os.path.join(".langgraph_api", "lookcloser-images")
    return os.path.join(blobs, "uploads")


def image_store() -> Images:
    """This process's store of uploaded photos (one object per setting)."""
    setting = store_setting()
    with _stores_lock:
        found = _stores.get(setting)
        if found is None:
            found = _stores[setting] = (PostgresImages(setting) if setting.startswith(("postgresql://", "postgres://"))
                                        else ImageFiles(setting))
        return found


def reference_key(ref: str) -> str | None:
    """The hash an image reference names (`http(s)://HOST[/PREFIX]/lookcloser/images/<hash>`, or that path alone);
    None for a string of another shape; ImageError for a reference of this shape whose hash is malformed."""
    if not (ref.startswith(ROUTE) or ref[:8].lower().startswith(("http://", "https://")) and ROUTE in ref):
        return None
    key = ref.rpartition(ROUTE)[2]
    if not _KEY.fullmatch(key):
        raise ImageError(f"image reference {ref[:120]} is not one this server made (expected {ROUTE}<32 hex "
                         "digits>): send the photo as a data URL")
    return key


def resolve_upload(ref: str) -> bytes | None:
    """The stored bytes of an image reference, None when `ref` is not one; ImageError when the store does not hold
    its hash (a forged reference, or one made by a server with another store)."""
    key = reference_key(ref)
    if key is None:
        return None
    store = image_store()
    data = store.get(key)
    if data is None:
        raise ImageError(f"image reference {ref[:120]} names no image in this server's image store ({store!r}): "
                         "send the photo as a data URL")
    return data


def inline_image_bytes(value: Any) -> bytes | None:
    """The encoded image in a data URL (`data:image/...;base64,`) or raw base64 string, when it decodes to an image
    format we take; None for anything else (left for the graph to judge and refuse in its own words)."""
    if not isinstance(value, str) or len(value) < 16:
        return None
    text = value.strip()
    if text[:5].lower() == "data:":
        header, comma, text = text[5:].partition(",")
        if not comma or not header.lower().startswith("image/") or "base64" not in header.lower().split(";")[1:]:
            return None
    try:
        data = base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        return None  # unusual base64 (URL-safe, line breaks): the graph's own decoder takes it inline
    return data if media_type(data) else None
