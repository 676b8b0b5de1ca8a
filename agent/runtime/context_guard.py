"""The served graph's HTTP guard: a run's context is checked for unknown keys before the server drops them, and
the photos of a run's input are stored once and referred to by URL.

Why: langgraph-api keeps only the context keys the graph's context schema names and drops the others without a
word (langgraph_api/stream.py, `_filter_context_by_schema`), so a client that writes `{"tool": ...}` for `tools`
or `{"config": {"max_target": 2}}` would get a run with settings it did not ask for. This ASGI middleware reads the
body of each run request (POST .../runs, /runs/stream, /runs/wait, /runs/batch) and answers a context with an
unknown key with HTTP 422 and one line naming it and the closest valid name; everything else passes untouched.
`langgraph.json` mounts it (`"http": {"app": ".../context_guard.py:app"}`); the checks of the values themselves
stay the operator's (`lookcloser.runtime.serving`).

Photos: a client sends its photo inline (a data URL in `image`, or in a chat message's image block), and the server
would keep it in every checkpoint, the run's record and the thread's history (16 MB of history for one question on
a 4 MB photo). The guard moves each inline image of a run's input (and of a state update's values) into the shared
image store (`lookcloser.imaging.uploads`) and hands the server a reference in its place: the absolute URL
`<server>/lookcloser/images/<hash>`, which this app answers with the image's bytes (so a chat UI shows it), and
which the graph reads back from the store by its hash, never by fetching it. The server's base URL is
LOOKCLOSER_PUBLIC_URL when set (behind a proxy or load balancer), else the request's own scheme and Host.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from lookcloser.core.arguments import unknown_names
from lookcloser.core.config import AgentConfig
from lookcloser.core.errors import ImageError
from lookcloser.imaging.uploads import ROUTE, image_store, inline_image_bytes, media_type, valid_key
from lookcloser.runtime.context import Context

__all__ = ["ContextGuard", "app", "context_problem", "public_url"]

_RUN_PATHS = ("/runs", "/runs/stream", "/runs/wait", "/runs/batch")
_STATE_PATH = "/state"  # POST /threads/{id}/state: a state update's values


def public_url() -> str | None:
    """LOOKCLOSER_PUBLIC_URL (the server's address as clients reach it, e.g. https://vision.example.com), or None;
    ValueError naming it when it is no http(s) URL."""
    value = os.environ.get("LOOKCLOSER_PUBLIC_URL", "").strip()
    if not value:
        return None
    if not value.lower().startswith(("http://", "https://")) or "://" not in value or len(value.split("/")[2]) == 0:
        raise ValueError(f"LOOKCLOSER_PUBLIC_URL must be the server's http(s) address (https://host[:port]), got "
                         f"{value[:120]!r}")
    return value.rstrip("/")


_PUBLIC_URL = public_url()  # checked when the server imports this module: a bad value stops it at start


def context_problem(context: Any) -> str | None:
    """One line naming the first unknown key of a run's context (top level, or in its `config`), or None."""
    if not isinstance(context, dict):
        return None  # not ours to judge: the server refuses a context that is not an object
    problem = unknown_names(context, list(Context.model_fields), what="context key")
    config = context.get("config")
    if problem is None and isinstance(config, dict):
        problem = unknown_names(config, list(AgentConfig.model_fields), what="key in the context's 'config'",
                                whats="keys in the context's 'config'")
    return None if problem is None else f"bad context: {problem}"


def _problem(data: Any) -> str | None:
    runs = data if isinstance(data, list) else [data]
    for run in runs:
        if isinstance(run, dict) and (problem := context_problem(run.get("context"))) is not None:
            return problem
    return None


def _base_url(scope: dict[str, Any]) -> str:
    if _PUBLIC_URL:
        return _PUBLIC_URL
    headers = dict(scope.get("headers") or [])
    host = headers.get(b"host", b"").decode("latin-1").strip()
    if not host:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}"


class _Mover:
    """Stores the inline images of one request's inputs and gives their references (each distinct one stored once)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.moved = 0

    async def ref(self, data: bytes) -> str:
        key = await asyncio.to_thread(image_store().put, data)
        self.moved += 1
        return f"{self.base}{ROUTE}{key}"

    async def values(self, values: Any) -> None:
        """In place: `values["image"]` and the image blocks of `values["messages"]`."""
        if not isinstance(values, dict):
            return
        if (data := inline_image_bytes(values.get("image"))) is not None:
            values["image"] = await self.ref(data)
        messages = values.get("messages")
        for message in messages if isinstance(messages, list) else [messages]:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, list):
                for i, block in enumerate(content):
                    if isinstance(block, dict):
                        content[i] = await self.block(block)

    async def block(self, block: dict[str, Any]) -> dict[str, Any]:
        """A content block with its inline image replaced by a URL (LangChain's `{"type": "image", "url": ...}`,
        OpenAI's `{"type": "image_url", "image_url": {"url": ...}}`); other blocks as they are."""
        kind = block.get("type")
        if kind == "image_url":
            inner = block.get("image_url")
            url = inner.get("url") if isinstance(inner, dict) else inner
            if (data := inline_image_bytes(url)) is None:
                return block
            ref = await self.ref(data)
            return {**block, "image_url": {**inner, "url": ref} if isinstance(inner, dict) else {"url": ref}}
        if kind == "image":
            for field in ("base64", "data"):
                if (data := inline_image_bytes(block.get(field))) is not None:
                    moved = {key: value for key, value in block.items() if key not in ("base64", "data")}
                    moved["url"] = await self.ref(data)
                    if moved.get("source_type") == "base64":
                        moved["source_type"] = "url"
                    return moved
        return block


async def _move_images(data: Any, path: str, base: str) -> int:
    """How many inline images of the request's run inputs (or state update values) were moved to the store."""
    mover = _Mover(base)
    if path.endswith(_STATE_PATH):
        if isinstance(data, dict):
            await mover.values(data.get("values"))
    else:
        for run in data if isinstance(data, list) else [data]:
            if isinstance(run, dict):
                await mover.values(run.get("input"))
    return mover.moved


async def _answer(send: Any, status: int, detail: str) -> None:
    payload = orjson.dumps({"detail": detail})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


class ContextGuard:
    """Pure ASGI middleware: a run request's body is read, checked, its inline images moved to the image store,
    and handed on (as it came when nothing moved)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            # straight to the router (the server's merged lifespan): the server's own middleware below this one
            # opens the store for every scope, which on langgraph-runtime-pg fails before its lifespan set it up
            await app.router(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or scope.get("method") != "POST" or not path.endswith((*_RUN_PATHS, _STATE_PATH)):
            await self.app(scope, receive, send)
            return
        messages, chunks = [], []  # joined once: `body +=` copies a 16-MB photo's body once per 64-KB chunk
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        try:
            data = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            data = None  # the server answers a body that is not JSON itself
        if data is not None:
            problem = _problem(data)
            if problem is not None:
                await _answer(send, 422, problem)
                return
            try:
                moved = await _move_images(data, path, _base_url(scope))
            except ImageError as exc:  # the store cannot be written: nothing runs on a photo we could not keep
                await _answer(send, 503, str(exc))
                return
            if moved:
                body = orjson.dumps(data)
                messages = [{"type": "http.request", "body": body, "more_body": False},
                            *(m for m in messages if m["type"] != "http.request")]
                headers = [(k, v) for k, v in scope.get("headers") or [] if k.lower() != b"content-length"]
                scope = {**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}

        async def replay() -> dict[str, Any]:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


_CACHED = {"Cache-Control": "public, max-age=31536000, immutable"}  # content-addressed: a hash's bytes never change


async def image(request: Request) -> Response:
    """GET /lookcloser/images/<hash>: the stored photo's bytes with its media type; 404 and one line otherwise."""
    key = request.path_params["key"]
    if not valid_key(key):
        return PlainTextResponse(f"not an image reference: {key[:40]!r} (expected 32 hex digits)\n", 404)
    if request.headers.get("if-none-match", "").strip('W/"') == key:
        return Response(status_code=304, headers={**_CACHED, "ETag": f'"{key}"'})
    data = await asyncio.to_thread(image_store().get, key)
    if data is None:
        return PlainTextResponse(f"no image {key} in this server's image store\n", 404)
    return Response(data, media_type=media_type(data) or "application/octet-stream",
                    headers={**_CACHED, "ETag": f'"{key}"'})


#: What langgraph.json's "http.app" names: the image route, and the guard in front of the server's routes.
app = Starlette(routes=[Route(ROUTE + "{key}", image, methods=["GET", "HEAD"])], middleware=[Middleware(ContextGuard)])
