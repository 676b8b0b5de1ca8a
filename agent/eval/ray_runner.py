"""The same items on a Ray cluster: one agent per actor, rows streamed back into the same results.jsonl.

Why Ray: it is the distributed engine users of GPU clusters already run (`ray start --head` /
`--address`), it places actors on GPUs, and an `ActorPool` hands each actor a new item as soon as it
is free. Each actor builds its `Agent` once from a picklable recipe (a VLM spec string, tool names,
options, config), so models load once per actor, and calls the very `ask` function the in-process
runner calls: rows are identical across modes, and `--resume` works across them. Only the driver
writes the results file.

CPUs and GPUs per actor are Ray resources: on a 2-core machine use fractional CPUs (0.5), since
two actors at 1 CPU each plus Ray's own tasks can leave none free and deadlock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from lookcloser.eval.datasets import DatasetError, Item
from lookcloser.eval.results import ResultsFile

__all__ = ["AgentRecipe", "run_on_ray"]


@dataclass
class AgentRecipe:
    """How to build an Agent anywhere: plain values only (they travel to Ray workers).

    vlm: a spec string, None, or a zero-argument factory returning a VLM (tests pass a picklable one).
    """

    vlm: Any = None
    tools: dict[str, Any] = field(default_factory=dict)
    tool_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    trace_dir: str | None = None

    def build(self) -> Any:
        from lookcloser.agent import Agent  # noqa: PLC0415
        from lookcloser.config import AgentConfig  # noqa: PLC0415

        vlm = self.vlm() if callable(self.vlm) and not hasattr(self.vlm, "generate") else self.vlm
        return Agent(vlm=vlm, tools=dict(self.tools), tool_options=dict(self.tool_options),
                     config=AgentConfig(**self.config), trace_dir=self.trace_dir)


class _EvalActor:
    """Holds one agent (models loaded once) and answers items with the shared per-item function."""

    def __init__(self, recipe: AgentRecipe, step: Callable[[Any, Item], Any]) -> None:
        self.agent = recipe.build()
        self.step = step

    def ask(self, item: Item) -> Any:
        return self.step(self.agent, item)

    def settings(self) -> dict[str, Any]:
        from lookcloser.eval.settings import collect_settings  # noqa: PLC0415

        return collect_settings(self.agent)


def run_on_ray(todo: list[Any], step: Callable[[Any, Any], Any], recipe: AgentRecipe, results: ResultsFile, *,
               actors: int = 1, address: str | None = None, cpus_per_actor: float = 1.0, gpus_per_actor: float = 0.0,
               unit: Callable[[Any], Any] = lambda x: x,
               on_row: Callable[[dict[str, Any]], None] | None = None) -> tuple[int, dict[str, Any]]:
    """Ask `todo` on `actors` Ray actors; rows are written by this process as they arrive.

    step(agent, unit) returns a row or a list of rows. Returns (rows written, settings from one actor).
    address: None starts a local Ray (or joins RAY_ADDRESS); "auto" or "ray://host:10001" joins a cluster.
    """
    try:
        import ray
        from ray.util import ActorPool
    except ImportError:
        raise DatasetError("--ray needs the 'ray' package: pip install 'lookcloser[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        options: dict[str, Any] = {"address": address, "include_dashboard": False, "log_to_driver": False,
                                   "logging_level": "ERROR"}
        try:
            ray.init(**options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise DatasetError(f"cannot start or join Ray at {address or 'a local cluster'}: {exc}") from None
    written = 0
    try:
        actor_class = ray.remote(num_cpus=cpus_per_actor, num_gpus=gpus_per_actor)(_EvalActor)
        pool_actors = [actor_class.remote(recipe, step) for _ in range(max(1, actors))]
        pool = ActorPool(pool_actors)
        for produced in pool.map_unordered(lambda actor, value: actor.ask.remote(unit(value)), todo):
            for row in produced if isinstance(produced, list) else [produced]:
                results.append(row)
                written += 1
                if on_row is not None:
                    on_row(row)
        settings = ray.get(pool_actors[0].settings.remote())
        for actor in pool_actors:
            ray.kill(actor)
    finally:
        if started_here:
            ray.shutdown()
    return written, settings
