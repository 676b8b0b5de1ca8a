"""The served graph's HTTP guard: a run's context is checked for unknown keys before the server drops them.

Why: langgraph-api keeps only the context keys the graph's context schema names and drops the others without a
word (langgraph_api/stream.py, `_filter_context_by_schema`), so a client that writes `{"tool": ...}` for `tools`
or `{"config": {"max_target": 2}}` would get a run with settings it did not ask for. This ASGI middleware reads the
body of each run request (POST .../runs, /runs/stream, /runs/wait, /runs/batch) and answers a context with an
unknown key with HTTP 422 and one line naming it and the closest valid name; everything else passes untouched.
`langgraph.json` mounts it (`"http": {"app": ".../context_guard.py:app"}`); the checks of the values themselves
stay the operator's (`lookcloser.runtime.serving`).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware

from lookcloser.core.arguments import unknown_names
from lookcloser.core.config import AgentConfig
from lookcloser.runtime.context import Context

__all__ = ["ContextGuard", "app", "context_problem"]

_RUN_PATHS = ("/runs", "/runs/stream", "/runs/wait", "/runs/batch")


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


def _body_problem(body: bytes) -> str | None:
    try:
        data = json.loads(body) if body else None
    except ValueError:
        return None  # the server answers a body that is not JSON itself
    runs = data if isinstance(data, list) else [data]
    for run in runs:
        if isinstance(run, dict) and (problem := context_problem(run.get("context"))) is not None:
            return problem
    return None


class ContextGuard:
    """Pure ASGI middleware: a run request's body is read, checked, and handed on as it came."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            # straight to the router (the server's merged lifespan): the server's own middleware below this one
            # opens the store for every scope, which on langgraph-runtime-pg fails before its lifespan set it up
            await app.router(scope, receive, send)
            return
        if scope["type"] != "http" or scope.get("method") != "POST" or not str(scope.get("path", "")).endswith(_RUN_PATHS):
            await self.app(scope, receive, send)
            return
        messages, body = [], b""
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        problem = _body_problem(body)
        if problem is not None:
            payload = json.dumps({"detail": problem}).encode()
            await send({"type": "http.response.start", "status": 422,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(payload)).encode())]})
            await send({"type": "http.response.body", "body": payload})
            return

        async def replay() -> dict[str, Any]:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


#: What langgraph.json's "http.app" names: no routes of its own, only the guard in front of the server's.
app = Starlette(middleware=[Middleware(ContextGuard)])
