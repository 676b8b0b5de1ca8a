"""The one item shape every reader produces (`Item`, `TargetBox`) and the one error a reader raises for a
dataset it cannot read at all (`DatasetError`). A module of its own so that the readers (datasets.py and
highres.py) share it without importing each other in a cycle."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from lookcloser.core.errors import LookCloserError

__all__ = ["DatasetError", "Item", "TargetBox", "shown"]


class DatasetError(LookCloserError, ValueError):
    """The dataset as a whole cannot be read (no such path, unknown layout, missing package)."""


def shown(value: Any, limit: int = 60) -> str:
    """A row's bad value in its error: the repr, at most `limit` characters (a list of millions is not repeated)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}… ({len(text):,} characters)"


@dataclass
class TargetBox:
    """An annotated target: its name, kind and ground-truth box (xyxy, original-image pixels)."""

    name: str
    box: list[float] | None = None
    kind: str = "object"


@dataclass
class Item:
    """One question (and/or annotated targets). `options` are in the dataset's order, `answer_index`
    points at the correct one; `image` is a path or encoded image bytes; `error` marks a broken record."""

    id: str
    category: str = "all"
    image: str | bytes | None = None
    question: str | None = None
    options: list[str] | None = None
    answer_index: int | None = None
    answer: str | None = None
    targets: list[TargetBox] = field(default_factory=list)
    error: str | None = None

    def image_label(self) -> str:
        """What the results row says the image was (bytes are not written out)."""
        return self.image if isinstance(self.image, str) else f"<{len(self.image or b'')} bytes>"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["image"] = self.image_label()
        return data
