"""One call per evaluation: read the dataset, run what is not done yet (on the agent's batch, or on Ray
actors), append each row to `results.jsonl` as it finishes, write the summary with what it was measured with.

Why a run folder with a `run.json`: `--resume` must continue the same experiment. The first run records
what defines it (dataset, VLM, tools, seed, kind); a resume with different values is refused with one line
naming what changed, instead of silently mixing two experiments in one results file.

Why a plain append-only `results.jsonl`: a killed run loses only the items still in flight, `--resume`
needs nothing but the rows already written, and threads, Ray actors and a later resumed run all write the
same file (only this process writes it). A line cut short by a kill is ignored on reading. An error row is
not done: a resume asks that item again (the endpoint may be back) and the summary says how many it retried.

Why Ray: it is the distributed engine users of GPU clusters already run (`ray start --head` / `--address`),
it places actors on GPUs, and an `ActorPool` hands each actor a new item as soon as it is free. Each actor
builds its `Agent` once from a picklable `AgentRecipe` and calls the same row function as the in-process
run. CPUs and GPUs per actor are Ray resources: on a 2-core machine use fractional CPUs (0.5), since two
actors at 1 CPU each plus Ray's own tasks can leave none free and deadlock.

What a number was measured with (`summary.json` settings): the agent's `describe()` (VLM, tools as
configured and as built, AgentConfig), prompt hashes, package versions, Python, the git revision, the
seed, the dataset and how it ran. V* / ZoomEye scores move by several points with the prompt, the
precision or the seed; a result without these facts cannot be reproduced or compared.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import subprocess
import threading
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import Any, Callable, Iterator

from lookcloser.eval.datasets import DatasetError, Item, load_items
from lookcloser.eval.scoring import ask_rows, search_rows, search_units, unit_id
from lookcloser.eval.summary import RESULTS_FILE, read_rows, write_summary

__all__ = ["AgentRecipe", "RunOptions", "evaluate", "evaluate_search", "prompt_hashes"]

PACKAGES = ("lookcloser", "torch", "transformers", "langgraph", "langchain-core", "rapidocr",
            "onnxruntime", "openai", "ray", "datasets")

#: rows(agent, units, workers=N) -> the units' rows as each finishes (scoring.ask_rows / search_rows).
Rows = Callable[..., Iterator[dict[str, Any]]]


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
        from lookcloser.core.config import AgentConfig  # noqa: PLC0415

        vlm = self.vlm() if callable(self.vlm) and not hasattr(self.vlm, "generate") else self.vlm
        return Agent(vlm=vlm, tools=dict(self.tools), tool_options=dict(self.tool_options),
                     config=AgentConfig(**self.config), trace_dir=self.trace_dir)


class RunOptions:
    """How to run: `workers` items at once on one agent's batch, or `ray` actors (`workers` of them)."""

    def __init__(self, *, workers: int = 1, ray: bool = False, address: str | None = None,
                 cpus_per_actor: float = 1.0, gpus_per_actor: float = 0.0) -> None:
        from lookcloser.core.errors import InputError  # noqa: PLC0415

        if not isinstance(workers, int) or workers < 1:
            raise InputError(f"--workers must be at least 1, got {workers}")
        if cpus_per_actor <= 0 or gpus_per_actor < 0:
            raise InputError(f"--ray-cpus must be > 0 and --ray-gpus >= 0, got {cpus_per_actor:g} and "
                             f"{gpus_per_actor:g}")
        if address and not ray:
            raise InputError("--address needs --ray")
        self.workers, self.ray, self.address = workers, ray, address
        self.cpus_per_actor, self.gpus_per_actor = cpus_per_actor, gpus_per_actor

    def describe(self) -> dict[str, Any]:
        if self.ray:
            return {"mode": "ray", "actors": self.workers, "address": self.address,
                    "cpus_per_actor": self.cpus_per_actor, "gpus_per_actor": self.gpus_per_actor}
        return {"mode": "threads", "workers": self.workers}


# ------------------------------------------------------------------------------- evaluations
def evaluate(dataset: str | Path, out: str | Path, recipe: AgentRecipe, *, seed: int = 0, limit: int | None = None,
             resume: bool = False, run: RunOptions | None = None, on_start: Callable[[int, int], None] | None = None,
             on_row: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Ask every question of `dataset`; rows in OUT/results.jsonl, the summary returned and written beside.

    on_start(total, done) is called once the work is known, on_row(row) as each row is written. With
    resume=True, finished rows are kept and error rows asked again (summary settings `retried_errors`).
    """
    recipe.config.setdefault("choice", "likelihood")  # V*'s protocol when the backend can score options
    return _run("eval", dataset, out, recipe, lambda items: items, lambda item: item.id,
                functools.partial(ask_rows, seed=seed), seed=seed, limit=limit, resume=resume,
                run=run or RunOptions(), on_start=on_start, on_row=on_row)


def evaluate_search(dataset: str | Path, out: str | Path, recipe: AgentRecipe, *, limit: int | None = None,
                    resume: bool = False, run: RunOptions | None = None,
                    on_start: Callable[[int, int], None] | None = None,
                    on_row: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Search every annotated target of `dataset` (no VLM); one row per target, hit = IoU > 0.5."""
    return _run("eval-search", dataset, out, recipe, search_units, unit_id, search_rows, seed=None, limit=limit,
                resume=resume, run=run or RunOptions(), on_start=on_start, on_row=on_row)


def _run(kind: str, dataset: str | Path, out: str | Path, recipe: AgentRecipe, units: Callable[[list[Item]], list[Any]],
         key: Callable[[Any], str], rows: Rows, *, seed: int | None, limit: int | None, resume: bool, run: RunOptions,
         on_start: Callable[[int, int], None] | None,
         on_row: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:
    dataset, out = Path(dataset), Path(out)
    items = load_items(dataset, limit=limit)
    work = units(items)
    with _Results(out, resume=resume) as results:
        _check_run(out, _identity(kind, dataset, recipe, seed), resume)
        todo = [u for u in work if key(u) not in results.done]
        retried = sum(1 for u in todo if key(u) in results.failed)
        if on_start is not None:
            on_start(len(work), len(work) - len(todo))

        def write(row: dict[str, Any]) -> None:
            results.append(row)
            if on_row is not None:
                on_row(row)

        if run.ray:
            settings = _run_on_ray(todo, rows, recipe, write, run)
        else:
            agent = recipe.build()
            for row in rows(agent, todo, workers=run.workers):
                write(row)
            settings = measured_with(agent)
        done = len({key(u) for u in work} & results.done)
    extra = {"dataset": str(dataset), "items": len(items), "limit": limit, "seed": seed, "run": run.describe(),
             "retried_errors": retried, "complete": done == len(work)}
    ablate = recipe.config.get("ablate", "none")
    title = f"lookcloser {kind}: {dataset.name}" + (f" (ablate {ablate})" if ablate != "none" else "")
    return write_summary(out, {**settings, **extra}, title=title)


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


class _Results:
    """Appends rows to DIR/results.jsonl, thread-safe, one flushed line per row.

    resume=False refuses a directory that already holds results (so a finished run is never mixed with a
    new one by accident); resume=True keeps them: `done` holds the ids whose last row succeeded, `failed`
    those whose last row is an error row (asked again).
    """

    def __init__(self, out_dir: Path, *, resume: bool) -> None:
        self.path = out_dir / RESULTS_FILE
        if self.path.exists() and self.path.stat().st_size > 0 and not resume:
            raise DatasetError(f"{self.path} already holds results; pass --resume to continue that run, "
                               "or choose another --out directory")
        out_dir.mkdir(parents=True, exist_ok=True)
        kept = read_rows(self.path)
        self.done = {str(r["id"]) for r in kept if not r.get("error")}
        self.failed = {str(r["id"]) for r in kept if r.get("error")}
        self._end_partial_line()
        self._lock = threading.Lock()
        self._handle = open(self.path, "a", encoding="utf-8")

    def _end_partial_line(self) -> None:
        """A kill can leave a last line without its newline: end it so the next row starts clean."""
        if self.path.exists() and self.path.stat().st_size > 0:
            with open(self.path, "rb+") as handle:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    handle.write(b"\n")

    def append(self, row: dict[str, Any]) -> None:
        line = json.dumps(row, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            self._handle.write(line)
            self._handle.flush()
            (self.failed if row.get("error") else self.done).add(str(row["id"]))

    def __enter__(self) -> "_Results":
        return self

    def __exit__(self, *exc: Any) -> None:
        with self._lock:
            self._handle.close()


# ------------------------------------------------------------------------------------- Ray
class _EvalActor:
    """Holds one agent (models loaded once) and makes the rows of one unit at a time."""

    def __init__(self, recipe: AgentRecipe, rows: Rows) -> None:
        self.agent = recipe.build()
        self.rows = rows

    def ask(self, unit: Any) -> list[dict[str, Any]]:
        return list(self.rows(self.agent, [unit], workers=1))

    def settings(self) -> dict[str, Any]:
        return measured_with(self.agent)


def _run_on_ray(todo: list[Any], rows: Rows, recipe: AgentRecipe, write: Callable[[dict[str, Any]], None],
                run: RunOptions) -> dict[str, Any]:
    """The units on `run.workers` Ray actors; rows are written by this process as they arrive.
    Returns the settings described by one actor. No address: a local Ray (or RAY_ADDRESS)."""
    try:
        import ray
        from ray.util import ActorPool
    except ImportError:
        raise DatasetError("--ray needs the 'ray' package: pip install 'lookcloser[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=run.address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise DatasetError(f"cannot start or join Ray at {run.address or 'a local cluster'}: {exc}") from None
    try:
        actor_class = ray.remote(num_cpus=run.cpus_per_actor, num_gpus=run.gpus_per_actor)(_EvalActor)
        actors = [actor_class.remote(recipe, rows) for _ in range(max(1, run.workers))]
        for produced in ActorPool(actors).map_unordered(lambda actor, unit: actor.ask.remote(unit), todo):
            for row in produced:
                write(row)
        settings = ray.get(actors[0].settings.remote())
        for actor in actors:
            ray.kill(actor)
    finally:
        if started_here:
            ray.shutdown()
    return settings


# --------------------------------------------------------------------------- measured with
def measured_with(agent: Any) -> dict[str, Any]:
    """What a number was measured with: the agent's description plus prompts, versions, Python, git."""
    return {**agent.describe(), "prompts": prompt_hashes(), "versions": _versions(),
            "python": platform.python_version(), "git_revision": _git_revision()}


def prompt_hashes() -> dict[str, str]:
    """SHA-256 (first 16 hex digits) of every prompt template the agent uses."""
    folder = resources.files("lookcloser.prompts")
    return {p.name[:-4]: hashlib.sha256(p.read_bytes()).hexdigest()[:16]
            for p in sorted(folder.iterdir(), key=lambda p: p.name) if p.name.endswith(".txt")}


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def _git_revision() -> str | None:
    """The lookcloser checkout's commit (with '+dirty' when it has changes), or None outside a checkout."""
    here = Path(__file__).resolve().parent
    try:
        revision = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                                  timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{revision}+dirty" if dirty else revision or None
