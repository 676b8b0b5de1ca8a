"""Ask every item, in one process: the per-item step (`ask_item`) and the thread pool around it (`run_items`).

Why this split: `ask_item` is the whole meaning of one result row (shuffle, ask, map back, score,
isolate failures) and is what a Ray actor calls too, so in-process and Ray rows are the same by
construction. `run_items` only schedules: it skips finished ids, runs `workers` items at once on one
shared `Agent` (models loaded once; the agent is thread-safe, as `Agent.batch` relies on), and writes
each row as soon as it finishes.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any, Callable, Iterable

from lookcloser.eval.datasets import Item
from lookcloser.eval.results import ResultsFile

__all__ = ["ask_item", "error_row", "run_items", "shown_order"]


def shown_order(item_id: str, count: int, seed: int) -> list[int]:
    """The dataset indices of the options in the order shown: order[k] is the option shown as letter k.

    Seeded by (seed, item id) only, so the same item is shown the same way whatever the worker, the
    mode (threads, Ray) or the order items run in: a resumed or distributed run asks the same questions.
    """
    digest = hashlib.sha256(f"{seed}:{item_id}".encode()).digest()
    order = list(range(count))
    random.Random(int.from_bytes(digest[:8], "big")).shuffle(order)
    return order


def _letter(index: int | None) -> str | None:
    return None if index is None else chr(65 + index)


def _normalise(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", " ", text.casefold()).strip()


def _base_row(item: Item) -> dict[str, Any]:
    return {"id": item.id, "category": item.category, "image": item.image_label(), "question": item.question,
            "options": None, "shown_order": None, "answer": item.answer, "choice": None, "choice_letter": None,
            "correct": False,
            "choice_mode": None, "reply": None, "findings": [], "vlm_calls": 0, "tool_calls": 0,
            "search_steps": 0, "seconds": 0.0, "trace": None, "error": None}


def error_row(item: Item, message: str, seconds: float = 0.0) -> dict[str, Any]:
    """A row for an item that could not be asked; it counts as wrong in the accuracy and is listed."""
    return {**_base_row(item), "error": " ".join(message.split()), "seconds": round(seconds, 3)}


def _findings(findings: Iterable[Any]) -> list[dict[str, Any]]:
    """Findings as the results row keeps them: no search record, no mask pixels."""
    keep = ("name", "kind", "status", "box", "score", "text", "tool", "error")
    return [{k: f.to_json()[k] for k in keep} for f in findings]


def ask_item(agent: Any, item: Item, seed: int) -> dict[str, Any]:
    """One result row for `item`: options shuffled by `seed`, asked, the choice mapped back and scored.

    choice_mode: "likelihood" (the backend scored the options), "letter" (parsed from the reply),
    "unmatched" (the reply named no option), or "open" (no options: answer text matched).
    Any failure becomes the row's `error`; findings paid for before it are kept.
    """
    from lookcloser.errors import AnswerError  # noqa: PLC0415 - keeps `import lookcloser.eval` light

    started = time.perf_counter()
    if item.error:
        return error_row(item, item.error)
    if not item.question:
        return error_row(item, "the item has no question (a search-only item: use `lookcloser eval-search`)")
    row = _base_row(item)
    order = shown_order(item.id, len(item.options), seed) if item.options else None
    shown = [item.options[i] for i in order] if order else None
    row.update(options=shown, shown_order=order)
    try:
        answer = agent.run(item.image, item.question, options=shown)
    except AnswerError as exc:
        partial = exc.partial
        row.update(error=" ".join(str(exc).split()), seconds=round(time.perf_counter() - started, 3))
        if partial is not None:
            row.update(findings=_findings(partial.findings), trace=partial.trace_dir,
                       **{k: getattr(partial.stats, k) for k in ("vlm_calls", "tool_calls", "search_steps")})
        return row
    except Exception as exc:  # one broken item is one error row; the rest still run
        return error_row(item, f"{type(exc).__name__}: {exc}", time.perf_counter() - started)
    row.update(reply=answer.text, findings=_findings(answer.findings), trace=answer.trace_dir,
               vlm_calls=answer.stats.vlm_calls, tool_calls=answer.stats.tool_calls,
               search_steps=answer.stats.search_steps, seconds=answer.stats.seconds)
    if order is not None:
        choice = order[answer.choice] if answer.choice is not None else None
        mode = {"text": "letter", "likelihood": "likelihood"}.get(answer.choice_path or "", "unmatched")
        row.update(choice=choice, choice_letter=_letter(answer.choice), choice_mode=mode,
                   correct=choice is not None and choice == item.answer_index)
    else:
        expected = _normalise(item.answer or "")
        row.update(choice_mode="open", correct=bool(expected) and expected in _normalise(answer.text or ""))
    return row


def run_items(items: list[Any], ask: Callable[[Any], dict[str, Any]], results: ResultsFile, *, workers: int = 1,
              key: Callable[[Any], str] = lambda item: item.id,
              on_row: Callable[[dict[str, Any]], None] | None = None) -> int:
    """Ask the items whose `key` is not yet in `results` with `workers` threads; each row is written when it
    finishes. Returns the number of rows written. Items are submitted only as workers free up, so an
    interrupted run (Ctrl-C, kill) has at most `workers` in flight, and those are simply asked again.
    """
    todo = [item for item in items if key(item) not in results.done]
    written = 0

    def finish(row: dict[str, Any]) -> None:
        nonlocal written
        results.append(row)
        written += 1
        if on_row is not None:
            on_row(row)

    if workers <= 1:
        for item in todo:
            finish(ask(item))
        return written
    queue = iter(todo)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lookcloser-eval") as pool:
        running = {pool.submit(ask, item) for item in _take(queue, workers)}
        try:
            while running:
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    finish(future.result())
                running |= {pool.submit(ask, item) for item in _take(queue, len(finished))}
        except BaseException:
            for future in running:
                future.cancel()
            raise
    return written


def _take(iterator: Any, count: int) -> list[Any]:
    taken = []
    for _ in range(count):
        try:
            taken.append(next(iterator))
        except StopIteration:
            break
    return taken
