"""The third reliability probe's cases (issue 30), each at the door a user hits: the Python API, a LangGraph
ToolNode with the LangChain tools, a served run's context, the eval readers. Every case is one LookCloserError
line (or the tool's one-line answer), never a traceback, and nothing is ignored in silence."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage
from PIL import Image
from typer.testing import CliRunner

from lookcloser import Agent
from lookcloser.core.errors import ImageError, InputError, LookCloserError, SettingsError
from lookcloser.entrypoints.cli import app
from lookcloser.entrypoints.langchain_tools import lookcloser_tools
from lookcloser.runtime.context import Context
from tests.doubles import ScriptedVLM


def _agent(*replies: str) -> Agent:
    return Agent(vlm=ScriptedVLM(list(replies) or ['{"answer": "red", "missing": []}']),
                 tools={"localizer": "whole_image"})


def _tool_message(tools: list, call: AIMessage):
    """The one ToolMessage a LangGraph ToolNode answers `call` with, inside a graph (as an agent runs it)."""
    from langgraph.graph import END, START, MessagesState, StateGraph  # noqa: PLC0415
    from langgraph.prebuilt import ToolNode  # noqa: PLC0415

    builder = StateGraph(MessagesState)
    builder.add_node("tools", ToolNode(tools))
    builder.add_edge(START, "tools")
    builder.add_edge("tools", END)
    return builder.compile().invoke({"messages": [call]})["messages"][-1]


def _jpeg(size=(200, 150)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


# ------------------------------------------------------------------------------------- 1. a NUL byte
def test_a_nul_byte_in_an_image_path_is_an_image_error():
    with pytest.raises(ImageError, match=r"image file path 'a\\x00b.png' contains a NUL byte"):
        _agent().run("a\x00b.png", "What colour?")


def test_a_nul_byte_in_a_tool_call_is_the_tools_answer_not_a_dead_graph():
    call = AIMessage(content="", tool_calls=[{"name": "look_closer", "id": "c1", "type": "tool_call",
                                              "args": {"question": "q?", "image": "a\x00b.png"}}])
    message = _tool_message(lookcloser_tools(_agent(), image_dir="/tmp"), call)
    assert message.status == "error" and "contains a NUL byte" in message.content and "\n" not in message.content


# ------------------------------------------------------------------------------- 2. PIL images passed in
def test_a_lazily_opened_truncated_image_is_an_image_error(tmp_path):
    import numpy as np  # noqa: PLC0415

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)).save(buffer, "JPEG")
    data = buffer.getvalue()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) * 3 // 4])  # the header whole, the pixels cut
    with pytest.raises(ImageError, match="the PIL image cannot be read: OSError: (image file is truncated|Truncated)"):
        _agent().run(Image.open(tmp_path / "cut.jpg"), "What colour?")


def test_a_closed_image_is_an_image_error():
    image = Image.open(io.BytesIO(_jpeg()))
    image.close()
    with pytest.raises(ImageError, match="the PIL image cannot be read: it was closed"):
        _agent().run(image, "What colour?")


# ------------------------------------------------------------------------------ 7. the frame the note names
def test_a_pil_image_seeked_to_frame_3_is_used_and_said_so():
    frames = [Image.new("RGB", (40, 30), (80 * i, 0, 0)) for i in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    gif = Image.open(io.BytesIO(buffer.getvalue()))
    gif.seek(2)
    vlm = ScriptedVLM(lambda text, images: f'{{"answer": "{images[0].getpixel((5, 5))[0]}", "missing": []}}')
    answer = Agent(vlm=vlm, tools={"localizer": "whole_image"}).run(gif, "How red?")
    assert answer.text == "160"  # the third frame's pixels reached the VLM
    assert "the image has 3 frames or pages; frame 3 (the one the image was at) was used" in answer.notes


# ------------------------------------------------------------------------------------------ 6. options
@pytest.mark.parametrize("options, says", [
    ([1, 2], "options must be strings, got int '1' among them"),
    ([None, "x"], "options must be strings, got NoneType 'None' among them"),
    (["red", "Red "], "options A and B are the same ('Red')"),
    ((o for o in "ab"), "options must be a list of strings, got generator"),
    ({"a": 1, "b": 2}, "options must be a list of strings, got dict"),
    ("ab", "options must be a list of strings, not a single string"),
])
def test_options_that_cannot_be_chosen_between_are_refused(options, says):
    with pytest.raises(InputError) as refused:
        _agent().run(Image.new("RGB", (32, 32)), "Which?", options=options)
    assert str(refused.value).startswith(says.split(" got")[0]) and says in str(refused.value)


# ----------------------------------------------------------------------------------------- 9. wording
def test_garbage_that_is_no_path_is_not_called_a_file_path():
    from lookcloser.core.config import AgentConfig  # noqa: PLC0415
    from lookcloser.imaging.refs import resolve_image  # noqa: PLC0415

    with pytest.raises(ImageError) as refused:
        resolve_image("not base64 at all!!", AgentConfig())
    assert "looks like a file path" not in str(refused.value)
    assert "is neither a data URL nor base64 image data" in str(refused.value)


# ------------------------------------------------------------------------- 3. unknown names at every door
def test_a_misspelt_langchain_tool_argument_is_refused_with_the_closest_name():
    vlm = ScriptedVLM([])
    tools = lookcloser_tools(Agent(vlm=vlm, tools={"localizer": "whole_image"}))
    image = "data:image/jpeg;base64," + base64.b64encode(_jpeg()).decode()
    call = AIMessage(content="", tool_calls=[{"name": "look_closer", "id": "c1", "type": "tool_call", "args": {
        "question": "Which?", "image": image, "option": ["red", "blue"]}}])
    message = _tool_message(tools, call)
    assert message.content.startswith("look_closer: unknown argument 'option'; did you mean 'options'?")
    assert vlm.calls == []  # nothing was asked


def test_a_misspelt_context_key_is_refused_with_the_closest_name():
    with pytest.raises(SettingsError, match=r"unknown context key 'tool'; did you mean 'tools'\?"):
        Context(**{"tool": {"localizer": "whole_image"}})
    with pytest.raises(SettingsError, match=r"'max_target'; did you mean 'max_targets'\?"):
        Context(config={"max_target": 2})


# ----------------------------------------------------------------------------------------- 8. eval readers
HEADER = "index\tquestion\tA\tB\tC\tD\tanswer\tcategory\timage"


def _tsv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def _image_cell() -> str:
    return base64.b64encode(_jpeg((64, 48))).decode()


def test_a_huge_one_line_tsv_is_refused_quoting_a_few_characters(tmp_path):
    from lookcloser.eval.datasets import DatasetError, load_items  # noqa: PLC0415

    path = tmp_path / "one_line.tsv"
    path.write_text("x" * 5_000_000, encoding="utf-8")
    with pytest.raises(DatasetError) as refused:
        load_items(path)
    assert "its first line is longer than 65,536 characters" in str(refused.value)
    assert len(str(refused.value)) < 300


def test_a_stray_quote_that_swallows_rows_is_said(tmp_path):
    from lookcloser.eval.datasets import load_items  # noqa: PLC0415

    image = _image_cell()
    path = _tsv(tmp_path / "hr.tsv", [f'1\tq1?\t"a\tb\tc\td\tA\tsingle\t{image}',
                                      f"2\tq2?\ta\tb\tc\td\tB\tsingle\t{image}",
                                      f'3\tq3?\ta"\tb\tc\td\tB\tsingle\t{image}',
                                      f"4\tq4?\ta\tb\tc\td\tB\tsingle\t{image}"])
    items = load_items(path)
    assert [item.id for item in items] == ["1", "4"]  # as pandas' read_csv reads it: rows 2 and 3 are inside 1
    assert "the rows on lines 3-4 were read into it" in items[0].error and items[1].error is None


@pytest.mark.parametrize("name, content", [("empty.json", ""), ("header_only.tsv", HEADER + "\n"),
                                           ("empty.jsonl", "\n\n")])
def test_an_empty_dataset_exits_2_saying_nothing_was_measured(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    result = CliRunner().invoke(app, ["eval", str(path), "--vlm", "openai:x@http://127.0.0.1:9/v1",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "holds no items, so nothing would be measured" in result.output


def test_every_case_is_a_lookcloser_error():
    assert issubclass(ImageError, LookCloserError) and issubclass(InputError, LookCloserError)
