"""VLM over any OpenAI-compatible chat endpoint (vLLM, SGLang, Ollama, OpenAI itself).

Why: big VLMs are best served by a dedicated server; this backend only needs a URL. Images
travel as base64 data URLs (the format all these servers accept). Decoding is greedy
(temperature 0). With `logprobs=True` it also offers `yes_probability`, read from the
server's top log-probabilities of the first answer token (vLLM and OpenAI return them).
The `openai` package is an optional extra and is imported on first use.

Faults are named, in one line: an endpoint that does not answer in time (the per-call `timeout`, or
less when the question's time limit leaves less: VLMTimeoutError), HTTP errors, a body that is not
JSON (an HTML page, a cut reply) or has no choices (VLMError naming the endpoint, the HTTP status,
the content type and the first characters received). Retries (`max_retries`) are for connection
errors, time-outs, 429 and 5xx, and stop when the question's time is up. A reply longer than
`max_reply_chars` is cut, marked with '…[cut]'.

`stream` asks for the same completion as server-sent events (`stream=True`, usage included) and hands
the text on as it arrives, under the same rules: the whole reply within the per-call timeout, retries
only before its first text, one-line errors; a server that answers with a whole JSON completion
instead is read as one piece.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Iterator, Literal, Sequence, TypeVar

from PIL import Image

from lookcloser.core import boxes
from lookcloser.core.config import cap_pieces, cap_text
from lookcloser.core.deadline import time_left, time_limit_seconds
from lookcloser.core.errors import VLMError, VLMTimeoutError
from lookcloser.imaging.store import store
from lookcloser.vlm.openai_stream import Feed, as_openai_error, delta, finish_reason
from lookcloser.core.vlm_protocol import ChatMessage, VLMReply

OPENAI_DEFAULT_URL = "https://api.openai.com/v1"
T = TypeVar("T")


#: Images go to the VLM as JPEG at this quality with full-resolution colour (4:4:4): a 2250x1500 photo
#: encodes in ~18 ms at 48.5 dB PSNR (1.9 MB as base64), where PNG took ~1 s (6.2 MB). benchmarks/eval_overhead.py.
JPEG_QUALITY = 95
#: Encoded images kept per process (SHOW and TELL send the same photo; crops are new each time).
MAX_ENCODED = 32
_encoded: OrderedDict[tuple[str, int | None, str], str] = OrderedDict()
_encoded_lock = threading.Lock()


def image_to_data_url(
    image: Image.Image, *, max_side: int | None = None, image_format: Literal["png", "jpeg"] = "jpeg"
) -> str:
    """A `data:image/...;base64,` URL of the image, its longest side shrunk to max_side; each distinct image
    (by content hash) is encoded once per setting and reused, so a run's calls do not encode the photo again."""
    if image_format not in ("png", "jpeg"):
        raise ValueError(f"image_format must be 'png' or 'jpeg', got {image_format!r}")
    key = (store.put(image), max_side, image_format)  # hashes each image object once
    with _encoded_lock:
        if key in _encoded:
            _encoded.move_to_end(key)
            return _encoded[key]
    url = _encode(image, max_side, image_format)
    with _encoded_lock:
        _encoded[key] = url
        while len(_encoded) > MAX_ENCODED:
            _encoded.popitem(last=False)
    return url


def side_capped(size: tuple[int, int], max_side: int | None) -> tuple[int, int]:
    """(width, height) of an image of `size` as it is encoded: its longest side shrunk to max_side, aspect kept."""
    width, height = size
    if max_side is None or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def sent_size(size: tuple[int, int], max_side: int | None, box_format: str | None, model: str) -> tuple[int, int]:
    """What a served model's vision encoder receives of an image of `size`: the encoded size, then the family's
    grid when its boxes are absolute pixels of it (Qwen2.5-VL: the server's processor smart-resizes with the
    checkpoint's min/max pixels; lookcloser.core.boxes)."""
    width, height = (int(v) for v in size)
    if width < 1 or height < 1:
        raise ValueError(f"image_size must be (width, height) in pixels, got {size!r}")
    encoded = side_capped((width, height), max_side)
    convention, _ = boxes.derive_convention(box_format, model_name=model)
    return boxes.smart_resize(*encoded) if convention.coords == "grid" else encoded


def _encode(image: Image.Image, max_side: int | None, image_format: str) -> str:
    if max_side is not None and max(image.size) > max_side:
        image = image.resize(side_capped(image.size, max_side), Image.Resampling.BILINEAR)  # area-filtered when shrinking; ~1.6x faster than bicubic
    buffer = io.BytesIO()
    if image_format == "jpeg":
        image.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    else:
        image.save(buffer, format="PNG", compress_level=1)
    return f"data:image/{image_format};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def to_openai_messages(
    messages: Sequence[ChatMessage], *, max_side: int | None, image_format: Literal["png", "jpeg"]
) -> list[dict[str, Any]]:
    """ChatMessage list -> OpenAI chat `messages` with text and image_url content parts."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "tool":
            out.append({"role": "tool", "tool_call_id": message.tool_call_id, "content": message.text})
            continue
        if message.role == "assistant" and message.tool_calls:
            out.append({"role": "assistant", "content": message.text, "tool_calls": [
                {"id": call.get("id"), "type": "function", "function": {
                    "name": call["name"], "arguments": call["arguments"] if isinstance(call["arguments"], str)
                    else json.dumps(call["arguments"], ensure_ascii=False)}} for call in message.tool_calls]})
            continue
        if not any(isinstance(p, Image.Image) for p in message.content):
            out.append({"role": message.role, "content": message.text})
            continue
        if message.role != "user":
            raise ValueError(f"images are only supported in user messages, not in a {message.role!r} message")
        parts: list[dict[str, Any]] = []
        for part in message.content:
            if isinstance(part, Image.Image):
                url = image_to_data_url(part, max_side=max_side, image_format=image_format)
                parts.append({"type": "image_url", "image_url": {"url": url}})
            elif isinstance(part, str):
                parts.append({"type": "text", "text": part})
            else:
                raise TypeError(f"message content parts must be str or PIL.Image.Image, got {type(part).__name__}")
        out.append({"role": message.role, "content": parts})
    return out


class OpenAIVLM:
    """Chat with `model` at `base_url` (default: OPENAI_BASE_URL, else OpenAI's API)."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_image_side: int | None = 2048,
        image_format: Literal["png", "jpeg"] = "jpeg",
        max_retries: int = 2,
        logprobs: bool = False,
        max_reply_chars: int = 4000,
        box_format: str | None = None,
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"OpenAIVLM needs a model name, got {model!r}")
        if image_format not in ("png", "jpeg"):
            raise ValueError(f"image_format must be 'png' or 'jpeg', got {image_format!r}")
        if not timeout or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        if not isinstance(max_reply_chars, int) or max_reply_chars < 1:
            raise ValueError(f"max_reply_chars must be an integer >= 1, got {max_reply_chars!r}")
        if box_format is not None:
            boxes.convention(box_format)  # a ValueError listing the known conventions
        self.model_id = model
        #: how the served model writes boxes (lookcloser.core.boxes); None: read from the model name
        self.box_format = box_format
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_DEFAULT_URL).rstrip("/")
        # Local servers (vLLM, Ollama) accept any key; the client refuses to start without one.
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self.timeout = timeout
        self.max_image_side = max_image_side
        self.image_format = image_format
        self.max_retries = max_retries
        self.max_reply_chars = max_reply_chars
        self.name = f"openai:{model}@{self.base_url}"
        #: `generate(tools=...)` sends OpenAI tool schemas (the zoom strategy's calls; lookcloser.core.vlm_protocol)
        self.native_tools = True
        self._client: Any = None
        if logprobs:  # opt-in: only servers that return top_logprobs can answer it
            self.yes_probability = self._yes_probability

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                import openai
            except ImportError as exc:
                raise ImportError(
                    "the OpenAI-compatible VLM backend needs the openai package: pip install lookcloser[openai]"
                ) from exc
            self._client = openai.OpenAI(
                base_url=self.base_url, api_key=self.api_key, timeout=self.timeout, max_retries=self.max_retries
            )
        return self._client

    @property
    def _where(self) -> str:
        return f"VLM endpoint {self.base_url} (model {self.model_id!r})"

    def _tries(self, call: Callable[[float], T]) -> T:
        """`call(timeout)` under the retry policy: each try waits at most `timeout` (less when the question's
        time limit leaves less); connection errors, time-outs, 429 and 5xx are tried again, up to
        `max_retries` more times and never past the question's time."""
        import openai

        where = self._where
        attempt = 0
        while True:
            left = time_left()
            if left is not None and left <= 0:
                raise VLMTimeoutError(f"{where} was not called: the time limit of "
                                      f"{time_limit_seconds():g} s ran out before")
            timeout = self.timeout if left is None else min(self.timeout, left)
            try:
                return call(timeout)
            except openai.APITimeoutError as exc:
                left = time_left()
                if left is not None and left <= 0.05:
                    raise VLMTimeoutError(f"{where} did not answer within the question's time limit of "
                                          f"{time_limit_seconds():g} s (waited {timeout:.1f} s for this call)") from exc
                if attempt >= self.max_retries:
                    tries = f" ({attempt + 1} tries)" if attempt else ""
                    raise VLMTimeoutError(f"{where} did not answer within {timeout:g} s{tries} "
                                          "(OpenAIVLM timeout)") from exc
            except openai.APIStatusError as exc:
                if attempt >= self.max_retries or not (exc.status_code == 429 or exc.status_code >= 500):
                    raise VLMError(f"{where} returned HTTP {exc.status_code}: {_first_line(_reason(exc))}") from exc
            except openai.APIError as exc:  # connection refused, reset
                if attempt >= self.max_retries:
                    raise VLMError(f"{where} failed: {type(exc).__name__}: {_first_line(str(exc))}") from exc
            attempt += 1
            pause = min(0.5 * 2 ** (attempt - 1), 8.0)
            left = time_left()
            time.sleep(pause if left is None else max(0.0, min(pause, left)))

    def _payload(self, messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
        return to_openai_messages(messages, max_side=self.max_image_side, image_format=self.image_format)

    def _create(self, messages: Sequence[ChatMessage], **kwargs: Any) -> dict[str, Any]:
        """POST one chat completion; the response JSON as a dict with at least one choice."""
        client = self.client  # raises the install hint when openai is missing
        payload = self._payload(messages)

        def call(timeout: float) -> tuple[Any, str]:
            def request() -> tuple[Any, str]:
                raw = client.with_options(timeout=timeout, max_retries=0).chat.completions.with_raw_response.create(
                    model=self.model_id, messages=payload, temperature=0, **kwargs)
                return raw.http_response, raw.http_response.text

            return _within(timeout, request, self.base_url)

        http, body = self._tries(call)
        return self._completion(http.status_code, http.headers.get("content-type", "") or "(none)", body)

    def _completion(self, status: int, content_type: str, body: str, *, expected: str = "JSON") -> dict[str, Any]:
        """The body as a chat completion with at least one choice, else a one-line VLMError."""
        def bad(why: str) -> VLMError:
            return VLMError(f"{self._where} {why} (HTTP {status}, content type {content_type}); "
                            f"received: {_snippet(body)}")

        if "json" not in content_type.lower():
            raise bad(f"did not answer with {expected}")
        try:
            data = json.loads(body)
        except ValueError:
            raise bad("answered with invalid JSON") from None
        if not isinstance(data, dict):
            raise bad("answered JSON that is not a chat completion object")
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise bad("returned no choices")
        return data

    def _text(self, content: Any) -> str:
        """A reply's message content, checked: text, not null, not another type."""
        if content is None:
            raise VLMError(f"VLM endpoint {self.base_url} returned an empty message for model {self.model_id!r}")
        if not isinstance(content, str):
            raise VLMError(f"VLM endpoint {self.base_url} returned a {type(content).__name__} message content for "
                           f"model {self.model_id!r}, not text")
        return content

    def _reply(self, completion: dict[str, Any], *, calls: list[dict[str, Any]] | None = None) -> tuple[str, dict[str, Any]]:
        """A whole chat completion's first message text (checked) and its usage ({} when absent). With `calls`,
        the message's tool calls are added to it, and a message that only calls tools may have no text."""
        message = completion["choices"][0].get("message")
        message = message if isinstance(message, dict) else {}
        if calls is not None:
            calls.extend(_tool_calls(message.get("tool_calls")))
        content = message.get("content")
        content = "" if content is None and calls else self._text(content)
        return content, completion["usage"] if isinstance(completion.get("usage"), dict) else {}

    def generate(self, messages: Sequence[ChatMessage], *, max_new_tokens: int = 256,
                 tools: list[dict[str, Any]] | None = None) -> VLMReply:
        """One completion. `tools` (OpenAI function schemas) lets the model call them: its calls come back in
        `VLMReply.tool_calls` (vLLM and SGLang serve them with a tool parser; without one a model's calls stay in
        the text)."""
        calls: list[dict[str, Any]] = []
        extra = {"tools": tools} if tools else {}
        content, usage = self._reply(self._create(messages, max_tokens=max_new_tokens, **extra),
                                     calls=calls if tools else None)
        return VLMReply(
            text=cap_text(content.strip(), self.max_reply_chars),
            input_tokens=_int_or_none(usage.get("prompt_tokens")),
            output_tokens=_int_or_none(usage.get("completion_tokens")),
            tool_calls=calls,
        )

    def stream(self, messages: Sequence[ChatMessage], *, max_new_tokens: int = 256,
               tools: list[dict[str, Any]] | None = None) -> Iterator[str | VLMReply]:
        """`generate`, as the endpoint sends it: the reply's text in pieces (joined, what `generate` returns:
        stripped, cut at `max_reply_chars`), then a VLMReply with the whole text, the token counts and, with
        `tools`, the tool calls (their pieces joined as they arrive, by index)."""
        usage: dict[str, Any] = {}
        calls: list[dict[str, Any]] = []
        extra = {"tools": tools} if tools else {}
        pieces = self._pieces(messages, usage, calls, max_tokens=max_new_tokens, **extra)
        text: list[str] = []
        try:
            for piece in cap_pieces(pieces, self.max_reply_chars):
                text.append(piece)
                yield piece
        finally:
            pieces.close()  # after a cut: stop reading the endpoint
        yield VLMReply(text="".join(text), input_tokens=_int_or_none(usage.get("prompt_tokens")),
                       output_tokens=_int_or_none(usage.get("completion_tokens")), tool_calls=calls)

    def _pieces(self, messages: Sequence[ChatMessage], usage: dict[str, Any], calls: list[dict[str, Any]] | None = None,
                **kwargs: Any) -> Iterator[str]:
        """The raw text pieces of one streamed completion; its token counts land in `usage`, its tool calls (when
        tools were sent) in `calls`."""
        calls = calls if calls is not None else []
        by_index: dict[int, dict[str, Any]] = {}
        client = self.client
        import openai

        payload = self._payload(messages)

        def first(timeout: float) -> tuple[Feed, list[tuple[str, Any]]]:
            """One try, up to the reply's first text (until then a failure may be tried again)."""
            feed = Feed(lambda: client.with_options(timeout=timeout, max_retries=0).chat.completions
                         .with_streaming_response.create(model=self.model_id, messages=payload, temperature=0,
                                                         stream=True, stream_options={"include_usage": True},
                                                         **kwargs), timeout)
            events: list[tuple[str, Any]] = []
            try:
                while True:
                    kind, value = feed.next()
                    if kind in ("error", "timeout"):
                        error = as_openai_error(value, self.base_url)
                        raise error if isinstance(error, openai.APIError) else self._broken_off(kind, value, timeout, 0)
                    events.append((kind, value))
                    if kind != "chunk" or delta(value)[0]:
                        return feed, events
            except BaseException:
                feed.stop.set()
                raise

        feed, events = self._tries(first)
        received, content_seen, finished = 0, False, False
        try:
            while True:
                for kind, value in events:
                    if kind == "body":  # no event stream: a whole completion (a server that does not stream), or a fault
                        content, counts = self._reply(self._completion(*value, expected="an event stream or JSON"),
                                                      calls=calls if kwargs.get("tools") else None)
                        usage.update(counts)
                        yield content
                        return
                    if kind == "end":
                        calls.extend(by_index[i] for i in sorted(by_index))
                        if not content_seen and not calls:
                            self._text(None)
                        if not finished:  # a connection that closed early ends the events too
                            raise self._broken_off("error", "the event stream ended without a finish reason",
                                                   feed.timeout, received)
                        return
                    if kind == "chunk":
                        content, counts = delta(value)
                        usage.update(counts or {})
                        _add_call_pieces(value, by_index)
                        finished = finished or finish_reason(value) is not None
                        if content is not None:
                            content_seen = True
                            if self._text(content):
                                received += len(content)
                                yield content
                    else:
                        raise self._broken_off(kind, value, feed.timeout, received)
                events = [feed.next()]
        finally:
            feed.stop.set()

    def _broken_off(self, kind: str, error: Any, timeout: float, received: int) -> VLMError:
        """The error for a stream that failed in a way no retry mends, or after its first text (which is out
        already: no retry then)."""
        import openai

        if kind == "timeout" or isinstance(as_openai_error(error, self.base_url), openai.APITimeoutError):
            left = time_left()
            within = (f"the question's time limit of {time_limit_seconds():g} s" if left is not None and left <= 0.5
                      else f"{timeout:g} s")
            return VLMTimeoutError(f"{self._where} did not finish its reply within {within} ({received} characters "
                                   "received; OpenAIVLM timeout)")
        after = f"after {received} characters" if received else "before any text"
        if isinstance(error, str):
            return VLMError(f"{self._where} broke off its reply {after}: {error}")
        if isinstance(error, json.JSONDecodeError):
            return VLMError(f"{self._where} sent a stream event that is not JSON {after}: {_first_line(str(error))}")
        if isinstance(error, openai.APIConnectionError) and error.__cause__ is not None:
            error = error.__cause__  # what the HTTP client saw, not openai's "Connection error."
        return VLMError(f"{self._where} broke off its reply {after}: {type(error).__name__}: "
                        f"{_first_line(getattr(error, 'message', None) or str(error))}")

    def _yes_probability(self, image: Image.Image | Sequence[Image.Image] | None, prompt: str) -> float:
        """P(yes) from the top log-probabilities of the first generated token."""
        images = [] if image is None else [image] if isinstance(image, Image.Image) else list(image)
        response = self._create(
            [ChatMessage("user", [*images, prompt])], max_tokens=1, logprobs=True, top_logprobs=20
        )
        logprobs = response["choices"][0].get("logprobs")
        content = logprobs.get("content") if isinstance(logprobs, dict) else None
        if not content or not isinstance(content, list) or not isinstance(content[0], dict):
            raise VLMError(
                f"VLM endpoint {self.base_url} returned no logprobs for model {self.model_id!r}; "
                "create OpenAIVLM with logprobs=False for servers that do not support them"
            )
        yes = no = 0.0
        for candidate in content[0].get("top_logprobs") or []:
            try:
                word, logprob = str(candidate["token"]).strip().lower(), float(candidate["logprob"])
            except (KeyError, TypeError, ValueError):
                continue
            if word == "yes":
                yes += math.exp(logprob)
            elif word == "no":
                no += math.exp(logprob)
        if yes + no == 0.0:
            raise VLMError(
                f"neither 'yes' nor 'no' is among the top tokens from {self.base_url} for model {self.model_id!r}"
            )
        return yes / (yes + no)

    def sent_image_size(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """(width, height) of an image of `image_size` as the served model's vision encoder receives it: shrunk to
        `max_image_side`, then on the family's grid when its boxes are absolute (Qwen2.5-VL)."""
        return sent_size(image_size, self.max_image_side, self.box_format, self.model_id)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "openai",
            "model": self.model_id,
            "device": self.base_url,
            "dtype": None,
            "max_image_side": self.max_image_side,
            "image_format": self.image_format,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "max_reply_chars": self.max_reply_chars,
            "box_format": self.box_format,
        }

    def __repr__(self) -> str:
        return f"OpenAIVLM({self.model_id!r}, base_url={self.base_url!r})"


def _reason(exc: Any) -> str:
    """Why the server refused, from its body: OpenAI's {"error": {"message"}}, a plain {"error": "..."},
    FastAPI's {"detail": ...} (`transformers serve`), {"message": ...}; else openai's own text, which for a body
    it does not know is only "Error code: 400"."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error")
        for found in (error.get("message") if isinstance(error, dict) else error, body.get("detail"), body.get("message")):
            if isinstance(found, str) and found.strip():
                return found
            if found:  # FastAPI's validation detail is a list of objects
                return json.dumps(found, ensure_ascii=False)[:400]
    if isinstance(body, str) and body.strip():
        return body
    return exc.message


def _add_call_pieces(chunk: Any, by_index: dict[int, dict[str, Any]]) -> None:
    """A stream chunk's tool-call pieces joined into `by_index`: the id and name come once, the arguments' JSON
    text in pieces (OpenAI's streaming format)."""
    choices = getattr(chunk, "choices", None) or []
    for piece in (getattr(getattr(choices[0], "delta", None), "tool_calls", None) or []) if choices else []:
        index = getattr(piece, "index", None)
        call = by_index.setdefault(index if isinstance(index, int) else len(by_index),
                                   {"id": None, "name": "", "arguments": ""})
        function = getattr(piece, "function", None)
        call["id"] = getattr(piece, "id", None) or call["id"]
        call["name"] += getattr(function, "name", None) or ""
        call["arguments"] += getattr(function, "arguments", None) or ""


def _tool_calls(raw: Any) -> list[dict[str, Any]]:
    """A message's OpenAI `tool_calls` as {"id", "name", "arguments"} (arguments as sent: JSON text, read by the
    caller, which notes a malformed one); entries that are not function calls are skipped."""
    calls = []
    for call in raw if isinstance(raw, list) else []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            calls.append({"id": call.get("id"), "name": function["name"], "arguments": function.get("arguments", "")})
    return calls


def _first_line(text: str, limit: int = 200) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _within(seconds: float, func: Any, url: str) -> Any:
    """func() with a hard bound: the HTTP client's timeout is per read, so an endpoint that trickles
    bytes could hold a call for ever. Past `seconds` (+0.5 s) the call is left to finish on its own
    daemon thread (its socket times out later) and APITimeoutError is raised here."""
    import openai

    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["value"] = func()
        except BaseException as exc:  # handed back to the caller below
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="lookcloser-vlm-call", daemon=True).start()
    if not done.wait(seconds + 0.5):
        import httpx

        raise openai.APITimeoutError(request=httpx.Request("POST", f"{url}/chat/completions"))
    if "error" in box:
        raise box["error"]
    return box["value"]


def _snippet(body: str, limit: int = 80) -> str:
    """The first `limit` characters of a body, on one line, quoted."""
    flat = " ".join((body or "").split())
    if not flat:
        return "(an empty body)"
    return repr(flat if len(flat) <= limit else flat[:limit] + "...")


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
