"""lookcloser as LangChain tools inside real agents (LangGraph's create_react_agent, langchain's create_agent)
driven by a scripted tool-calling chat model: the image from the conversation, a file in the allowed folder, a
refused path."""

from __future__ import annotations

import base64
import io
import json
from typing import Any, Callable

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
import pytest
from langgraph.prebuilt import create_react_agent
from PIL import Image, ImageDraw

from doubles import FixedLocalizer, ScriptedVLM
from lookcloser import Agent
from lookcloser.entrypoints.langchain_tools import lookcloser_tools

SIGN = (40, 30, 200, 90)

#: LangGraph's prebuilt agent (langchain 1.x's `create_agent` runs the same ToolNode, but needs a newer langchain-core
#: than the one pinned here).
pytestmark = pytest.mark.filterwarnings("ignore:create_react_agent has been moved")


def _create_agent(model: BaseChatModel, tools: list) -> Any:
    """langchain 1.x's agent (the `langchain` package: the `dev` extra installs it)."""
    from langchain.agents import create_agent

    return create_agent(model, tools)


#: Both agent builders users reach for: LangGraph's prebuilt ReAct agent and langchain 1.x's create_agent.
AGENT_BUILDERS = pytest.mark.parametrize("build_agent", [create_react_agent, _create_agent],
                                         ids=["create_react_agent", "create_agent"])


class ToolCallingModel(BaseChatModel):
    """Scripted: each reply is made by a function of the messages so far (a tool call, then an answer)."""

    replies: list[Callable[[list], AIMessage]]

    @property
    def _llm_type(self) -> str:
        return "scripted-tool-caller"

    def bind_tools(self, tools: Any, **kwargs: Any) -> "ToolCallingModel":
        return self

    def _generate(self, messages: list, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self.replies.pop(0)(messages))])


def _photo() -> Image.Image:
    image = Image.new("RGB", (320, 240), "white")
    ImageDraw.Draw(image).rectangle(SIGN, fill="red")
    return image


def _data_url(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _lookcloser() -> Agent:
    """SHOW names the sign, the localizer finds it, TELL answers only when it was shown the crop."""
    def vlm(prompt: str, images: list) -> str:
        if "Additional visual information" not in prompt:
            return json.dumps({"answer": None, "missing": [{"name": "the red sign", "kind": "object"}]})
        return "The sign is red." if len(images) == 2 else "I cannot tell."

    return Agent(vlm=ScriptedVLM(vlm), tools={"localizer": FixedLocalizer({"the red sign": SIGN})})


def _call(name: str, **args: Any) -> Callable[[list], AIMessage]:
    return lambda messages: AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": "call-1"}])


def _answer_from_tool(messages: list) -> AIMessage:
    result = next(m for m in reversed(messages) if isinstance(m, ToolMessage))
    return AIMessage(content=f"tool said: {result.content}")


@AGENT_BUILDERS
def test_the_tool_answers_about_the_image_the_user_sent(build_agent, tmp_path):
    model = ToolCallingModel(replies=[_call("look_closer", question="What colour is the sign?"), _answer_from_tool])
    assistant = build_agent(model, lookcloser_tools(_lookcloser()))
    out = assistant.invoke({"messages": [HumanMessage(content=[
        {"type": "text", "text": "What colour is the sign in this photo?"},
        {"type": "image_url", "image_url": {"url": _data_url(_photo())}}])]})
    tool_message = next(m for m in out["messages"] if isinstance(m, ToolMessage))
    result = json.loads(tool_message.content)
    assert result["answer"] == "The sign is red."
    [finding] = result["findings"]
    assert finding["status"] == "found" and finding["box"] == list(SIGN)
    assert out["messages"][-1].content.startswith("tool said:")


@AGENT_BUILDERS
def test_files_only_inside_the_allowed_folder(build_agent, tmp_path):
    _photo().save(tmp_path / "shelf.png")
    model = ToolCallingModel(replies=[_call("find_in_image", target="the red sign", image="shelf.png"),
                                      _call("find_in_image", target="the red sign", image="/etc/hostname"),
                                      _answer_from_tool])
    assistant = build_agent(model, lookcloser_tools(_lookcloser(), image_dir=str(tmp_path)))
    out = assistant.invoke({"messages": [HumanMessage(content="Where is the red sign in shelf.png?")]})
    found, refused = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert json.loads(found.content)["findings"][0]["box"] == list(SIGN)
    assert refused.status == "error" and "outside the allowed image_dir" in refused.content
    assert "\n" not in refused.content


@AGENT_BUILDERS
def test_no_image_anywhere_is_a_message_the_model_can_act_on(build_agent):
    model = ToolCallingModel(replies=[_call("look_closer", question="What is it?"), _answer_from_tool])
    assistant = build_agent(model, lookcloser_tools(_lookcloser()))
    out = assistant.invoke({"messages": [HumanMessage(content="What is in the picture?")]})
    tool_message = next(m for m in out["messages"] if isinstance(m, ToolMessage))
    assert tool_message.status == "error" and "no image: pass `image`" in tool_message.content
