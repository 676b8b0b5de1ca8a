"""lookcloser as an MCP server (`lookcloser mcp`): "look closer at this image" for any MCP client.

    lookcloser mcp --vlm openai:qwen2.5-vl-7b@http://gpu:8000/v1 --image-dir ~/photos             # stdio
    lookcloser mcp --vlm ... --image-dir ~/photos --port 8765                 # streamable HTTP at /mcp

Three tools share one `Agent` (its models load once), built from the operator's settings as `lookcloser
ask` builds it: `ask` (image, question, options, max_targets → answer, choice, findings), `find` (image,
target, kind → findings) and `read_text` (image → lines with boxes). Findings are `ask --json`'s
(`Finding.to_json()`), boxes in the image's pixels; each tool has an output schema and returns
structured content (plus the same JSON as text, for clients that read only text).

The image argument is a data URL or base64, or a file path inside a folder the operator named
(`--image-dir`, repeatable; none: no file paths at all), checked by `lookcloser.imaging.refs` as for a
served graph: symlinks are resolved first, pipes and devices refused without being opened. A bad
argument or a failing model or endpoint is the tool's error result (isError), one line; the server
goes on. Agent work runs in a worker thread, so the server answers other requests meanwhile.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Annotated, Any, Callable, Literal, Sequence

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lookcloser.agent import Agent
from lookcloser.core.arguments import one_line, unknown_names
from lookcloser.core.deadline import cancellable
from lookcloser.core.errors import LookCloserError
from lookcloser.imaging.refs import Access, resolve_image

__all__ = ["AskResult", "FindResult", "FindingJSON", "ReadTextResult", "TextLine", "argument_problem", "build_server",
           "serve"]

INSTRUCTIONS = ("Tools for questions about small details in large images (signs, labels, prices, small objects): "
                "lookcloser searches the image at full resolution where the question needs it. `ask` answers a "
                "question; `find` locates something; `read_text` reads every line of text.")

IMAGE_HELP = ("The image: a data URL (data:image/jpeg;base64,...), plain base64, or a file path inside a folder this "
              "server may read (the operator's --image-dir).")

#: The endpoint path of the streamable HTTP transport.
HTTP_PATH = "/mcp"


class FindingJSON(BaseModel):
    """One finding, as `lookcloser ask --json` prints it (`Finding.to_json()`)."""

    model_config = ConfigDict(extra="forbid")  # a key added to to_json() must be added here too

    name: str = Field(description="The target looked for.")
    kind: Literal["object", "text"]
    status: Literal["found", "not_found", "failed"]
    box: list[float] | None = Field(description="[x1, y1, x2, y2] in the image's pixels; null when not found.")
    score: float | None = Field(description="The tool's confidence, 0-1.")
    text: str | None = Field(description="The text read (text targets).")
    tool: str = Field(description="The tool (and route) that produced it, e.g. 'vstar'.")
    error: str | None = Field(description="Why it failed (status 'failed').")
    mask_area: int | None = Field(description="Pixels of the segmentation mask, when a segmenter ran.")


class AskResult(BaseModel):
    answer: str | None = Field(description="The answer to the question.")
    choice: int | None = Field(description="With options: the index of the option chosen (0 = the first).")
    findings: list[FindingJSON] = Field(description="What the search found, with boxes in the image's pixels.")


class FindResult(BaseModel):
    findings: list[FindingJSON]


class TextLine(BaseModel):
    text: str
    box: list[float] = Field(description="[x1, y1, x2, y2] in the image's pixels.")
    score: float | None = Field(description="The reader's confidence, 0-1.")


class ReadTextResult(BaseModel):
    lines: list[TextLine] = Field(description="Every line of text read, top to bottom.")


class _StrictServer(MCPServer):
    """MCPServer whose tools refuse what they do not know: an unknown or misspelt argument (the closest valid name
    said), a value of the wrong type, each as the tool's one-line error, before the SDK's own reading (which would
    drop unknown names and answer a wrong type with pydantic's several-line report)."""

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        problem = argument_problem(self, name, arguments)
        if problem is not None:
            raise ToolError(problem)
        return await super().call_tool(name, arguments, context)


def argument_problem(server: MCPServer, name: str, arguments: Any) -> str | None:
    """What is wrong with a call's arguments, in one line naming the tool and the argument, or None. A tool this
    server does not have is left to the SDK (it says so)."""
    tool = server._tool_manager.get_tool(name)
    if tool is None:
        return None
    if not isinstance(arguments, dict):
        return f"{name}: the arguments must be a JSON object, got {type(arguments).__name__}"
    model = tool.fn_metadata.arg_model
    known = list(model.model_fields)
    problem = unknown_names(arguments, known)
    if problem is None:
        try:
            model.model_validate(tool.fn_metadata.pre_parse_json(arguments))
        except ValidationError as exc:
            problem = one_line(exc, known=known)
    return None if problem is None else f"{name}: {problem}"


def build_server(agent: Agent, image_dirs: Sequence[str | Path] = ()) -> MCPServer:
    """The MCP server: ask, find and read_text on `agent`, file paths read only inside `image_dirs`."""
    folders = tuple(str(Path(folder).expanduser().resolve()) for folder in image_dirs)
    access = Access(folders=folders, what="the tool argument 'image'",
                    setting="the folders the server's operator named with --image-dir (none were named)")
    server = _StrictServer("lookcloser", instructions=INSTRUCTIONS, version=_version())

    async def in_thread(work: Callable[[], Any]) -> Any:
        """Agent work on a worker thread (the event loop keeps serving); a LookCloserError as the tool's one-line error.
        A call the client abandons (it cancelled it, or went away) ends the work's time at once, so no more VLM
        calls go out for it (`lookcloser.core.deadline.cancellable`)."""
        abandoned = threading.Event()

        def run() -> Any:
            with cancellable(abandoned):
                return work()

        try:
            return await asyncio.to_thread(run)
        except asyncio.CancelledError:
            abandoned.set()
            raise
        except (LookCloserError, ValueError) as exc:  # ValueError: e.g. pydantic's check of a setting
            raise ToolError(" ".join(str(exc).split()) or type(exc).__name__) from None

    def picture(reference: str) -> Any:
        return resolve_image(reference, agent.config, access)

    @server.tool(title="Ask about a detail of an image")
    async def ask(
        image: Annotated[str, Field(description=IMAGE_HELP)],
        question: Annotated[str, Field(description="What to find out about a small detail of the image.")],
        options: Annotated[list[str] | None, Field(description="Answer options of a multiple-choice question.")] = None,
        max_targets: Annotated[int | None, Field(ge=1, le=64, description=(
            "At most this many things to search for (at most the server's own limit)."))] = None,
    ) -> AskResult:
        """Answer a question about a small detail of a large image (a sign, a label, a price, a small object):
        looks at the image, searches it at full resolution where needed, answers from what it found."""
        runner = agent
        if max_targets is not None and max_targets != agent.config.max_targets:
            if max_targets > agent.config.max_targets:
                raise ToolError(f"max_targets {max_targets} is over this server's limit of "
                                f"{agent.config.max_targets}; ask for {agent.config.max_targets} or fewer")
            runner = agent.with_config(max_targets=max_targets)
        answer = await in_thread(lambda: runner.run(picture(image), question, options))
        return AskResult.model_validate({"answer": answer.text, "choice": answer.choice,
                                         "findings": [f.to_json() for f in answer.findings]})

    @server.tool(title="Find something in an image")
    async def find(
        image: Annotated[str, Field(description=IMAGE_HELP)],
        target: Annotated[str, Field(description="What to look for, e.g. 'the red sign', or the text to find.")],
        kind: Annotated[Literal["object", "text"], Field(description=(
            "'object': the thing named; 'text': lines of text (those matching a quoted target first)."))] = "object",
    ) -> FindResult:
        """Find something in a large image: where it is (boxes in the image's pixels, scores) and, for text,
        what it says. No question is answered: only the search runs."""
        findings = await in_thread(lambda: agent.find(picture(image), target, kind=kind))
        _raise_failed(findings)
        return FindResult.model_validate({"findings": [f.to_json() for f in findings]})

    @server.tool(title="Read the text in an image")
    async def read_text(image: Annotated[str, Field(description=IMAGE_HELP)]) -> ReadTextResult:
        """Read every line of text in an image, small print included, each with its box in the image's pixels."""
        findings = await in_thread(lambda: agent.find(picture(image), "text", kind="text"))
        _raise_failed(findings)
        lines = [{"text": f.text, "box": f.box.to_list(), "score": None if f.score is None else round(f.score, 4)}
                 for f in findings if f.status == "found" and f.text and f.box is not None]
        lines.sort(key=lambda line: (line["box"][1], line["box"][0]))
        return ReadTextResult.model_validate({"lines": lines})

    for tool in server._tool_manager.list_tools():  # the schemas say it too: no other arguments
        tool.parameters["additionalProperties"] = False
    return server


def _version() -> str:
    from lookcloser import __version__  # noqa: PLC0415

    return __version__


def _raise_failed(findings: list) -> None:
    """Every finding failed (a model that cannot load, a search that timed out): the tool's error, not an empty result."""
    failed = [f for f in findings if f.status == "failed"]
    if findings and len(failed) == len(findings):
        raise ToolError(" ".join((failed[0].error or "the search failed").split()))


def serve(agent: Agent, image_dirs: Sequence[str | Path] = (), *, port: int | None = None,
          host: str = "127.0.0.1") -> None:
    """Run the server until the client closes stdio (the default) or, with `port`, serve streamable HTTP
    at http://HOST:PORT/mcp until interrupted."""
    server = build_server(agent, image_dirs)
    if port is None:
        server.run("stdio")
    else:
        server.run("streamable-http", host=host, port=port, streamable_http_path=HTTP_PATH)

