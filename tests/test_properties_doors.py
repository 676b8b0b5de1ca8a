"""More property tests at the public doors (hypothesis; issue 30), beside tests/test_properties_inputs.py: PIL
images as a caller opens them (lazily, cut short, seeked to any frame, closed), any text as a path (lone
surrogates and control characters included), any served context, and any values into Agent.run / find / batch.
The promise: an RGB image, an answer, or one LookCloserError line of bounded length; never another exception.
Derandomized, so CI runs the same examples every time."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from lookcloser import Agent
from lookcloser.core.errors import LookCloserError
from tests.doubles import ScriptedVLM

PROFILE = settings(max_examples=int(os.environ.get("LOOKCLOSER_HYPOTHESIS_EXAMPLES", 100)), deadline=3000,
                   derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
any_char = st.characters(exclude_categories=())  # surrogates too: JSON can carry "\ud800"


def _one_line(exc: BaseException) -> None:
    assert isinstance(exc, LookCloserError), f"{type(exc).__name__}: {exc}"
    text = str(exc)
    assert text.strip() and "\n" not in text and len(text) < 600, repr(text)[:300]


def _encoded(mode: str, size: tuple[int, int], fmt: str, frames: int) -> bytes:
    if fmt == "JPEG" and mode in ("P", "RGBA", "1"):
        mode = "RGB"
    image = Image.new(mode, size)
    buffer = io.BytesIO()
    if frames > 1 and fmt in ("GIF", "PNG", "WEBP", "TIFF"):
        image.save(buffer, fmt, save_all=True, append_images=[Image.new(mode, size) for _ in range(frames - 1)])
    else:
        image.save(buffer, fmt)
    return buffer.getvalue()


encoded = st.builds(_encoded, st.sampled_from(["RGB", "L", "P", "RGBA", "1"]),
                    st.tuples(st.integers(1, 30), st.integers(1, 30)),
                    st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"]), st.integers(1, 3))


@PROFILE
@given(encoded, st.integers(0, 400), st.binary(max_size=8), st.integers(0, 3), st.booleans())
def test_a_pil_image_as_the_caller_opened_it_is_rgb_or_one_line(data, cut, junk, frame, close):
    """Image.open is lazy: the pixels of a cut file are read only when used, a closed image has none (item 2)."""
    from lookcloser.imaging.load import FRAME_KEY, load_image  # noqa: PLC0415

    try:
        image = Image.open(io.BytesIO(data[:cut] + junk if cut < len(data) else data))
        image.seek(min(frame, getattr(image, "n_frames", 1) - 1))
    except Exception:  # noqa: BLE001 - Pillow refused it before lookcloser saw it
        return
    at = image.tell()
    if close:
        image.close()
    try:
        loaded = load_image(image, max_pixels=10_000)
    except Exception as exc:  # noqa: BLE001 - the property: which exceptions escape
        _one_line(exc)
        return
    assert loaded.mode == "RGB" and not close
    assert loaded.info.get(FRAME_KEY, 0) == at  # the frame used is the one the note will name (item 7)


@PROFILE
@given(st.text(alphabet=any_char, max_size=40))
def test_any_text_as_a_path_is_read_or_one_line(text):
    from lookcloser.core.config import AgentConfig  # noqa: PLC0415
    from lookcloser.imaging.load import load_image  # noqa: PLC0415
    from lookcloser.imaging.refs import resolve_image  # noqa: PLC0415

    for call in (lambda: load_image(text or ".", max_pixels=10_000), lambda: load_image(Path(text or ".")),
                 lambda: resolve_image(text, AgentConfig()), lambda: resolve_image(text, AgentConfig(image_dir="."))):
        try:
            call()
        except Exception as exc:  # noqa: BLE001
            _one_line(exc)


values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(alphabet=any_char, max_size=8),
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                   max_size=3), max_leaves=8)
context_keys = st.sampled_from(["vlm", "tools", "tool", "tool_options", "config", "confg"]) | st.text(max_size=8)


@PROFILE
@given(st.dictionaries(context_keys, values, max_size=4))
def test_any_served_context_is_a_context_or_one_line(data):
    """The settings model (lookcloser.runtime.context) and the served guard in front of it agree: a context the guard
    lets through has only known keys, and building it either works or is one SettingsError line."""
    from lookcloser.runtime.context import Context  # noqa: PLC0415
    from lookcloser.runtime.context_guard import context_problem  # noqa: PLC0415

    problem = context_problem(data)
    assert problem is None or ("\n" not in problem and len(problem) < 600)
    try:
        Context(**data)
    except Exception as exc:  # noqa: BLE001
        _one_line(exc)
        return
    assert problem is None  # what the guard refuses, the model refuses too


@pytest.fixture(scope="module")
def agent():
    return Agent(vlm=ScriptedVLM(lambda text, images: '{"answer": "ok", "missing": []}'),
                 tools={"localizer": "whole_image"})


anything = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.binary(max_size=10),
                     st.text(alphabet=any_char, max_size=30), st.lists(st.text(max_size=4), max_size=3),
                     st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))


@PROFILE
@given(anything, anything, anything)
def test_any_values_into_run_answer_or_are_one_line(agent, image, question, options):
    try:
        answer = agent.run(Image.new("RGB", (20, 20)) if image is None else image, question, options)
    except Exception as exc:  # noqa: BLE001
        _one_line(exc)
        return
    assert answer.text == "ok"


@PROFILE
@given(anything, anything, st.lists(anything, max_size=3))
def test_any_values_into_find_and_batch_are_results_or_one_line(agent, target, kind, items):
    for call in (lambda: agent.find(Image.new("RGB", (20, 20)), target, kind=kind), lambda: agent.batch(items)):
        try:
            call()
        except Exception as exc:  # noqa: BLE001
            _one_line(exc)
