"""Checkpoints that hold each photo once, for any LangGraph checkpointer.

A question's input image arrives inline (a data URL or base64, megabytes for a 12-Mpx photo), and
LangGraph checkpoints every step: the input write, the state after it, the messages of a chat thread,
each search branch's task. `ImageRefSerde` wraps the checkpointer's serializer: every large image
string is written once to a content-addressed blob store and the checkpoint holds a short reference
(`lookcloser-blob:<xxh3-128>`); reading a checkpoint puts the image back, so the graph, the API and a
chat UI see exactly what was sent. A thread resumes in any process that shares the checkpointer's
database and the blob store.

    from langgraph.checkpoint.sqlite import SqliteSaver
    saver = SqliteSaver(conn, serde=ImageRefSerde(DirectoryBlobs("/srv/lookcloser/images")))

Blob stores: `DirectoryBlobs` (files named by hash; share the folder between processes), `StoreBlobs`
(a LangGraph `BaseStore`, e.g. PostgresStore, under the namespace ("lookcloser", "images")) or
`MemoryBlobs` (one process; what the `langgraph dev` server uses).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import re
import threading
from pathlib import Path
from typing import Any, AsyncIterator, Protocol

import xxhash
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.types import Send

from lookcloser.imaging.files import write_atomic

__all__ = ["BLOB_PREFIX", "DirectoryBlobs", "ImageRefSerde", "MemoryBlobs", "OffThreadMemorySaver", "StoreBlobs"]

BLOB_PREFIX = "lookcloser-blob:"
_REF = re.compile(r"^lookcloser-blob:[0-9a-f]{32}$")
#: Strings at least this long that look like an encoded image leave the checkpoint (64 KB: a thumbnail stays).
MIN_CHARS = 64 * 1024


class Blobs(Protocol):
    def get(self, key: str) -> str | None: ...

    def put(self, key: str, value: str) -> None: ...


class MemoryBlobs:
    """In this process's memory: one copy per distinct image (for `langgraph dev`, whose event loop must
    not wait on files; its threads live in memory anyway)."""

    def __init__(self) -> None:
        self._blobs: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        return self._blobs.get(key)

    def put(self, key: str, value: str) -> None:
        with self._lock:
            self._blobs.setdefault(key, value)


class DirectoryBlobs:
    """Content-addressed files in `root` (one per distinct image; written atomically, never rewritten)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / key

    def get(self, key: str) -> str | None:
        try:
            return self._path(key).read_text(encoding="ascii")
        except FileNotFoundError:
            return None

    def put(self, key: str, value: str) -> None:
        path = self._path(key)
        if path.exists():
            return
        path.parent.mkdir(exist_ok=True)
        write_atomic(path, value.encode("ascii"))


class StoreBlobs:
    """A LangGraph `BaseStore` as the blob store (the store LangGraph Platform persists)."""

    NAMESPACE = ("lookcloser", "images")

    def __init__(self, store: Any) -> None:
        self.store = store

    def get(self, key: str) -> str | None:
        item = self.store.get(self.NAMESPACE, key)
        return None if item is None else item.value.get("data")

    def put(self, key: str, value: str) -> None:
        if self.store.get(self.NAMESPACE, key) is None:
            self.store.put(self.NAMESPACE, key, {"data": value}, index=False)


class ImageRefSerde(SerializerProtocol):
    """The checkpointer's serializer with large image strings swapped for references to `blobs`."""

    def __init__(self, blobs: Blobs, inner: SerializerProtocol | None = None, min_chars: int = MIN_CHARS) -> None:
        self.blobs = blobs
        self.inner = inner or JsonPlusSerializer()
        self.min_chars = min_chars

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        return self.inner.dumps_typed(_walk(obj, self._out))

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        return _walk(self.inner.loads_typed(data), self._in)

    def _out(self, text: str) -> str:
        if len(text) < self.min_chars or not _is_image_text(text):
            return text
        key = xxhash.xxh3_128_hexdigest(text.encode("utf-8", "surrogatepass"))
        self.blobs.put(key, text)
        return BLOB_PREFIX + key

    def _in(self, text: str) -> str:
        if not _REF.match(text):
            return text
        found = self.blobs.get(text[len(BLOB_PREFIX):])
        if found is None:
            raise LookupError(f"checkpoint refers to image {text} but the blob store has no such image: open the "
                              "checkpointer with the blob store its threads were written with")
        return found


#: The first bytes of the image formats a client may send (JPEG, PNG, GIF, WebP/RIFF, BMP, TIFF).
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"RIFF", b"BM", b"II*\x00", b"MM\x00*")


def _is_image_text(text: str) -> bool:
    """A data URL of an image, or raw base64 whose bytes start like an image file."""
    if text.startswith("data:"):
        return text[5:11].lower() == "image/"
    try:
        head = base64.b64decode(text[:16], validate=True)
    except (ValueError, binascii.Error):
        return False
    return head.startswith(_MAGIC)


def _walk(value: Any, change: Any) -> Any:
    """`value` with `change` applied to every string inside it (dicts, lists, tuples, messages, Sends);
    the same object back when nothing changed."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        changed = {key: _walk(item, change) for key, item in value.items()}
        return value if all(changed[k] is value[k] for k in value) else changed
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        changed = [_walk(item, change) for item in value]
        if all(a is b for a, b in zip(changed, value)):
            return value
        return changed if isinstance(value, list) else tuple(changed)
    if isinstance(value, BaseMessage):
        content = _walk(value.content, change)
        return value if content is value.content else value.model_copy(update={"content": content})
    if isinstance(value, Send):
        arg = _walk(value.arg, change)
        return value if arg is value.arg else Send(value.node, arg)
    return value


class OffThreadMemorySaver(InMemorySaver):
    """LangGraph's in-memory saver whose async methods run in a worker thread, so its serializer may read and
    write files (DirectoryBlobs) without blocking an event loop (`langgraph dev` refuses blocking calls there)."""

    async def aget_tuple(self, config: Any) -> Any:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(self, config: Any, **kwargs: Any) -> AsyncIterator[Any]:
        for item in await asyncio.to_thread(lambda: list(self.list(config, **kwargs))):
            yield item

    async def aput(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config: Any, writes: Any, task_id: str, task_path: str = "") -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)
