"""The one protocol every VLM backend follows, and what tools may call (core: imports nothing of the project).

A backend only has to implement `generate`: chat over messages whose content mixes text and
images. `yes_probability` and `score_options` are optional: backends that can read token
likelihoods (TransformersVLM) implement them; the agent checks with `hasattr`/`supports`.
`stream` is optional too: `generate` as it arrives, so the answer reaches a client token by token.
Native tool calling is optional as well: a backend with `native_tools = True` takes `generate(..., tools=[...])`
(OpenAI function schemas) and puts the model's calls in `VLMReply.tool_calls`; the zoom strategy uses it, and
falls back to the text forms trained zoomers write (lookcloser.core.zoom_calls) for every other backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Literal, Protocol, Sequence, Union, runtime_checkable

from PIL import Image

Part = Union[str, Image.Image]


@dataclass
class ChatMessage:
    """One chat turn. `content` is an ordered list of text strings and PIL images. An assistant turn may carry
    the tool calls it made (`tool_calls`: {"id", "name", "arguments"} dicts); a "tool" turn answers the call
    `tool_call_id` names (text only: an image a tool returns follows in a user turn, as OpenAI's API wants)."""

    role: Literal["system", "user", "assistant", "tool"]
    content: list[Part] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None

    @property
    def images(self) -> list[Image.Image]:
        return [p for p in self.content if isinstance(p, Image.Image)]

    @property
    def text(self) -> str:
        return "\n".join(p for p in self.content if isinstance(p, str))


@dataclass
class VLMReply:
    text: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    #: The chat model run's message id: an answer streamed token by token carries it, so the chat
    #: reply that follows reuses it and LangGraph's `messages` stream shows one message, not two.
    message_id: str | None = None
    #: Native tool calls of the reply ({"id", "name", "arguments": dict}), when tools were passed.
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


@runtime_checkable
class VLM(Protocol):
    """Chat-generate over (text, images) messages. Greedy/deterministic by default."""

    name: str

    def generate(self, messages: Sequence[ChatMessage], *, max_new_tokens: int = 256) -> VLMReply: ...


class StreamingVLM(VLM, Protocol):
    """A VLM that can also stream: `stream` yields the text of what `generate` would reply, in pieces (their
    concatenation is that reply), then at most one VLMReply whose token counts are the call's (its text is
    the whole reply)."""

    def stream(self, messages: Sequence[ChatMessage], *, max_new_tokens: int = 256) -> Iterator[str | VLMReply]: ...


def supports(vlm: object, capability: Literal["yes_probability", "score_options", "stream", "tools"]) -> bool:
    """True when the backend implements an optional method (a likelihood, or streaming), or for "tools" when it
    takes native tool schemas in `generate` (`native_tools = True`)."""
    if capability == "tools":
        return getattr(vlm, "native_tools", False) is True
    return callable(getattr(vlm, capability, None))
