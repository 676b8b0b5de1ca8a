"""The contextual cue: when a heatmap is too weak, ask the VLM where the target most likely is.

SEAL falls back on the VLM's world knowledge ("a license plate is at the bottom of a car") when
the target itself is not visible at the current scale. The VLM answers with a coarse position
(one cell of a 3x3 grid: top-left ... bottom-right); that becomes a smooth Gaussian prior over
the patch, which the searcher uses in place of the weak heatmap. Answers are parsed forgivingly
("upper right corner", "Top-Left.", "the middle of the left side", "row 3, column 1"); an answer
with no position in it gives None, which the caller records as an unusable contextual cue.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from PIL import Image

DEFAULT_PROMPT = (
    "Where is the {target} most likely to be in the image? Answer with one of: top-left, top, "
    "top-right, left, center, right, bottom-left, bottom, bottom-right."
)

#: Longer side of the prior map; the search resizes it to the patch.
MAP_SIDE = 32
#: Gaussian spread as a fraction of the patch side: a third of a cell's width is 0.11, this is
#: wider on purpose (the VLM's guess is coarse) so neighbouring cells keep about a quarter of the heat.
SIGMA = 0.2

_VERTICAL = {"top": 0, "upper": 0, "bottom": 2, "lower": 2}
_HORIZONTAL = {"left": 0, "right": 2}
_CENTRE = {"center", "centre", "middle", "central", "centered", "centred"}
_FILLER = {"of", "the", "side", "part", "corner", "hand", "and", "area", "region", "half", "edge", "in", "on"}
_ROW_COL = re.compile(r"row\D{0,3}([1-3])\D{1,12}col(?:umn)?\D{0,3}([1-3])")


def parse_position(answer: str) -> tuple[int, int] | None:
    """(row, col) in a 3x3 grid from a free-form answer, or None when it names no position.

    The first position word decides; one or two words after it (skipping fillers such as
    "side", "of the") may add the other axis: "top left", "left-hand top", "middle right".
    """
    text = answer.lower()
    match = _ROW_COL.search(text)
    if match:
        return int(match.group(1)) - 1, int(match.group(2)) - 1
    words = re.findall(r"[a-z]+", text)
    for i, word in enumerate(words):
        if word not in _VERTICAL and word not in _HORIZONTAL and word not in _CENTRE:
            continue
        row = _VERTICAL.get(word)
        col = _HORIZONTAL.get(word)
        seen = 0
        for nxt in words[i + 1 :]:
            if nxt in _FILLER:
                continue
            seen += 1
            if row is None and nxt in _VERTICAL:
                row = _VERTICAL[nxt]
            elif col is None and nxt in _HORIZONTAL:
                col = _HORIZONTAL[nxt]
            elif nxt not in _CENTRE:
                break
            if (row is not None and col is not None) or seen >= 2:
                break
        return (1 if row is None else row), (1 if col is None else col)
    return None


def position_prior(row: int, col: int, width: int, height: int) -> np.ndarray:
    """A float32 Gaussian map (patch aspect, peak 1) centred on cell (row, col) of a 3x3 grid."""
    scale = MAP_SIDE / max(width, height)
    cols = max(1, min(width, round(width * scale)))
    rows = max(1, min(height, round(height * scale)))
    xs = (np.arange(cols) + 0.5) / cols
    ys = (np.arange(rows) + 0.5) / rows
    cx, cy = (col + 0.5) / 3, (row + 0.5) / 3
    gx = np.exp(-0.5 * ((xs - cx) / SIGMA) ** 2)
    gy = np.exp(-0.5 * ((ys - cy) / SIGMA) ** 2)
    prior = np.outer(gy, gx)
    return (prior / prior.max()).astype(np.float32)


class ContextCue:
    """callable(patch, phrase) -> prior heatmap or None; counts VLM calls and keeps the last answer."""

    def __init__(self, vlm: Any, prompt: str = DEFAULT_PROMPT, max_new_tokens: int = 16) -> None:
        if vlm is None or not callable(getattr(vlm, "generate", None)):
            raise TypeError(f"the contextual cue needs a VLM with generate(messages); got {type(vlm).__name__}")
        if "{target}" not in prompt:
            raise ValueError(f"the contextual cue prompt must contain '{{target}}', got {prompt!r}")
        self.vlm = vlm
        self.prompt = prompt
        self.max_new_tokens = max_new_tokens
        self.vlm_calls = 0
        self.last_answer: str | None = None
        self.last_position: tuple[int, int] | None = None

    def __call__(self, patch: Image.Image, phrase: str) -> np.ndarray | None:
        from lookcloser.vlm.base import ChatMessage

        message = ChatMessage(role="user", content=[patch, self.prompt.format(target=phrase)])
        reply = self.vlm.generate([message], max_new_tokens=self.max_new_tokens)
        self.vlm_calls += 1
        self.last_answer = reply.text
        self.last_position = parse_position(reply.text or "")
        if self.last_position is None:
            return None
        return position_prior(*self.last_position, patch.width, patch.height)


def make_context_cue(vlm: Any, prompt: str = DEFAULT_PROMPT) -> ContextCue:
    """The contextual cue for `vlm` (SEAL's fallback when the heatmap is weak)."""
    return ContextCue(vlm, prompt)
