"""VLM over any OpenAI-compatible chat endpoint (vLLM, SGLang, Ollama, OpenAI itself).

Why: big VLMs are best served by a dedicated server; this backend only needs a URL. Images
travel as base64 data URLs (the format all these servers accept). Decoding is greedy
(temperature 0). With `logprobs=True` it also offers `yes_probability`, read from the
server's top log-probabilities of the first answer token (vLLM and OpenAI return them).
The `openai` package is an optional extra and is imported on first use.
"""

from __future__ import annotations

import base64
import io
import math
import os
from typing import Any, Literal, Sequence

from PIL import Image

from lookcloser.errors import VLMError
from lookcloser.vlm.base import ChatMessage, VLMReply

OPENAI_DEFAULT_URL = "https://api.openai.com/v1"


def image_to_data_url(
    image: Image.Image, *, max_side: int | None = None, image_format: Literal["png", "jpeg"] = "png"
) -> str:
    """Encode a PIL image as a `data:image/...;base64,` URL, shrinking its longest side to max_side."""
    if max_side is not None and max(image.size) > max_side:
        scale = max_side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    if image_format == "jpeg":
        image.convert("RGB").save(buffer, format="JPEG", quality=92)
        mime = "image/jpeg"
    elif image_format == "png":
        image.save(buffer, format="PNG")
        mime = "image/png"
    else:
        raise ValueError(f"image_format must be 'png' or 'jpeg', got {image_format!r}")
    return f"data:{mime};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def to_openai_messages(
    messages: Sequence[ChatMessage], *, max_side: int | None, image_format: Literal["png", "jpeg"]
) -> list[dict[str, Any]]:
    """ChatMessage list -> OpenAI chat `messages` with text and image_url content parts."""
    out: list[dict[str, Any]] = []
    for message in messages:
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
        image_format: Literal["png", "jpeg"] = "png",
        max_retries: int = 2,
        logprobs: bool = False,
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"OpenAIVLM needs a model name, got {model!r}")
        if image_format not in ("png", "jpeg"):
            raise ValueError(f"image_format must be 'png' or 'jpeg', got {image_format!r}")
        self.model_id = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_DEFAULT_URL).rstrip("/")
        # Local servers (vLLM, Ollama) accept any key; the client refuses to start without one.
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self.timeout = timeout
        self.max_image_side = max_image_side
        self.image_format = image_format
        self.max_retries = max_retries
        self.name = f"openai:{model}@{self.base_url}"
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

    def _create(self, messages: Sequence[ChatMessage], **kwargs: Any) -> Any:
        client = self.client  # raises the install hint when openai is missing
        import openai

        payload = to_openai_messages(messages, max_side=self.max_image_side, image_format=self.image_format)
        try:
            response = client.chat.completions.create(
                model=self.model_id, messages=payload, temperature=0, **kwargs
            )
        except openai.APIStatusError as exc:
            raise VLMError(
                f"VLM endpoint {self.base_url} returned HTTP {exc.status_code} for model {self.model_id!r}: "
                f"{_first_line(exc.message)}"
            ) from exc
        except openai.APIError as exc:  # connection refused, timeout, malformed response
            raise VLMError(
                f"VLM endpoint {self.base_url} failed for model {self.model_id!r}: "
                f"{type(exc).__name__}: {_first_line(str(exc))}"
            ) from exc
        if not getattr(response, "choices", None):
            raise VLMError(f"VLM endpoint {self.base_url} returned no choices for model {self.model_id!r}")
        return response

    def generate(self, messages: Sequence[ChatMessage], *, max_new_tokens: int = 256) -> VLMReply:
        response = self._create(messages, max_tokens=max_new_tokens)
        content = response.choices[0].message.content
        if content is None:
            raise VLMError(f"VLM endpoint {self.base_url} returned an empty message for model {self.model_id!r}")
        usage = getattr(response, "usage", None)
        return VLMReply(
            text=content.strip(),
            input_tokens=getattr(usage, "prompt_tokens", None),
            output_tokens=getattr(usage, "completion_tokens", None),
        )

    def _yes_probability(self, image: Image.Image | Sequence[Image.Image] | None, prompt: str) -> float:
        """P(yes) from the top log-probabilities of the first generated token."""
        images = [] if image is None else [image] if isinstance(image, Image.Image) else list(image)
        response = self._create(
            [ChatMessage("user", [*images, prompt])], max_tokens=1, logprobs=True, top_logprobs=20
        )
        logprobs = getattr(response.choices[0], "logprobs", None)
        content = getattr(logprobs, "content", None) if logprobs is not None else None
        if not content:
            raise VLMError(
                f"VLM endpoint {self.base_url} returned no logprobs for model {self.model_id!r}; "
                "create OpenAIVLM with logprobs=False for servers that do not support them"
            )
        yes = no = 0.0
        for candidate in content[0].top_logprobs or []:
            word = candidate.token.strip().lower()
            if word == "yes":
                yes += math.exp(candidate.logprob)
            elif word == "no":
                no += math.exp(candidate.logprob)
        if yes + no == 0.0:
            raise VLMError(
                f"neither 'yes' nor 'no' is among the top tokens from {self.base_url} for model {self.model_id!r}"
            )
        return yes / (yes + no)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "openai",
            "model": self.model_id,
            "device": self.base_url,
            "dtype": None,
            "max_image_side": self.max_image_side,
            "image_format": self.image_format,
        }

    def __repr__(self) -> str:
        return f"OpenAIVLM({self.model_id!r}, base_url={self.base_url!r})"


def _first_line(text: str, limit: int = 200) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."
