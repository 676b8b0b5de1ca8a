"""The contextual cue: when a heatmap is too weak, ask the VLM where the target most likely is.

SEAL falls back on the VLM's world knowledge ("a license plate is on a car") when the target itself
is not visible at the current scale. As in the official code, the VLM names the *context object* or
region where the target most likely is ("on the table"), and the search's own cue model maps that
phrase on the patch (the official code segments it with its VSM); that map ranks the children.
The answer also names a coarse position (one cell of a 3x3 grid); when no cue model can map the
context object, or its map is flat, a Gaussian over that cell is the fallback. Which one was used
is recorded on the search step (`context`: "object: the table" or "grid: bottom-left"). Answers are
parsed forgivingly ("upper right corner", "the middle of the left side", "row 3, column 1"); an
answer with neither a context object nor a position gives None (an unusable contextual cue).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from PIL import Image

DEFAULT_PROMPT = (
    "According to common sense and the visual cues in the image, where is the {target} most likely to be? "
    "Answer in a few words: the object or region it is most likely on, in or near (for example \"on the table\"), "
    "then its position in the image, one of: top-left, top, top-right, left, center, right, bottom-left, "
    "bottom, bottom-right."
)
#: Words that carry no context object: prepositions, articles, position words, hedges.
_NOT_OBJECT = {"on", "in", "near", "at", "by", "under", "below", "above", "inside", "beside", "next", "to", "of", "the",
               "a", "an", "it", "is", "its", "most", "likely", "probably", "be", "to", "appear", "located", "found",
               "image", "picture", "photo", "position", "and", "or", "with", "this", "that", "there", "which", "corner",
               "side", "part", "area", "half", "edge", "top", "bottom", "left", "right", "upper", "lower", "center",
               "centre", "middle", "central", "row", "column", "i", "think", "would", "should", "could", "answer"}
_POSITIONS = ["top-left", "top", "top-right", "left", "center", "right", "bottom-left", "bottom", "bottom-right"]

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


def parse_context_object(answer: str, target: str) -> str | None:
    """The context object the answer names ("On the wooden table, bottom-left." -> "wooden table"), or
    None. The first clause is used; the target's own name, prepositions, articles and position words
    are dropped; at most 4 words are kept (a sentence is not an object name)."""
    text = answer.lower().split("most likely to appear")[-1]
    clause = re.split(r"[,.;:\n(]", text.strip(), maxsplit=1)[0]
    target_words = set(re.findall(r"[a-z]+", target.lower()))
    words = [w for w in re.findall(r"[a-z]+", clause) if w not in _NOT_OBJECT and w not in target_words]
    if not words or len(words) > 4:
        return None
    return " ".join(words)


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
    """callable(patch, phrase) -> prior heatmap or None; counts VLM calls and keeps the last answer.

    mapper: the search's cue model (callable(patch, phrase) -> CueOutput) that maps the context
    object; None uses the grid position only. `last_source` says what the last call used."""

    def __init__(self, vlm: Any, prompt: str = DEFAULT_PROMPT, max_new_tokens: int = 32, mapper: Any = None) -> None:
        if vlm is None or not callable(getattr(vlm, "generate", None)):
            raise TypeError(f"the contextual cue needs a VLM with generate(messages); got {type(vlm).__name__}")
        if "{target}" not in prompt:
            raise ValueError(f"the contextual cue prompt must contain '{{target}}', got {prompt!r}")
        self.vlm = vlm
        self.prompt = prompt
        self.max_new_tokens = max_new_tokens
        self.mapper = mapper
        self.vlm_calls = 0
        self.last_answer: str | None = None
        self.last_position: tuple[int, int] | None = None
        self.last_object: str | None = None
        self.last_source: str | None = None

    def __call__(self, patch: Image.Image, phrase: str) -> np.ndarray | None:
        from lookcloser.core.vlm_protocol import ChatMessage

        message = ChatMessage(role="user", content=[patch, self.prompt.format(target=phrase)])
        reply = self.vlm.generate([message], max_new_tokens=self.max_new_tokens)
        self.vlm_calls += 1
        answer = reply.text or ""
        self.last_answer = answer
        self.last_object = parse_context_object(answer, phrase)
        self.last_position = parse_position(answer)
        self.last_source = None
        mapped = self._map_object(patch)
        if mapped is not None:
            self.last_source = f"object: {self.last_object}"
            return mapped
        if self.last_position is None:
            return None
        self.last_source = f"grid: {_POSITIONS[self.last_position[0] * 3 + self.last_position[1]]}"
        return position_prior(*self.last_position, patch.width, patch.height)

    def _map_object(self, patch: Image.Image) -> np.ndarray | None:
        """The cue model's map of the context object on the patch; None when there is no mapper or
        object, or the map is flat (it says nothing about where the object is)."""
        if self.mapper is None or not self.last_object:
            return None
        heatmap = np.asarray(self.mapper(patch, self.last_object).heatmap, dtype=np.float32)
        if heatmap.ndim != 2 or heatmap.size == 0 or not np.all(np.isfinite(heatmap)):
            return None
        heatmap = np.clip(heatmap, 0.0, None)
        return heatmap if float(heatmap.max()) > float(heatmap.min()) else None


def make_context_cue(vlm: Any, prompt: str = DEFAULT_PROMPT, mapper: Any = None) -> ContextCue:
    """The contextual cue for `vlm` (SEAL's fallback when the heatmap is weak); `mapper` maps the
    context object the VLM names (the search's object cue), else the grid position is used."""
    return ContextCue(vlm, prompt, mapper=mapper)
