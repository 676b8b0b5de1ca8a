"""The HTTP side of a streamed chat completion (OpenAIVLM.stream): one request read on its own daemon thread,
its server-sent events handed over a queue, and what a stream chunk says.

Why a thread: the HTTP client's timeout is per read, so an endpoint that trickles bytes could hold a reader for
ever; the reader here waits on a clock of its own (the whole reply within the call's timeout) and can give up
while the thread finishes on its own.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Callable

__all__ = ["Feed", "as_openai_error", "delta", "finish_reason"]


class Feed:
    """`request()` (openai's streaming-response context manager) read on a daemon thread; `next()` gives its
    events until `timeout` (+0.5 s) after the start: ("chunk", ChatCompletionChunk), ("end", None), ("body",
    (status, content type, text)) for an answer that is no event stream, ("error", exception), then
    ("timeout", None). The thread stops at the next event once `stop` is set (a stalled read ends at the HTTP
    client's own timeout)."""

    def __init__(self, request: Callable[[], Any], timeout: float) -> None:
        self.timeout = timeout
        self.ends = time.monotonic() + timeout + 0.5
        self.stop = threading.Event()  # set by the reader when it needs no more
        self._events: queue.Queue = queue.Queue()
        threading.Thread(target=self._run, args=(request,), name="lookcloser-vlm-stream", daemon=True).start()

    def _run(self, request: Callable[[], Any]) -> None:
        try:
            with request() as response:
                http = response.http_response
                content_type = http.headers.get("content-type", "") or "(none)"
                if "event-stream" not in content_type.lower():
                    self._events.put(("body", (http.status_code, content_type,
                                               http.read().decode("utf-8", errors="replace"))))
                    return
                for chunk in response.parse():
                    if self.stop.is_set():
                        return
                    self._events.put(("chunk", chunk))
            self._events.put(("end", None))
        except BaseException as exc:  # handed to the reader
            self._events.put(("error", exc))

    def next(self) -> tuple[str, Any]:
        try:
            return self._events.get(timeout=max(0.0, self.ends - time.monotonic()))
        except queue.Empty:
            self.stop.set()
            return "timeout", None


def delta(chunk: Any) -> tuple[Any, dict[str, Any] | None]:
    """(the text of a stream chunk's first choice, or None; the chunk's usage, or None)."""
    choices = getattr(chunk, "choices", None) or []
    content = getattr(getattr(choices[0], "delta", None), "content", None) if choices else None
    usage = getattr(chunk, "usage", None)
    usage = usage.model_dump() if hasattr(usage, "model_dump") else usage if isinstance(usage, dict) else None
    return content, usage


def finish_reason(chunk: Any) -> Any:
    choices = getattr(chunk, "choices", None) or []
    return getattr(choices[0], "finish_reason", None) if choices else None


def as_openai_error(error: Any, url: str) -> BaseException:
    """A stream's failure as the openai error the retry policy knows: None (no event in time) and the HTTP client's
    own errors, which openai may not wrap when they come while the events are read; others as they are."""
    import httpx
    import openai

    request = httpx.Request("POST", f"{url}/chat/completions")
    if error is None or isinstance(error, httpx.TimeoutException):
        return openai.APITimeoutError(request=request)
    if isinstance(error, httpx.TransportError):
        return openai.APIConnectionError(message=f"{type(error).__name__}: {error}", request=request)
    return error
