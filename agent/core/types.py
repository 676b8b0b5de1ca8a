"""Plain public types. Coordinates are original-image pixels, xyxy, everywhere."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lookcloser.core.geometry import box_iou_batch

TargetKind = Literal["object", "text"]
FindingStatus = Literal["found", "not_found", "failed"]


class Box(BaseModel):
    """An axis-aligned box in original-image pixels (x1, y1) top-left, (x2, y2) bottom-right."""

    model_config = ConfigDict(frozen=True)

    x1: float
    y1: float
    x2: float
    y2: float

    @model_validator(mode="after")
    def _check_order(self) -> "Box":
        for name in ("x1", "y1", "x2", "y2"):
            value = getattr(self, name)
            if not np.isfinite(value):
                raise ValueError(f"box coordinate {name}={value} is not a finite number")
        if self.x2 < self.x1 or self.y2 < self.y1:
            raise ValueError(
                f"box must have x2 >= x1 and y2 >= y1, got [{self.x1}, {self.y1}, {self.x2}, {self.y2}]"
            )
        return self

    @classmethod
    def from_list(cls, xyxy: Any) -> "Box":
        values = list(xyxy)
        if len(values) != 4:
            raise ValueError(f"a box needs 4 numbers [x1, y1, x2, y2], got {values!r}")
        return cls(x1=values[0], y1=values[1], x2=values[2], y2=values[3])

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2)

    def to_list(self, ndigits: int | None = 1) -> list[float]:
        values = [self.x1, self.y1, self.x2, self.y2]
        return [round(v, ndigits) for v in values] if ndigits is not None else values

    def shift(self, dx: float, dy: float) -> "Box":
        """Move by (dx, dy): maps a box found in a patch back to the parent image."""
        return Box(x1=self.x1 + dx, y1=self.y1 + dy, x2=self.x2 + dx, y2=self.y2 + dy)

    def scale(self, sx: float, sy: float | None = None) -> "Box":
        sy = sx if sy is None else sy
        return Box(x1=self.x1 * sx, y1=self.y1 * sy, x2=self.x2 * sx, y2=self.y2 * sy)

    def clip(self, width: float, height: float) -> "Box":
        return Box(
            x1=min(max(self.x1, 0.0), width),
            y1=min(max(self.y1, 0.0), height),
            x2=min(max(self.x2, 0.0), width),
            y2=min(max(self.y2, 0.0), height),
        )

    def expand(self, factor: float, width: float, height: float, min_size: float = 0.0) -> "Box":
        """Grow around the centre by `factor` (SEAL crops at 1.2x), at least `min_size` a side, clipped."""
        cx, cy = self.center
        half_w = max(self.width * factor, min_size) / 2
        half_h = max(self.height * factor, min_size) / 2
        return Box(x1=cx - half_w, y1=cy - half_h, x2=cx + half_w, y2=cy + half_h).clip(width, height)

    def iou(self, other: "Box") -> float:
        """Intersection over union (0 for empty boxes); see lookcloser.core.geometry.box_iou_batch."""
        return float(box_iou_batch(self, other)[0, 0])


class Target(BaseModel):
    """A visual target the VLM says it is missing."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: TargetKind = "object"
    why: str | None = None

    @field_validator("name")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        value = " ".join(str(value).split())
        if not value:
            raise ValueError("target name must not be empty")
        return value


class Mask(BaseModel):
    """A binary mask as run-length counts (row-major, alternating runs starting with 0s).

    Plain JSON, so findings with masks can sit in LangGraph state and checkpoints.
    """

    model_config = ConfigDict(frozen=True)

    height: int = Field(ge=1)
    width: int = Field(ge=1)
    counts: list[int]

    @model_validator(mode="after")
    def _check_counts(self) -> "Mask":
        if any(c < 0 for c in self.counts) or sum(self.counts) != self.height * self.width:
            raise ValueError(f"mask counts must be non-negative and sum to {self.height}x{self.width} pixels")
        return self

    @classmethod
    def from_array(cls, array: Any) -> "Mask":
        mask = np.asarray(array).astype(bool)
        if mask.ndim != 2 or mask.size == 0:
            raise ValueError(f"a mask must be a non-empty 2-D array, got shape {mask.shape}")
        flat = mask.ravel()
        changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        edges = np.concatenate(([0], changes, [flat.size]))
        runs = np.diff(edges).tolist()
        if flat[0]:
            runs = [0, *runs]
        return cls(height=mask.shape[0], width=mask.shape[1], counts=[int(r) for r in runs])

    def to_array(self) -> np.ndarray:
        values = np.zeros(len(self.counts), dtype=bool)
        values[1::2] = True
        return np.repeat(values, self.counts).reshape(self.height, self.width)

    @property
    def area(self) -> int:
        return int(sum(self.counts[1::2]))


class Detection(BaseModel):
    """One thing a tool saw: a scored box (pixels of the image the tool was given), with an optional
    label, the text read there (OCR lines are detections too) and an optional mask."""

    box: Box
    score: float
    label: str | None = None
    text: str | None = None
    mask: Mask | None = None


class Finding(BaseModel):
    """What one tool found (or did not find) for one target: plain JSON, so it can live in graph state.

    Crops are not stored: TELL and the visualisers cut them from the image and `box`.
    `search` holds the searcher's record (visited patches, why it stopped) when a search ran.
    """

    target: Target
    status: FindingStatus
    box: Box | None = None
    score: float | None = None
    mask: Mask | None = None
    text: str | None = None
    tool: str
    error: str | None = None
    search: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The CLI's finding shape: name, kind, status, box, score, text, tool, error, mask area."""
        return {
            "name": self.target.name,
            "kind": self.target.kind,
            "status": self.status,
            "box": self.box.to_list() if self.box else None,
            "score": round(self.score, 4) if self.score is not None else None,
            "text": self.text,
            "tool": self.tool,
            "error": self.error,
            "mask_area": self.mask.area if self.mask is not None else None,
        }


#: Metadata key of a search step's chain run; its value is the step's own run id (runs below inherit it).
SEARCH_STEP = "search_step"


def is_search_step(run_id: Any, metadata: dict[str, Any] | None) -> bool:
    """Whether a chain run is a V* search step itself (not a run below one, which inherits the mark)."""
    return (metadata or {}).get(SEARCH_STEP) == str(run_id)


class Stats(BaseModel):
    """What a run cost. vlm_calls: every VLM request (generate, yes-probability, option scoring);
    tool_calls: calls of the expert tools (localizer, detector, segmenter, ocr; each a `tool` run in
    the trace); search_steps: patches the V* search looked at (one cue-model call each); images_sent: images
    in those VLM requests, all together (a photo sent twice counts twice); zoom_turns: the zoom strategy's VLM
    turns (0 for the vstar strategy)."""

    vlm_calls: int = 0
    tool_calls: int = 0
    search_steps: int = 0
    images_sent: int = 0
    zoom_turns: int = 0
    seconds: float = 0.0

    def __add__(self, other: "Stats") -> "Stats":
        return Stats(**{name: getattr(self, name) + getattr(other, name) for name in type(self).model_fields})


class Answer(BaseModel):
    """The agent's answer. `choice` is the 0-based option index when options were given; `choice_path`
    says how it was picked ("text": named in the answer, "likelihood": option scoring, "unmatched"), or
    "unanswered" when the no-search ablation (AgentConfig.ablate) stopped at a SHOW that gave no answer."""

    text: str | None
    choice: int | None = None
    choice_path: str | None = None
    findings: list[Finding] = Field(default_factory=list)
    stats: Stats = Field(default_factory=Stats)
    parse_path: str | None = None
    notes: list[str] = Field(default_factory=list)
    trace_id: str | None = None
    trace_dir: str | None = None
    error: str | None = None  # set only on AnswerError.partial: the one-line failure after the search

    def to_json(self) -> dict[str, Any]:
        data = {
            "answer": self.text,
            "choice": self.choice,
            "choice_path": self.choice_path,
            "findings": [f.to_json() for f in self.findings],
            "stats": self.stats.model_dump(),
            "parse_path": self.parse_path,
            "notes": self.notes,
            "trace_id": self.trace_id,
            "trace_dir": self.trace_dir,
        }
        if self.error is not None:
            data["error"] = self.error
        return data
