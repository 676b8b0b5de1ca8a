"""lookcloser as tools for your own LangChain / LangGraph agent: "look closer at this image" as one call.

    from langgraph.prebuilt import create_react_agent
    from lookcloser import Agent
    from lookcloser.entrypoints.langchain_tools import lookcloser_tools

    tools = lookcloser_tools(Agent(vlm="openai:qwen2.5-vl-7b@http://gpu:8000/v1"), image_dir="/srv/photos")
    assistant = create_react_agent(chat_model, tools)

Two tools share one `Agent` (its models load once): `look_closer` (question, optional options → answer,
choice, findings) and `find_in_image` (target → boxes, scores, read text). The image argument is a data URL
or base64, a file name inside `image_dir` (nothing outside it is read; no `image_dir`: no files at all), or
left out: the last image a user sent in the conversation (the agent's `messages` state, injected by
LangGraph's ToolNode, never shown to the model). Findings come back as `ask --json` gives them
(`Finding.to_json()`), boxes in the image's pixels. A bad argument is the tool's error message, in one line, which the calling model can read.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from langchain_core.tools import BaseTool, ToolException
from langgraph.prebuilt import InjectedState
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lookcloser.agent import Agent
from lookcloser.core.arguments import one_line
from lookcloser.core.config import AgentConfig
from lookcloser.core.errors import LookCloserError
from lookcloser.graphs.nodes import image_in_messages
from lookcloser.imaging.refs import resolve_image

__all__ = ["FindInImage", "LookCloser", "lookcloser_tools"]

IMAGE_HELP = ("The image: a data URL (data:image/jpeg;base64,...), a file name in the allowed folder, or leave it "
              "out to use the last image the user sent.")


class _AskArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt argument is refused, not dropped

    question: str = Field(description="What to find out about a small detail of the image.")
    image: str | None = Field(None, description=IMAGE_HELP)
    options: list[str] | None = Field(None, description="Answer options for a multiple-choice question.")
    state: Annotated[dict, InjectedState] = Field(default_factory=dict)


class _FindArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: str = Field(description="What to look for, e.g. 'the red sign' or 'text' for every line of text.")
    kind: Literal["object", "text"] = Field("object", description="'text' reads every line of text with its box.")
    image: str | None = Field(None, description=IMAGE_HELP)
    state: Annotated[dict, InjectedState] = Field(default_factory=dict)


class _ImageTool(BaseTool):
    """What both tools share: the Agent and the folder files may be read from."""

    agent: Any
    image_dir: str | None = None
    handle_tool_error: bool = True  # a ToolException becomes the tool's answer: one line the model can act on

    def model_post_init(self, context: Any) -> None:
        """Bad arguments (a wrong type, an unknown or misspelt name) are the tool's answer too, in one line naming
        the argument (and the closest valid name), instead of pydantic's report."""
        super().model_post_init(context)
        known = [name for name in self.args_schema.model_fields if name != "state"]
        self.handle_validation_error = lambda exc: f"{self.name}: {_one_line(exc, known)}"

    def _image(self, image: str | None, state: dict) -> Any:
        reference = image or image_in_messages(state.get("messages") or [])
        if not reference:
            raise ToolException("no image: pass `image` (a data URL or a file name) or have the user send one")
        config = AgentConfig(image_dir=self.image_dir, max_pixels=self.agent.config.max_pixels)
        try:
            return resolve_image(reference, config)
        except LookCloserError as exc:
            raise ToolException(str(exc)) from None


class LookCloser(_ImageTool):
    name: str = "look_closer"
    description: str = ("Answer a question about a small detail of a large image (a sign, a label, a price, a "
                        "small object): looks at the image, searches where needed, answers from what it found.")
    args_schema: type[BaseModel] = _AskArgs

    def _run(self, question: str, image: str | None = None, options: list[str] | None = None,
             state: dict | None = None, **_: Any) -> dict[str, Any]:
        picture = self._image(image, state or {})
        try:
            answer = self.agent.run(picture, question, options)
        except LookCloserError as exc:
            raise ToolException(str(exc)) from None
        return {"answer": answer.text, "choice": answer.choice, "findings": [f.to_json() for f in answer.findings]}


class FindInImage(_ImageTool):
    name: str = "find_in_image"
    description: str = ("Find something in a large image and return where it is (boxes in pixels, scores), or read "
                        "every line of text with kind='text'.")
    args_schema: type[BaseModel] = _FindArgs

    def _run(self, target: str, kind: str = "object", image: str | None = None, state: dict | None = None,
             **_: Any) -> dict[str, Any]:
        picture = self._image(image, state or {})
        try:
            findings = self.agent.find(picture, target, kind=kind)
        except LookCloserError as exc:
            raise ToolException(str(exc)) from None
        return {"findings": [f.to_json() for f in findings]}


def _one_line(exc: Exception, known: list[str]) -> str:
    if isinstance(exc, ValidationError):
        return one_line(exc, known=known)
    return " ".join(str(exc).split())


def lookcloser_tools(agent: Agent | None = None, *, image_dir: str | None = None) -> list[BaseTool]:
    """`look_closer` and `find_in_image` sharing `agent` (default: `Agent()`); files only inside `image_dir`."""
    agent = agent if agent is not None else Agent()
    return [LookCloser(agent=agent, image_dir=image_dir), FindInImage(agent=agent, image_dir=image_dir)]
