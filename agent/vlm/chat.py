"""The agent's VLM: every call is one `invoke` of a LangChain chat model, so exactly one llm run.

Why: langchain-core opens a chat model's llm run itself, under the run that called it (a graph node, a V*
step), and hands it to every callback handler: LangSmith, the local trace, the agent's counters. A LangChain
chat model (`LangChainVLM`) is invoked as it is; any other backend (OpenAI-compatible, transformers, an
object with `generate`) becomes a chat model through `BackendChatModel`. Images reach that adapter as
image-store references (`lookcloser-image:<hash>`): runs name them by content hash, nothing is encoded.

The user's answer (TELL's call) streams token by token when the backend has `stream` and someone listens
(LangGraph's `messages` stream mode attaches the handler langchain-core looks for); every other call is one
`generate`, as before.
"""

from __future__ import annotations

import json
from typing import Any, Iterator, Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from PIL import Image

from lookcloser.core.errors import VLMError
from lookcloser.imaging.refs import to_ref
from lookcloser.imaging.store import store
from lookcloser.core.vlm_protocol import ChatMessage, VLMReply, supports
from lookcloser.vlm.langchain_vlm import NOSTREAM, LangChainVLM, to_langchain_messages, vlm_reply, vlm_run

__all__ = ["BackendChatModel", "ChatVLM", "chat_vlm"]

_ROLES = {"human": "user", "system": "system", "ai": "assistant", "tool": "tool"}


def _image_ref(image: Image.Image) -> dict[str, Any]:
    return {"type": "image", "url": to_ref(image)}


def _images(image: Image.Image | Sequence[Image.Image] | None) -> list[Image.Image]:
    return [] if image is None else [image] if isinstance(image, Image.Image) else list(image)


def _part(block: Any) -> str | Image.Image:
    if isinstance(block, str):
        return block
    if block.get("type") == "text":
        return str(block.get("text", ""))
    image = store.get(str(block.get("url", ""))) if block.get("type") == "image" else None
    if image is None:
        raise VLMError(f"a message block {str(block)[:80]} is not text or an image of this process's image store")
    return image


def _usage(reply: VLMReply) -> dict[str, int] | None:
    """The reply's token counts as LangChain's usage_metadata (None when the backend gave none)."""
    if reply.input_tokens is None and reply.output_tokens is None:
        return None
    tokens = {"input_tokens": reply.input_tokens or 0, "output_tokens": reply.output_tokens or 0}
    return {**tokens, "total_tokens": sum(tokens.values())}


def _as_tool_calls(calls: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """A backend's tool calls as an AIMessage's `tool_calls`, those whose arguments are no JSON object as its
    `invalid_tool_calls` (kept, so the caller can say what was wrong)."""
    valid, invalid = [], []
    for call in calls:
        arguments = call.get("arguments")
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except ValueError:
                pass
        if isinstance(arguments, dict):
            valid.append({"name": call["name"], "args": arguments, "id": call.get("id"), "type": "tool_call"})
        else:
            invalid.append({"name": call["name"], "args": str(call.get("arguments")), "id": call.get("id"),
                            "error": "arguments are not a JSON object", "type": "invalid_tool_call"})
    return {"tool_calls": valid, "invalid_tool_calls": invalid}


def _result(text: str, usage: dict[str, int] | None = None, calls: list[dict[str, Any]] | None = None,
            **info: Any) -> ChatResult:
    """One generation; `info` lands in the reply's response_metadata (langchain-core merges it)."""
    message = AIMessage(content=text, usage_metadata=usage, **(_as_tool_calls(calls) if calls else {}))
    return ChatResult(generations=[ChatGeneration(message=message, generation_info=info or None)])


class BackendChatModel(BaseChatModel):
    """A lookcloser VLM backend as a chat model. `call` picks the backend method: "generate" (default),
    "yes_probability" or "score_options" (with `options`); their value comes back in the reply's
    response_metadata ("p_yes", "scores")."""

    backend: Any
    cache: bool | None = False  # a VLM call is never answered from a global LLM cache

    @property
    def _llm_type(self) -> str:
        return "lookcloser"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": getattr(self.backend, "name", type(self.backend).__name__)}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        return {**super()._get_ls_params(stop=stop, **kwargs), "ls_provider": "lookcloser",
                "ls_model_name": self._identifying_params["model"]}

    def _streams(self, run_manager: Any, kwargs: dict[str, Any]) -> bool:
        """Only a `generate` call of a backend with `stream` streams, and only when its run is not tagged
        `nostream` (no one would see the tokens); likelihood calls keep their response_metadata."""
        return (kwargs.get("call", "generate") == "generate"
                and (not kwargs.get("tools") or supports(self.backend, "tools"))
                and supports(self.backend, "stream")
                and NOSTREAM not in (getattr(run_manager, "tags", None) or []))

    def _should_stream(self, *, async_api: bool, run_manager: Any = None, **kwargs: Any) -> bool:
        return self._streams(run_manager, kwargs) and super()._should_stream(
            async_api=async_api, run_manager=run_manager, **kwargs)

    def _should_use_protocol_streaming(self, *, async_api: bool, run_manager: Any = None, **kwargs: Any) -> bool:
        # langchain-core's v2 streaming path (LangGraph's protocol-v2 runs) drives `_stream` too
        parent = getattr(super(), "_should_use_protocol_streaming", None)
        return self._streams(run_manager, kwargs) and parent is not None and parent(
            async_api=async_api, run_manager=run_manager, **kwargs)

    @staticmethod
    def _chat(messages: list[BaseMessage]) -> list[ChatMessage]:
        def calls(m: BaseMessage) -> list[dict[str, Any]] | None:
            found = [{"id": c.get("id"), "name": c["name"], "arguments": c.get("args", {})}
                     for c in getattr(m, "tool_calls", None) or []]
            return found or None

        return [ChatMessage(_ROLES.get(m.type, "user"),
                            [_part(b) for b in ([m.content] if isinstance(m.content, str) else m.content)],
                            tool_calls=calls(m), tool_call_id=getattr(m, "tool_call_id", None))
                for m in messages]

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, *,
                call: str = "generate", max_new_tokens: int = 256, tools: list[dict[str, Any]] | None = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        """The backend's `stream`: each text piece one chunk, the token counts (and tool calls) a last empty chunk."""
        if call != "generate" or not supports(self.backend, "stream"):  # _should_stream keeps such calls whole
            raise ValueError(f"{self._identifying_params['model']} cannot stream a {call!r} call")
        extra = {"tools": tools} if tools else {}
        for item in self.backend.stream(self._chat(messages), max_new_tokens=max_new_tokens, **extra):
            if isinstance(item, VLMReply):
                usage = _usage(item)
                pieces = [{"name": c["name"], "id": c.get("id"), "index": i, "type": "tool_call_chunk",
                           "args": c["arguments"] if isinstance(c["arguments"], str) else json.dumps(c["arguments"])}
                          for i, c in enumerate(item.tool_calls)]
                if usage is not None or pieces:
                    yield ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=usage,
                                                                     tool_call_chunks=pieces))
                continue
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=str(item)))
            if run_manager is not None:  # langchain-core passes none where it reports the tokens itself
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, *,
                  call: str = "generate", max_new_tokens: int = 256, options: list[str] | None = None,
                  tools: list[dict[str, Any]] | None = None, **kwargs: Any) -> ChatResult:
        chat = self._chat(messages)
        if call == "generate":
            extra = {"tools": tools} if tools else {}
            reply = self.backend.generate(chat, max_new_tokens=max_new_tokens, **extra)
            return _result(reply.text, _usage(reply), reply.tool_calls)
        images = [image for message in chat for image in message.images]
        image = images[0] if len(images) == 1 else images or None
        text = "\n".join(message.text for message in chat)
        if call == "yes_probability":
            value = float(self.backend.yes_probability(image, text))
            return _result(f"p(yes) = {value:.4f}", p_yes=value)
        if call == "score_options":
            scores = [float(s) for s in self.backend.score_options(image, text, options)]
            return _result(", ".join(f"({chr(65 + i)}) {o}: {s:.4f}" for i, (o, s) in enumerate(zip(options, scores))),
                           scores=scores)
        raise ValueError(f"unknown VLM call {call!r}: use generate, yes_probability or score_options")


class ChatVLM:
    """The VLM protocol over `BackendChatModel`: one `invoke` per call; likelihood methods as the backend has them."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.name = getattr(backend, "name", type(backend).__name__)
        self.chat_model = BackendChatModel(backend=backend, metadata=self.describe())
        for capability in ("yes_probability", "score_options"):
            if supports(backend, capability):
                setattr(self, capability, getattr(self, f"_{capability}"))

    def describe(self) -> dict[str, Any]:
        describe = getattr(self.backend, "describe", None)
        return dict(describe()) if callable(describe) else {"name": self.name}

    def _invoke(self, name: str, messages: Sequence[ChatMessage], *, answer: bool = False, **kwargs: Any) -> AIMessage:
        return self.chat_model.invoke(to_langchain_messages(messages, _image_ref), vlm_run(name, answer=answer),
                                      **kwargs)

    @property
    def native_tools(self) -> bool:
        return supports(self.backend, "tools")

    def generate(self, messages: Sequence[ChatMessage], *, max_new_tokens: int = 256,
                 answer: bool = False, tools: list[dict[str, Any]] | None = None) -> VLMReply:
        """`answer=True`: the reply is the user's answer; it reaches LangGraph's `messages` stream, token by
        token when the backend streams (with `tools`: when it streams tool calls too)."""
        extra = {"tools": tools} if tools else {}
        return vlm_reply(self._invoke("vlm.generate", messages, answer=answer, max_new_tokens=max_new_tokens,
                                      **extra))

    def _yes_probability(self, image: Image.Image | Sequence[Image.Image] | None, prompt: str) -> float:
        reply = self._invoke("vlm.yes_probability", [ChatMessage("user", [*_images(image), prompt])],
                             call="yes_probability")
        return reply.response_metadata["p_yes"]

    def _score_options(self, image: Image.Image | Sequence[Image.Image] | None, question: str,
                       options: list[str]) -> list[float]:
        # TELL scores with its crops too: every image goes into the one message
        reply = self._invoke("vlm.score_options", [ChatMessage("user", [*_images(image), question])],
                             call="score_options", options=list(options))
        return reply.response_metadata["scores"]

    def __repr__(self) -> str:
        return f"ChatVLM({self.backend!r})"


def chat_vlm(vlm: Any) -> Any:
    """The agent's VLM for a backend: a LangChainVLM (already a chat model's invoke) as it is, else a ChatVLM."""
    return vlm if isinstance(vlm, (LangChainVLM, ChatVLM)) else ChatVLM(vlm)
