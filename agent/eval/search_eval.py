"""Localizer-only evaluation: search each annotated target, score the found box against the truth.

Why separate from the question eval: it measures SEARCH alone (no VLM), so a localizer or cue can
be compared on its own, the way V* reports its search: a hit is IoU > 0.5 with the ground-truth box.
One row per annotated target (id `ITEM#K`); text targets are searched as `the text "..."`, so the
read-all search ranks the line that matches first, and that first line is the prediction.
"""

from __future__ import annotations

import time
from typing import Any

from lookcloser.eval.datasets import Item, TargetBox
from lookcloser.eval.runner import _normalise

__all__ = ["HIT_IOU", "search_items", "search_target"]

#: V*'s own search metric: a found box counts when its IoU with the truth is above this.
HIT_IOU = 0.5


def search_items(items: list[Item]) -> list[tuple[Item, int, TargetBox | None]]:
    """(item, index, target) per annotated target; an item with none (or broken) is one error entry."""
    units: list[tuple[Item, int, TargetBox | None]] = []
    for item in items:
        boxed = [t for t in item.targets if t.box is not None]
        if item.error or not boxed:
            units.append((item, 0, None))
        else:
            units.extend((item, k, target) for k, target in enumerate(boxed))
    return units


def unit_id(item: Item, index: int) -> str:
    return f"{item.id}#{index}"


def _row(item: Item, index: int, target: TargetBox | None) -> dict[str, Any]:
    return {"id": unit_id(item, index), "item": item.id, "category": item.category, "image": item.image_label(),
            "target": target.name if target else None, "kind": target.kind if target else None,
            "truth": target.box if target else None, "status": None, "box": None, "score": None, "text": None,
            "iou": None, "hit": False, "text_match": None, "search_steps": 0, "cue_calls": 0, "tool": None,
            "seconds": 0.0, "error": None}


def search_target(agent: Any, item: Item, index: int, target: TargetBox | None) -> dict[str, Any]:
    """One row: the localizer's first finding for `target` against its box (errors become the row's error)."""
    from lookcloser.types import Box, Target  # noqa: PLC0415

    row = _row(item, index, target)
    if item.error:
        return {**row, "error": item.error}
    if target is None:
        return {**row, "error": "the item has no annotated target box to search for"}
    phrase = f'the text "{target.name}"' if target.kind == "text" else target.name
    started = time.perf_counter()
    try:
        findings = agent.find(item.image, Target(name=phrase, kind=target.kind))
    except Exception as exc:  # one broken item is one error row
        return {**row, "error": " ".join(f"{type(exc).__name__}: {exc}".split()),
                "seconds": round(time.perf_counter() - started, 3)}
    seconds = round(time.perf_counter() - started, 3)
    first = findings[0] if findings else None
    record = (first.search or {}) if first is not None else {}
    row.update(seconds=seconds, status=first.status if first else "not_found", tool=first.tool if first else None,
               search_steps=len(record.get("steps") or []), cue_calls=int(record.get("cue_calls") or 0),
               error=first.error if first is not None and first.status == "failed" else None)
    if first is not None and first.status == "found" and first.box is not None:
        iou = first.box.iou(Box.from_list(target.box))
        row.update(box=first.box.to_list(), score=round(first.score, 4) if first.score is not None else None,
                   text=first.text, iou=round(iou, 4), hit=iou > HIT_IOU)
        if target.kind == "text":
            row["text_match"] = bool(first.text) and _normalise(target.name).replace(" ", "") in \
                _normalise(first.text).replace(" ", "")
    return row
