"""Wrap any LangChain chat model that accepts images as a lookcloser VLM.

Why: users who already configured a LangChain chat model (ChatOpenAI, ChatAnthropic,
ChatOllama, ...) can plug it in unchanged. Images are sent as `image_url` content blocks with
base64 data URLs, the multimodal format LangChain chat integrations accept. Decoding settings
(temperature etc.) belong to the wrapped model; set temperature=0 there for reproducible runs.
Each call is the model's own `invoke`, so its own llm run (named `vlm.generate`) is the one trace
of the call, nested under the graph node that made it.
"""

from __future__ import annotations

from typing import Any, Callable, Literal, Sequence

from PIL import Image

from lookcloser.core.boxes import convention
from lookcloser.core.errors import VLMError
from lookcloser.core.vlm_protocol import ChatMessage, VLMReply
from lookcloser.vlm.openai_vlm import image_to_data_url, sent_size


def _model_label(chat_model: Any) -> str:
    for attr in ("model_name", "model", "model_id"):
        value = getattr(chat_model, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(chat_model).__name__


#: LangGraph's tag (langgraph.constants.TAG_NOSTREAM) for a chat model run its `messages` stream leaves out.
NOSTREAM = "nostream"


def vlm_run(name: str, *, answer: bool = False) -> dict[str, Any]:
    """Run config of a VLM call: named, and kept out of LangGraph's `messages` stream unless its reply is the
    user's answer (`answer=True`, TELL's call): SHOW's JSON and the search's questions are no chat output."""
    return {"run_name": name} if answer else {"run_name": name, "tags": [NOSTREAM]}


def vlm_reply(reply: Any, *, strip: bool = False) -> VLMReply:
    """A chat model's reply as the VLM protocol's: its text (its content may be a string or a list of content
    blocks, as a streamed reply's may be), token counts and message id."""
    text = reply.text if isinstance(getattr(reply, "text", None), str) else str(reply.content)
    usage = getattr(reply, "usage_metadata", None) or {}
    calls = [{"id": c.get("id"), "name": c.get("name"), "arguments": c.get("args", {})}
             for c in getattr(reply, "tool_calls", None) or []]
    calls += [{"id": c.get("id"), "name": c.get("name"), "arguments": c.get("args") or ""}  # kept for their note
              for c in getattr(reply, "invalid_tool_calls", None) or []]
    return VLMReply(text=text.strip() if strip else text, input_tokens=usage.get("input_tokens"),
                    output_tokens=usage.get("output_tokens"), message_id=getattr(reply, "id", None),
                    tool_calls=calls)


def to_langchain_messages(messages: Sequence[ChatMessage], image_block: Callable[[Image.Image], dict[str, Any]]) -> list[Any]:
    """ChatMessages as LangChain messages: text alone as a string, else text and `image_block(image)` blocks; an
    assistant turn's tool calls as the AIMessage's, a tool turn as a ToolMessage."""
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    out = []
    for message in messages:
        if message.role == "tool":
            out.append(ToolMessage(content=message.text, tool_call_id=message.tool_call_id or ""))
            continue
        if message.role == "assistant" and message.tool_calls:
            out.append(AIMessage(content=message.text, tool_calls=[
                {"name": c["name"], "args": c["arguments"] if isinstance(c["arguments"], dict) else {},
                 "id": c.get("id")} for c in message.tool_calls]))
            continue
        if message.role not in kinds:
            raise ValueError(f"unknown chat role {message.role!r}: use system, user, assistant or tool")
        if not message.images:
            out.append(kinds[message.role](content=message.text))
            continue
        blocks: list[dict[str, Any]] = []
        for part in message.content:
            if isinstance(part, Image.Image):
                blocks.append(image_block(part))
            elif isinstance(part, str):
                blocks.append({"type": "text", "text": part})
            else:
                raise TypeError(f"message content parts must be str or PIL.Image.Image, got {type(part).__name__}")
        out.append(kinds[message.role](content=blocks))
    return out


class LangChainVLM:
    """A `langchain_core` BaseChatModel seen through the VLM protocol."""

    def __init__(
        self,
        chat_model: Any,
        *,
        max_image_side: int | None = 2048,
        image_format: Literal["png", "jpeg"] = "jpeg",
        box_format: str | None = None,
    ) -> None:
        from langchain_core.language_models import BaseChatModel

        if not isinstance(chat_model, BaseChatModel):
            raise TypeError(
                f"LangChainVLM needs a langchain_core BaseChatModel, got {type(chat_model).__name__}"
            )
        if box_format is not None:
            convention(box_format)  # a ValueError listing the known conventions
        self.chat_model = chat_model
        #: how the chat model writes boxes (lookcloser.core.boxes); None: read from its model name
        self.box_format = box_format
        self.max_image_side = max_image_side
        self.image_format = image_format
        self.model_id = _model_label(chat_model)
        self.name = f"langchain:{type(chat_model).__name__}:{self.model_id}"

    def to_langchain_messages(self, messages: Sequence[ChatMessage]) -> list[Any]:
        def data_url(image: Image.Image) -> dict[str, Any]:
            url = image_to_data_url(image, max_side=self.max_image_side, image_format=self.image_format)
            return {"type": "image_url", "image_url": {"url": url}}

        return to_langchain_messages(messages, data_url)

    @property
    def native_tools(self) -> bool:
        """Whether the chat model binds tools (langchain-core's base class refuses to)."""
        from langchain_core.language_models import BaseChatModel

        bind = getattr(type(self.chat_model), "bind_tools", None)
        return bind is not None and bind is not BaseChatModel.bind_tools

    def generate(self, messages: Sequence[ChatMessage], *, max_new_tokens: int = 256,
                 answer: bool = False, tools: list[dict[str, Any]] | None = None) -> VLMReply:
        """Invoke the chat model. `max_new_tokens` is advisory: the wrapped model's own limit applies.
        `answer=True`: the reply is the user's answer and reaches LangGraph's `messages` stream (token by
        token when the model streams: langchain-core streams an invoke when a streaming handler listens).
        `tools`: OpenAI function schemas, bound with the model's `bind_tools`; its calls are the reply's."""
        lc_messages = self.to_langchain_messages(messages)
        try:
            model = self.chat_model.bind_tools(tools) if tools else self.chat_model
            reply = model.invoke(lc_messages, vlm_run("vlm.generate", answer=answer))
        except Exception as exc:  # integrations raise their own error types
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            raise VLMError(f"{self.name} failed: {type(exc).__name__}: {first}") from exc
        return vlm_reply(reply, strip=True)

    def sent_image_size(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """(width, height) of an image of `image_size` as the model receives it: shrunk to `max_image_side`, then
        on the family's grid when its boxes are absolute (Qwen2.5-VL served behind the chat model)."""
        return sent_size(image_size, self.max_image_side, self.box_format, self.model_id)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "langchain",
            "model": self.model_id,
            "device": type(self.chat_model).__name__,
            "dtype": None,
            "box_format": self.box_format,
        }

    def __repr__(self) -> str:
        return f"LangChainVLM({type(self.chat_model).__name__}, model={self.model_id!r})"
