"""What one result row means: ask an item (shuffle, ask, map back, score) or search one annotated target
(IoU against the truth), through the agent's own `batch_as_completed`.

Why rows come from batches: the in-process run asks many items at once on one shared agent, and a Ray
actor asks its one item at a time; both go through `ask_rows` / `search_rows`, so the rows are the same by
construction, and the eval keeps no thread pool of its own. A failure is data, as in the graph: an item
that cannot be asked (broken record, no question, unreadable image, endpoint down) is an error row and
the rest still run.

The localizer-only rows (`search_rows`) measure SEARCH alone, the way V* reports its search: a hit is
IoU > 0.5 with the ground-truth box. One row per annotated target (id `ITEM#K`); text targets are searched
as `the text "..."`, so the read-all search ranks the line that matches first, and that line is the prediction.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from typing import Any, Iterable, Iterator

from lookcloser.eval.datasets import Item, TargetBox

__all__ = ["HIT_IOU", "ask_item", "ask_rows", "error_row", "search_rows", "search_units", "shown_order", "unit_id"]

#: V*'s own search metric: a found box counts when its IoU with the truth is above this.
HIT_IOU = 0.5

#: A localizer-only unit: (item, index of the target, the target or None when the item has none).
SearchUnit = tuple[Item, int, "TargetBox | None"]


def shown_order(item_id: str, count: int, seed: int) -> list[int]:
    """The dataset indices of the options in the order shown: order[k] is the option shown as letter k.

    Seeded by (seed, item id) only, so the same item is shown the same way whatever the worker, the
    mode (threads, Ray) or the order items run in: a resumed or distributed run asks the same questions.
    """
    digest = hashlib.sha256(f"{seed}:{item_id}".encode()).digest()
    order = list(range(count))
    random.Random(int.from_bytes(digest[:8], "big")).shuffle(order)
    return order


def _normalise(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", " ", text.casefold()).strip()


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _batched(agent: Any, requests: list[tuple[Any, dict[str, Any]]], workers: int) -> Iterator[tuple[Any, Any, float]]:
    """(unit, result or exception, seconds) per (unit, batch item), as each finishes on the agent's batch.

    The agent reads its items lazily, one when a worker is free, so an item's clock starts when it is taken.
    """
    started: dict[int, float] = {}

    def items() -> Iterator[dict[str, Any]]:
        for index, (_, item) in enumerate(requests):
            started[index] = time.perf_counter()
            yield item

    for index, result in agent.batch_as_completed(items(), max_workers=workers, return_exceptions=True):
        yield requests[index][0], result, round(time.perf_counter() - started[index], 3)


# ------------------------------------------------------------------------------- question rows
def _base_row(item: Item) -> dict[str, Any]:
    return {"id": item.id, "category": item.category, "image": item.image_label(), "question": item.question,
            "options": None, "shown_order": None, "answer": item.answer, "choice": None, "choice_letter": None,
            "correct": False,
            "choice_mode": None, "reply": None, "findings": [], "vlm_calls": 0, "tool_calls": 0,
            "search_steps": 0, "images_sent": 0, "zoom_turns": 0, "seconds": 0.0, "trace": None, "error": None}


def error_row(item: Item, message: str, seconds: float = 0.0) -> dict[str, Any]:
    """A row for an item that could not be asked; it counts as wrong in the accuracy and is listed."""
    return {**_base_row(item), "error": " ".join(message.split()), "seconds": round(seconds, 3)}


def _findings(findings: Iterable[Any]) -> list[dict[str, Any]]:
    """Findings as the results row keeps them: no search record, no mask pixels."""
    keep = ("name", "kind", "status", "box", "score", "text", "tool", "error")
    return [{k: f.to_json()[k] for k in keep} for f in findings]


def ask_rows(agent: Any, items: list[Item], *, seed: int, workers: int = 1) -> Iterator[dict[str, Any]]:
    """One result row per item, yielded as each finishes: options shuffled by `seed`, asked on the agent's
    batch (`workers` at once), the choice mapped back and scored.

    choice_mode: "likelihood" (the backend scored the options), "letter" (parsed from the reply),
    "unmatched" (the reply named no option), "open" (no options: answer text matched), or "unanswered" (the
    no-search ablation: SHOW named targets instead of answering, and nothing came after it; counted wrong).
    Any failure becomes the row's `error`; findings paid for before it are kept.
    """
    requests = []
    for item in items:
        if item.error:
            yield error_row(item, item.error)
        elif not item.question:
            yield error_row(item, "the item has no question (a search-only item: use `lookcloser eval-search`)")
        else:
            order = shown_order(item.id, len(item.options), seed) if item.options else None
            shown = [item.options[i] for i in order] if order else None
            requests.append(((item, order), {"image": item.image, "question": item.question, "options": shown}))
    for (item, order), result, seconds in _batched(agent, requests, workers):
        yield _answer_row(item, order, result, seconds)


def ask_item(agent: Any, item: Item, seed: int) -> dict[str, Any]:
    """The result row of one item (`ask_rows` for a single item)."""
    return next(ask_rows(agent, [item], seed=seed))


def _answer_row(item: Item, order: list[int] | None, answer: Any, seconds: float) -> dict[str, Any]:
    from lookcloser.core.errors import AnswerError  # noqa: PLC0415 - keeps `import lookcloser.eval` light

    row = _base_row(item)
    row.update(options=[item.options[i] for i in order] if order else None, shown_order=order)
    if isinstance(answer, AnswerError):
        partial = answer.partial
        row.update(error=" ".join(str(answer).split()), seconds=seconds)
        if partial is not None:
            row.update(findings=_findings(partial.findings), trace=partial.trace_dir,
                       **{k: getattr(partial.stats, k) for k in ("vlm_calls", "tool_calls", "search_steps",
                                                                   "images_sent", "zoom_turns")})
        return row
    if isinstance(answer, BaseException):
        return {**row, "error": _one_line(answer), "seconds": seconds}
    row.update(reply=answer.text, findings=_findings(answer.findings), trace=answer.trace_dir,
               vlm_calls=answer.stats.vlm_calls, tool_calls=answer.stats.tool_calls,
               search_steps=answer.stats.search_steps, images_sent=answer.stats.images_sent,
               zoom_turns=answer.stats.zoom_turns, seconds=answer.stats.seconds)
    if answer.choice_path == "unanswered":  # the no-search ablation stopped at a SHOW that did not answer
        row.update(choice_mode="unanswered", correct=False)
    elif order is not None:
        choice = order[answer.choice] if answer.choice is not None else None
        mode = {"text": "letter", "likelihood": "likelihood"}.get(answer.choice_path or "", "unmatched")
        row.update(choice=choice, choice_letter=None if answer.choice is None else chr(65 + answer.choice),
                   choice_mode=mode, correct=choice is not None and choice == item.answer_index)
    else:
        expected = _normalise(item.answer or "")
        row.update(choice_mode="open", correct=bool(expected) and expected in _normalise(answer.text or ""))
    return row


# --------------------------------------------------------------------------- localizer-only rows
def search_units(items: list[Item]) -> list[SearchUnit]:
    """(item, index, target) per annotated target; an item with none (or broken) is one error unit."""
    units: list[SearchUnit] = []
    for item in items:
        boxed = [t for t in item.targets if t.box is not None]
        if item.error or not boxed:
            units.append((item, 0, None))
        else:
            units.extend((item, k, target) for k, target in enumerate(boxed))
    return units


def unit_id(unit: SearchUnit) -> str:
    return f"{unit[0].id}#{unit[1]}"


def _search_row(unit: SearchUnit) -> dict[str, Any]:
    item, _, target = unit
    return {"id": unit_id(unit), "item": item.id, "category": item.category, "image": item.image_label(),
            "target": target.name if target else None, "kind": target.kind if target else None,
            "truth": target.box if target else None, "status": None, "box": None, "score": None, "text": None,
            "iou": None, "hit": False, "text_match": None, "search_steps": 0, "cue_calls": 0, "tool": None,
            "seconds": 0.0, "error": None}


def search_rows(agent: Any, units: list[SearchUnit], *, workers: int = 1) -> Iterator[dict[str, Any]]:
    """One row per unit, yielded as each finishes: the localizer's first finding for the target against its
    box (`agent.find` on the agent's batch, `workers` at once; errors become the row's error)."""
    from lookcloser.core.types import Target  # noqa: PLC0415

    requests = []
    for unit in units:
        item, _, target = unit
        if item.error:
            yield {**_search_row(unit), "error": item.error}
        elif target is None:
            yield {**_search_row(unit), "error": "the item has no annotated target box to search for"}
        else:
            phrase = f'the text "{target.name}"' if target.kind == "text" else target.name
            requests.append((unit, {"image": item.image, "target": Target(name=phrase, kind=target.kind)}))
    for unit, findings, seconds in _batched(agent, requests, workers):
        yield _found_row(unit, findings, seconds)


def _found_row(unit: SearchUnit, findings: Any, seconds: float) -> dict[str, Any]:
    from lookcloser.core.types import Box  # noqa: PLC0415

    row = {**_search_row(unit), "seconds": seconds}
    if isinstance(findings, BaseException):
        return {**row, "error": _one_line(findings)}
    target = unit[2]
    first = findings[0] if findings else None
    record = (first.search or {}) if first is not None else {}
    row.update(status=first.status if first else "not_found", tool=first.tool if first else None,
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
