"""LangChainVLM with a langchain_core fake chat model that records what it received."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from PIL import Image

from doubles import RecordingChatModel
from lookcloser.core.errors import VLMError
from lookcloser.vlm import ChatMessage, LangChainVLM, supports


class FailingChatModel(GenericFakeChatModel):
    def _generate(self, messages, stop=None, run_manager=None, **kwargs: Any):
        raise RuntimeError("rate limited\nsecond line")


def _reply(text):
    return AIMessage(content=text, usage_metadata={"input_tokens": 11, "output_tokens": 2, "total_tokens": 13})


def test_messages_carry_image_blocks_and_text():
    model = RecordingChatModel(messages=iter([_reply("  It is red.  ")]), received=[])
    vlm = LangChainVLM(model)
    image = Image.new("RGB", (64, 48), (255, 0, 0))
    reply = vlm.generate([ChatMessage("system", ["Be brief."]), ChatMessage("user", [image, "What color?"])])
    assert reply.text == "It is red."
    assert (reply.input_tokens, reply.output_tokens) == (11, 2)

    (messages,) = model.received
    assert isinstance(messages[0], SystemMessage) and messages[0].content == "Be brief."
    assert isinstance(messages[1], HumanMessage)
    image_block, text_block = messages[1].content
    assert text_block == {"type": "text", "text": "What color?"}
    assert image_block["type"] == "image_url"
    url = image_block["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")  # the default: JPEG quality 95, 4:4:4
    decoded = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert decoded.size == (64, 48)
    assert all(abs(a - b) <= 2 for a, b in zip(decoded.convert("RGB").getpixel((1, 1)), (255, 0, 0)))


def test_assistant_turns_and_text_only():
    model = RecordingChatModel(messages=iter(["ok"]), received=[])
    vlm = LangChainVLM(model)
    vlm.generate([ChatMessage("user", ["a"]), ChatMessage("assistant", ["b"]), ChatMessage("user", ["c"])])
    kinds = [type(m) for m in model.received[0]]
    assert kinds == [HumanMessage, AIMessage, HumanMessage]
    assert [m.content for m in model.received[0]] == ["a", "b", "c"]


def test_describe_name_and_capabilities():
    vlm = LangChainVLM(GenericFakeChatModel(messages=iter([])))
    assert vlm.name.startswith("langchain:GenericFakeChatModel")
    assert vlm.describe()["backend"] == "langchain"
    assert not supports(vlm, "yes_probability")


def test_model_errors_become_vlm_errors():
    vlm = LangChainVLM(FailingChatModel(messages=iter([])))
    with pytest.raises(VLMError, match="rate limited") as info:
        vlm.generate([ChatMessage("user", ["hi"])])
    assert "\n" not in str(info.value)


def test_rejects_non_chat_models():
    with pytest.raises(TypeError, match="BaseChatModel"):
        LangChainVLM(object())


def test_box_format_and_the_size_the_model_receives():
    model = RecordingChatModel(messages=iter([_reply("[]")]), received=[])
    vlm = LangChainVLM(model, max_image_side=1000, box_format="qwen2_5_vl")
    assert vlm.box_format == "qwen2_5_vl" and vlm.describe()["box_format"] == "qwen2_5_vl"
    assert vlm.sent_image_size((4000, 3000)) == (1008, 756)  # shrunk to 1000 px, then on Qwen2.5-VL's grid
    assert LangChainVLM(model, max_image_side=1000).sent_image_size((4000, 3000)) == (1000, 750)
    with pytest.raises(ValueError, match="unknown box_format"):
        LangChainVLM(model, box_format="xyxy")
