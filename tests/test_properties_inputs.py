"""Property tests at the public input boundaries (hypothesis): whatever a caller sends, what a user is promised
holds: only a LookCloserError escapes, its message is one line, nothing hangs (each example has a deadline),
and no finding is lost. Derandomized, so CI runs the same examples every time."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from lookcloser import Agent
from lookcloser.core.errors import LookCloserError
from tests.doubles import FixedLocalizer, ScriptedVLM

PROFILE = settings(max_examples=int(__import__("os").environ.get("LOOKCLOSER_HYPOTHESIS_EXAMPLES", 100)), deadline=3000, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _one_line(exc: BaseException) -> None:
    assert isinstance(exc, LookCloserError), f"{type(exc).__name__}: {exc}"
    assert str(exc).strip() and "\n" not in str(exc), repr(str(exc))


def _encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------ images
MODES = ["1", "L", "P", "RGB", "RGBA", "CMYK", "I", "F", "LA", "I;16", "YCbCr", "HSV"]
pil_images = st.builds(lambda mode, w, h: Image.new(mode, (w, h)), st.sampled_from(MODES),
                       st.integers(0, 40), st.integers(0, 40))
arrays = st.one_of(
    st.builds(lambda shape, dtype: np.zeros(shape, dtype=dtype),
              st.lists(st.integers(0, 6), min_size=0, max_size=4).map(tuple),
              st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.int64, np.bool_, np.complex64])),
    st.builds(lambda v: np.full((4, 4, 3), v), st.sampled_from([np.nan, np.inf, -1.0, 1e9, 0.5])),
)
encoded = st.builds(_encoded, st.builds(lambda w, h: Image.new("RGB", (w, h), (9, 99, 199)),
                                        st.integers(1, 30), st.integers(1, 30)),
                    st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PDF", "ICO"]))
cut_bytes = st.builds(lambda data, at: data[:at], encoded, st.integers(0, 200))
image_inputs = st.one_of(pil_images, arrays, encoded, cut_bytes, st.binary(max_size=300),
                         st.text(max_size=120), st.text(max_size=40).map(lambda t: "data:image/png;base64," + t),
                         st.none(), st.integers(), st.floats(), st.lists(st.integers(), max_size=3),
                         st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))


@PROFILE
@given(image_inputs)
def test_any_image_input_is_an_rgb_image_or_one_line(source):
    from lookcloser.imaging.load import load_image  # noqa: PLC0415

    try:
        image = load_image(source, max_pixels=10_000)
    except Exception as exc:  # noqa: BLE001 - the property: which exceptions escape
        _one_line(exc)
        return
    assert image.mode == "RGB" and image.width >= 1 and image.height >= 1


# ----------------------------------------------------------------------------------------- options
option_values = st.one_of(st.text(max_size=12), st.none(), st.integers(), st.floats(), st.booleans(),
                          st.lists(st.text(max_size=3), max_size=2))


@PROFILE
@given(st.one_of(st.none(), st.text(max_size=20), st.lists(option_values, max_size=30),
                 st.tuples(option_values, option_values), st.dictionaries(st.text(max_size=3), st.integers())))
def test_any_options_are_distinct_strings_or_one_line(options):
    from lookcloser.graphs.nodes import check_options  # noqa: PLC0415

    try:
        checked = check_options(options)
    except Exception as exc:  # noqa: BLE001
        _one_line(exc)
        return
    assert checked is None or (2 <= len(checked) <= 26 and all(isinstance(o, str) and o for o in checked)
                               and len({o.casefold() for o in checked}) == len(checked))


# ------------------------------------------------------------------------------------- chat messages
parts = st.one_of(
    st.text(max_size=20),
    st.fixed_dictionaries({"type": st.just("text"), "text": st.one_of(st.text(max_size=20), st.integers())}),
    st.fixed_dictionaries({"type": st.just("image_url"), "image_url": st.one_of(
        st.text(max_size=20), st.fixed_dictionaries({"url": st.text(max_size=30)}), st.none())}),
    st.fixed_dictionaries({"type": st.just("image"), "data": st.text(max_size=30),
                           "mimeType": st.sampled_from(["image/png", "text/plain", ""])}),
    st.dictionaries(st.sampled_from(["type", "text", "url", "base64"]), st.text(max_size=10), max_size=3),
)
messages = st.lists(st.one_of(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "tool"]),
                           "content": st.one_of(st.text(max_size=30), st.lists(parts, max_size=4))}),
    st.fixed_dictionaries({"type": st.sampled_from(["human", "ai"]), "content": st.text(max_size=20)})),
    min_size=0, max_size=4)


@pytest.fixture(scope="module")
def agent():
    """The real graph, a scripted VLM that answers at once, the whole-image localizer."""
    return Agent(vlm=ScriptedVLM(lambda text, images: '{"answer": "ok", "missing": []}'),
                 tools={"localizer": "whole_image"})


@PROFILE
@given(messages)
def test_any_chat_input_answers_or_is_one_line(agent, chat):
    from langchain_core.messages import convert_to_messages  # noqa: PLC0415

    try:
        converted = convert_to_messages(chat)
    except Exception:  # noqa: BLE001 - not a chat message at all: LangGraph refuses it before lookcloser sees it
        return
    try:
        out = agent.graph.invoke({"messages": converted}, context=agent.context)
    except Exception as exc:  # noqa: BLE001
        _one_line(exc)
        return
    assert out["answer"] == "ok" and out["messages"][-1].content == "ok"


# ------------------------------------------------------------------------------ tool arguments (doors)
arguments = st.dictionaries(
    st.sampled_from(["image", "question", "options", "option", "max_targets", "target", "kind", "max_target", "x"]),
    st.one_of(st.text(max_size=20), st.integers(-3, 100), st.floats(allow_nan=True), st.none(), st.booleans(),
              st.lists(st.text(max_size=8), max_size=3)), max_size=5)


@PROFILE
@given(st.sampled_from(["ask", "find", "read_text"]), arguments)
def test_any_mcp_arguments_are_accepted_exactly_or_refused_in_one_line(agent, name, args):
    pytest.importorskip("mcp")
    from lookcloser.entrypoints.mcp_server import argument_problem, build_server  # noqa: PLC0415

    server = _mcp(agent, build_server)
    problem = argument_problem(server, name, args)
    if problem is None:  # the tool would run with exactly these arguments: each one known and well typed
        known = set(server._tool_manager.get_tool(name).fn_metadata.arg_model.model_fields)
        assert set(args) <= known
    else:
        assert "\n" not in problem and problem.strip() and "pydantic.dev" not in problem


_SERVERS: dict[int, object] = {}


def _mcp(agent, build):
    return _SERVERS.setdefault(id(agent), build(agent))


@PROFILE
@given(st.sampled_from([0, 1]), arguments)
def test_any_langchain_tool_arguments_answer_or_say_why_in_one_line(agent, which, args):
    from lookcloser.entrypoints.langchain_tools import lookcloser_tools  # noqa: PLC0415

    tool = lookcloser_tools(agent)[which]
    out = tool.invoke(args)  # never raises: a bad call is the tool's one-line answer
    if isinstance(out, str):
        assert "\n" not in out and out.strip(), out
    else:
        assert set(out) >= {"findings"}


# ------------------------------------------------------------------------------------ no finding lost
@PROFILE
@given(st.lists(st.from_regex(r"[a-h]{1,6}( [a-h]{1,6})?", fullmatch=True), min_size=1, max_size=6, unique=True))
def test_every_target_the_vlm_names_has_its_finding(names):
    found = {name: (1, 1, 9, 9) for name in names[::2]}  # half are found, half are not
    reply = json.dumps({"answer": None, "missing": [{"name": n, "kind": "object"} for n in names]})
    vlm = ScriptedVLM(lambda text, images: reply if "Additional visual" not in text else "done")
    agent = Agent(vlm=vlm, tools={"localizer": FixedLocalizer(found)})
    answer = agent.run(Image.new("RGB", (32, 32)), "Where?")
    kept = names[: agent.config.max_targets]
    assert [f.target.name for f in answer.findings] == kept
    assert [f.status for f in answer.findings] == ["found" if n in found else "not_found" for n in kept]
    assert any("past max_targets" in n for n in answer.notes) == (len(names) > agent.config.max_targets)


# ---------------------------------------------------------------------------------------- dataset rows
cells = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)


@PROFILE
@given(st.lists(st.lists(cells, min_size=0, max_size=10), min_size=0, max_size=6), st.booleans())
def test_any_tsv_is_items_or_one_line(tmp_path_factory, rows, with_header):
    from lookcloser.eval.datasets import load_items  # noqa: PLC0415

    header = ["index", "question", "A", "B", "C", "D", "answer", "category", "image"] if with_header else []
    text = "\n".join("\t".join(row) for row in ([header] if header else []) + rows)
    path = tmp_path_factory.mktemp("tsv") / "data.tsv"
    path.write_text(text, encoding="utf-8")
    _items_or_one_line(path)


@PROFILE
@given(st.lists(st.one_of(
    st.dictionaries(st.sampled_from(["id", "image", "question", "options", "answer", "category", "target"]),
                    st.one_of(st.text(max_size=10), st.integers(), st.none(), st.lists(st.text(max_size=5), max_size=4)),
                    max_size=7),
    st.text(max_size=20), st.integers()), max_size=5))
def test_any_jsonl_is_items_or_one_line(tmp_path_factory, records):
    path = tmp_path_factory.mktemp("jsonl") / "data.jsonl"
    path.write_text("\n".join(json.dumps(r) if not isinstance(r, str) else r for r in records), encoding="utf-8")
    _items_or_one_line(path)


def _items_or_one_line(path: Path) -> None:
    from lookcloser.eval.datasets import load_items  # noqa: PLC0415

    try:
        items = load_items(path)
    except Exception as exc:  # noqa: BLE001
        _one_line(exc)
        return
    assert items
    for item in items:
        assert item.error is None or ("\n" not in item.error and item.error.strip()), item.error
