"""The contextual cue: the VLM names a context object (mapped by the search's cue model, as the
official V* does) and a grid position (the fallback prior), with a scripted VLM."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lookcloser.tools.vstar.context_cue import (make_context_cue, parse_context_object, parse_position,
                                                position_prior)
from lookcloser.tools.vstar.cue import CueOutput
from lookcloser.core.vlm_protocol import ChatMessage, VLMReply


class ScriptedVLM:
    name = "scripted"

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.messages: list[list[ChatMessage]] = []

    def generate(self, messages, *, max_new_tokens=256):
        self.messages.append(list(messages))
        return VLMReply(text=self.answer)


@pytest.mark.parametrize(
    ("answer", "cell"),
    [
        ("top-left", (0, 0)),
        ("Top.", (0, 1)),
        ("The upper right corner.", (0, 2)),
        ("left", (1, 0)),
        ("Center", (1, 1)),
        ("centre", (1, 1)),
        ("middle right", (1, 2)),
        ("In the middle of the left side", (1, 0)),
        ("Answer: bottom-right.", (2, 2)),
        ("lower left", (2, 0)),
        ("bottom", (2, 1)),
        ("bottom middle", (2, 1)),
        ("on the left-hand top", (0, 0)),
        ("row 3, column 1", (2, 0)),
    ],
)
def test_answers_are_parsed_forgivingly(answer, cell):
    assert parse_position(answer) == cell


@pytest.mark.parametrize("answer", ["", "I cannot tell.", "It is not in the image", "Yes"])
def test_answers_without_a_position_give_none(answer):
    assert parse_position(answer) is None


def test_prior_peaks_in_the_named_cell_and_is_smooth():
    prior = position_prior(2, 0, 900, 300)  # bottom-left of a wide patch
    assert prior.dtype == np.float32 and prior.shape == (11, 32)
    assert prior.min() > 0 and prior.max() == pytest.approx(1.0)
    row, col = np.unravel_index(np.argmax(prior), prior.shape)
    assert row >= prior.shape[0] * 2 // 3 and col < prior.shape[1] // 3
    assert prior[0, -1] < 0.01  # the opposite corner is nearly cold


def test_cue_asks_with_the_patch_and_returns_the_prior():
    vlm = ScriptedVLM("Most likely at the top-right.")
    cue = make_context_cue(vlm)
    patch = Image.new("RGB", (640, 480))
    prior = cue(patch, "license plate")
    assert cue.vlm_calls == 1 and cue.last_position == (0, 2)
    (message,) = vlm.messages[0]
    assert message.role == "user" and message.images == [patch]
    assert "where is the license plate most likely to be" in message.text
    assert "the object or region it is most likely on" in message.text
    np.testing.assert_array_equal(prior, position_prior(0, 2, 640, 480))
    assert cue.last_source == "grid: top-right"  # no mapper: the grid position


def test_unparseable_answer_returns_none_and_keeps_the_answer():
    cue = make_context_cue(ScriptedVLM("Sorry, I can't help with that."))
    assert cue(Image.new("RGB", (64, 64)), "dog") is None
    assert cue.last_answer == "Sorry, I can't help with that." and cue.last_position is None


def test_needs_a_generating_vlm_and_a_target_slot():
    with pytest.raises(TypeError, match="generate"):
        make_context_cue(None)
    with pytest.raises(ValueError, match="target"):
        make_context_cue(ScriptedVLM("top"), prompt="Where is it?")


@pytest.mark.parametrize(
    ("answer", "context"),
    [
        ("On the table, bottom-left.", "table"),
        ("It is most likely on the wooden shelf near the top.", "wooden shelf"),
        ("The license plate is most likely to appear on the car.", "car"),
        ("top-right", None),
        ("Next to the door (left side)", "door"),
        ("I think it would be somewhere in the middle of a big crowded market street scene", None),
        ("", None),
    ],
)
def test_the_context_object_is_taken_from_the_answer(answer, context):
    assert parse_context_object(answer, "license plate") == context


class _MapCue:
    """Maps a phrase to a fixed map (a cue model's heatmap of the context object)."""

    def __init__(self, heatmap):
        self.heatmap = heatmap
        self.phrases = []

    def __call__(self, patch, phrase):
        self.phrases.append(phrase)
        return CueOutput(heatmap=self.heatmap, peak=float(self.heatmap.max()))


def test_the_named_context_object_is_mapped_by_the_cue_model_else_the_grid_is_used():
    table = np.zeros((8, 8), np.float32)
    table[6:, :3] = 1.0  # where the cue model sees "table"
    mapper = _MapCue(table)
    cue = make_context_cue(ScriptedVLM("On the table, top-right."), mapper=mapper)
    prior = cue(Image.new("RGB", (320, 320)), "cup")
    assert mapper.phrases == ["table"] and cue.last_source == "object: table"
    np.testing.assert_array_equal(prior, table)  # the object's map, not the top-right cell
    flat = make_context_cue(ScriptedVLM("On the table, top-right."), mapper=_MapCue(np.ones((8, 8), np.float32)))
    np.testing.assert_array_equal(flat(Image.new("RGB", (320, 320)), "cup"), position_prior(0, 2, 320, 320))
    assert flat.last_source == "grid: top-right"  # a flat map says nothing: the grid cell is the fallback
