"""One call per evaluation: read the dataset, run what is not done yet (threads or Ray), write the summary.

Why a run folder with a `run.json`: `--resume` must continue the same experiment. The first run
records what defines it (dataset, VLM, tools, seed, kind); a resume with different values is refused
with one line naming what changed, instead of silently mixing two experiments in one results file.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Callable

from lookcloser.eval.datasets import DatasetError, Item, load_items
from lookcloser.eval.ray_runner import AgentRecipe, run_on_ray
from lookcloser.eval.results import ResultsFile
from lookcloser.eval.runner import ask_item, run_items
from lookcloser.eval.search_eval import search_items, search_target, unit_id
from lookcloser.eval.settings import collect_settings
from lookcloser.eval.summary import write_summary

__all__ = ["RunOptions", "evaluate", "evaluate_search"]


class RunOptions:
    """How to run: `workers` threads in one process, or `ray` actors (`workers` of them)."""

    def __init__(self, *, workers: int = 1, ray: bool = False, address: str | None = None,
                 cpus_per_actor: float = 1.0, gpus_per_actor: float = 0.0) -> None:
        if workers < 1:
            raise DatasetError(f"--workers must be at least 1, got {workers}")
        self.workers, self.ray, self.address = workers, ray, address
        self.cpus_per_actor, self.gpus_per_actor = cpus_per_actor, gpus_per_actor

    def describe(self) -> dict[str, Any]:
        if self.ray:
            return {"mode": "ray", "actors": self.workers, "address": self.address,
                    "cpus_per_actor": self.cpus_per_actor, "gpus_per_actor": self.gpus_per_actor}
        return {"mode": "threads", "workers": self.workers}


def _identity(kind: str, dataset: Path, recipe: AgentRecipe, seed: int | None) -> dict[str, Any]:
    def spec(value: Any) -> Any:
        return value if value is None or isinstance(value, (str, int, float, bool)) else type(value).__name__

    return {"kind": kind, "dataset": str(dataset.resolve()), "vlm": spec(recipe.vlm),
            "tools": {k: spec(v) for k, v in sorted(recipe.tools.items())}, "tool_options": recipe.tool_options,
            "config": recipe.config, "seed": seed}


def _check_run(out: Path, identity: dict[str, Any], resume: bool) -> None:
    path = out / "run.json"
    if resume and path.exists():
        before = json.loads(path.read_text(encoding="utf-8"))
        changed = [k for k in identity if json.dumps(before.get(k), sort_keys=True) != json.dumps(identity[k], sort_keys=True)]
        if changed:
            what = "; ".join(f"{k}: {before.get(k)!r} then, {identity[k]!r} now" for k in changed)
            raise DatasetError(f"--resume {out}: the run was started with other settings ({what}); "
                               "resume with the same ones, or use another --out")
        return
    path.write_text(json.dumps(identity, indent=2) + "\n", encoding="utf-8")


def _run(kind: str, dataset: str | Path, out: str | Path, recipe: AgentRecipe, units: Callable[[list[Item]], list[Any]],
         unit_key: Callable[[Any], str], step: Callable[[Any, Any], Any], *, seed: int | None, limit: int | None,
         resume: bool, run: RunOptions, on_start: Callable[[int, int], None] | None,
         on_row: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:
    dataset, out = Path(dataset), Path(out)
    items = load_items(dataset, limit=limit)
    work = units(items)
    with ResultsFile(out, resume=resume) as results:
        _check_run(out, _identity(kind, dataset, recipe, seed), resume)
        todo = [u for u in work if unit_key(u) not in results.done]
        if on_start is not None:
            on_start(len(work), len(work) - len(todo))
        extra = {"dataset": str(dataset), "items": len(items), "limit": limit, "seed": seed, "run": run.describe()}
        if run.ray:
            _, settings = run_on_ray(todo, step, recipe, results, actors=run.workers, address=run.address,
                                     cpus_per_actor=run.cpus_per_actor, gpus_per_actor=run.gpus_per_actor,
                                     on_row=on_row)
        else:
            agent = recipe.build()
            run_items(todo, lambda u: step(agent, u), results, workers=run.workers, key=unit_key, on_row=on_row)
            settings = collect_settings(agent)
        done = len({unit_key(u) for u in work} & results.done)
    return write_summary(out, {**settings, **extra, "complete": done == len(work)},
                         title=f"lookcloser {kind}: {dataset.name}")


def _ask_step(seed: int) -> Callable[[Any, Any], Any]:
    return functools.partial(_ask_unit, seed=seed)


def _ask_unit(agent: Any, item: Item, *, seed: int) -> dict[str, Any]:
    return ask_item(agent, item, seed)


def _search_unit(agent: Any, unit: tuple[Item, int, Any]) -> dict[str, Any]:
    return search_target(agent, *unit)


def evaluate(dataset: str | Path, out: str | Path, recipe: AgentRecipe, *, seed: int = 0, limit: int | None = None,
             resume: bool = False, run: RunOptions | None = None, on_start: Callable[[int, int], None] | None = None,
             on_row: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Ask every question of `dataset`; rows in OUT/results.jsonl, the summary returned and written beside."""
    recipe.config.setdefault("choice", "likelihood")  # V*'s protocol when the backend can score options
    return _run("eval", dataset, out, recipe, lambda items: items, lambda item: item.id, _ask_step(seed),
                seed=seed, limit=limit, resume=resume, run=run or RunOptions(), on_start=on_start, on_row=on_row)


def evaluate_search(dataset: str | Path, out: str | Path, recipe: AgentRecipe, *, limit: int | None = None,
                    resume: bool = False, run: RunOptions | None = None,
                    on_start: Callable[[int, int], None] | None = None,
                    on_row: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Search every annotated target of `dataset` (no VLM); one row per target, hit = IoU > 0.5."""
    return _run("eval-search", dataset, out, recipe, search_items, lambda u: unit_id(u[0], u[1]), _search_unit,
                seed=None, limit=limit, resume=resume, run=run or RunOptions(), on_start=on_start, on_row=on_row)
