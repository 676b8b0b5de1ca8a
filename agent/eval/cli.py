"""`lookcloser eval`, `lookcloser eval-search` and many-image `lookcloser find`.

Registered on the main app by `register(app)`. Imports stay light (typer, rich, the eval modules,
which import no model framework): the agent loads only when a run starts. The main CLI's helpers
(`_fail`, `_parse_tools`, ...) are imported at call time, since the main CLI imports this module.
Every problem a user can fix is one `error:` line and exit status 2.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import typer
from rich.console import Console

__all__ = ["eval_command", "eval_search_command", "find_many", "register"]

err = Console(stderr=True)
out = Console()

WORKERS_HELP = "Items at once: threads sharing one agent (models loaded once), or Ray actors with --ray."


def _main() -> Any:
    from lookcloser import cli  # noqa: PLC0415 - the main CLI imports this module

    return cli


@contextmanager
def _progress(label: str) -> Iterator[tuple[Any, Any]]:
    """A progress bar with ETA on stderr; yields (on_start, on_row) callbacks for the runner."""
    from rich.progress import Progress, TextColumn  # noqa: PLC0415

    columns = (TextColumn(f"{label} {{task.fields[status]}}"), *_bar_columns())
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task(label, total=None, status="")
        counts = {"errors": 0}

        def on_start(total: int, done: int) -> None:
            progress.update(task, total=total, completed=done)
            # The ETA must reflect this session's pace, not the items finished by an earlier run.
            progress.reset(task, total=total, completed=done)

        def on_row(row: dict[str, Any]) -> None:
            counts["errors"] += bool(row.get("error"))
            progress.update(task, advance=1, status=f"({counts['errors']} errors)" if counts["errors"] else "")

        yield on_start, on_row


def _bar_columns() -> tuple[Any, ...]:
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn  # noqa: PLC0415

    return BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()


def _recipe(vlm: Optional[str], tool: Optional[list[str]], out_dir: Path, traces: bool) -> Any:
    from lookcloser.eval.ray_runner import AgentRecipe  # noqa: PLC0415

    from lookcloser.errors import LookCloserError  # noqa: PLC0415

    try:
        settings = _main()._settings(None, tool)  # --tool ROLE=NAME and ROLE.OPTION=VALUE, as for ask
    except LookCloserError as exc:
        _main()._fail(str(exc))
    return AgentRecipe(vlm=vlm, tools=settings.tools, config=dict(settings.config),
                       trace_dir=str((out_dir / "traces").resolve()) if traces else None)


def _check_out(out_dir: Path) -> None:
    problem = _main()._directory_problem(out_dir)
    if problem:
        _main()._fail(f"--out {out_dir} cannot hold results: {problem}")


def _run_options(workers: int, ray: bool, address: Optional[str], ray_cpus: float, ray_gpus: float) -> Any:
    from lookcloser.eval.run import RunOptions  # noqa: PLC0415

    if address and not ray:
        _main()._fail("--address needs --ray")
    if ray_cpus <= 0 or ray_gpus < 0:
        _main()._fail(f"--ray-cpus must be > 0 and --ray-gpus >= 0, got {ray_cpus:g} and {ray_gpus:g}")
    if workers < 1:
        _main()._fail(f"--workers must be at least 1, got {workers}")
    return RunOptions(workers=workers, ray=ray, address=address, cpus_per_actor=ray_cpus, gpus_per_actor=ray_gpus)


def _guarded(work: Any) -> Any:
    """Run `work()`: user-fixable errors are one line; Ctrl-C says what was kept."""
    from lookcloser.errors import LookCloserError  # noqa: PLC0415

    cli = _main()
    try:
        return work()
    except KeyboardInterrupt:
        cli._fail("interrupted: every finished item is kept in results.jsonl; run again with --resume to continue")
    except (LookCloserError, ValueError) as exc:
        cli._agent_error(exc)
    except ImportError as exc:
        if not cli._missing_dependency(exc):
            raise
        cli._agent_error(exc)


def _print_groups(summary: dict[str, Any], metric: str) -> None:
    from rich.table import Table  # noqa: PLC0415

    search = metric == "hit_rate"
    columns = ("mean IoU", "search steps/item", "s/item") if search else ("VLM calls/item", "search steps/item", "s/item")
    keys = ("mean_iou", "search_steps_per_item", "seconds_per_item") if search else \
        ("vlm_calls_per_item", "search_steps_per_item", "seconds_per_item")
    table = Table("", metric, "n", "errors", *columns, title="summary")
    for name, group in {"overall": summary["overall"], **summary["categories"]}.items():
        value = group.get(metric)
        table.add_row(name, "–" if value is None else f"{100 * value:.1f}%", str(group["n"]), str(group["errors"]),
                      *("–" if group.get(k) is None else f"{group[k]:.2f}" for k in keys))
    out.print(table)


# ------------------------------------------------------------------------------------ commands
def eval_command(
    paths: Optional[list[Path]] = typer.Argument(None, metavar="DATASET", help="V* Bench folder, .jsonl file, .parquet or HF save_to_disk folder (with --compare: two or more run folders)."),
    vlm: Optional[str] = typer.Option(None, "--vlm", help="transformers:ID_OR_PATH or openai:MODEL@URL (default: transformers:Qwen/Qwen2.5-VL-3B-Instruct)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Run folder: results.jsonl, summary.json/.md/.svg, traces/."),
    tool: Optional[list[str]] = typer.Option(None, "--tool", help="ROLE=NAME, e.g. localizer=whole_image (repeat)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N items."),
    resume: bool = typer.Option(False, "--resume", help="Keep the finished items of --out and run the rest."),
    workers: int = typer.Option(1, "--workers", help=WORKERS_HELP),
    ray: bool = typer.Option(False, "--ray", help="Run on Ray: a local cluster, or --address."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster to join ('auto', 'ray://HOST:10001')."),
    ray_cpus: float = typer.Option(1.0, "--ray-cpus", help="CPUs per Ray actor (fractions allowed)."),
    ray_gpus: float = typer.Option(0.0, "--ray-gpus", help="GPUs per Ray actor (1 for a local VLM on a GPU node)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the option shuffling (recorded per item)."),
    traces: bool = typer.Option(True, "--traces/--no-traces", help="Write a trace per item under OUT/traces."),
    compare: bool = typer.Option(False, "--compare", help="Print the finished runs given as arguments side by side: --compare RUN_A RUN_B."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="With --compare: write the accuracy-vs-VLM-calls plot (SVG) here."),
) -> None:
    """Evaluate the agent on a multiple-choice set: accuracy per category, resumable, threads or Ray."""
    cli = _main()
    if compare:
        _compare(list(paths or []), plot)
        return
    if plot is not None:
        cli._fail("--plot goes with --compare; a run writes its own plot to OUT/summary.svg")
    if not paths or len(paths) != 1 or out_dir is None:
        cli._fail("give one DATASET and --out DIR (or --compare RUN_A RUN_B)")
    dataset = paths[0]
    run = _run_options(workers, ray, address, ray_cpus, ray_gpus)
    _check_out(out_dir)
    recipe = _recipe(vlm, tool, out_dir, traces)

    def work() -> dict[str, Any]:
        from lookcloser.eval.run import evaluate  # noqa: PLC0415

        with _progress("eval") as (on_start, on_row):
            return evaluate(dataset, out_dir, recipe, seed=seed, limit=limit, resume=resume, run=run,
                            on_start=on_start, on_row=on_row)

    summary = _guarded(work)
    _print_groups(summary, "accuracy")
    cli._note(f"results: {out_dir / 'results.jsonl'}; summary: {out_dir / 'summary.md'}")


def eval_search_command(
    dataset: Path = typer.Argument(..., help="A dataset whose items carry target boxes (V* Bench folder, text_dev items.jsonl, ...)."),
    out_dir: Path = typer.Option(..., "--out", help="Run folder: results.jsonl, summary.json/.md."),
    tool: Optional[list[str]] = typer.Option(None, "--tool", help="ROLE=NAME, e.g. localizer=grounding_dino (repeat)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N items."),
    resume: bool = typer.Option(False, "--resume", help="Keep the finished targets of --out and run the rest."),
    workers: int = typer.Option(1, "--workers", help=WORKERS_HELP),
    ray: bool = typer.Option(False, "--ray", help="Run on Ray: a local cluster, or --address."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster to join."),
    ray_cpus: float = typer.Option(1.0, "--ray-cpus", help="CPUs per Ray actor (fractions allowed)."),
    ray_gpus: float = typer.Option(0.0, "--ray-gpus", help="GPUs per Ray actor."),
) -> None:
    """Localizer only (no VLM): search each annotated target; hit = IoU > 0.5 with its box (V*'s search metric)."""
    cli = _main()
    run = _run_options(workers, ray, address, ray_cpus, ray_gpus)
    _check_out(out_dir)
    recipe = _recipe(None, tool, out_dir, traces=False)

    def work() -> dict[str, Any]:
        from lookcloser.eval.run import evaluate_search  # noqa: PLC0415

        with _progress("eval-search") as (on_start, on_row):
            return evaluate_search(dataset, out_dir, recipe, limit=limit, resume=resume, run=run,
                                   on_start=on_start, on_row=on_row)

    summary = _guarded(work)
    _print_groups(summary, "hit_rate")
    cli._note(f"results: {out_dir / 'results.jsonl'}; summary: {out_dir / 'summary.md'}")


def _compare(runs: list[Path], plot: Optional[Path]) -> None:
    from lookcloser.eval.summary import compare_table, load_summary, plot_svg  # noqa: PLC0415

    cli = _main()
    if len(runs) < 2:
        cli._fail("--compare needs at least two run folders: lookcloser eval --compare RUN_A RUN_B")
    loaded = _guarded(lambda: [(str(path), load_summary(path)) for path in runs])
    rows = compare_table(loaded)
    from rich.table import Table  # noqa: PLC0415

    table = Table(*rows[0], title="runs side by side")
    for row in rows[1:]:
        table.add_row(*row)
    out.print(table)
    if plot is not None:
        plot.write_text(plot_svg(loaded), encoding="utf-8")
        cli._note(f"plot written to {plot}")


# ------------------------------------------------------------------------------ many-image find
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")


def expand_images(values: list[str]) -> list[Path]:
    """Files as given, directories as their image files (sorted); a missing path is an error line."""
    cli = _main()
    paths: list[Path] = []
    for value in values:
        path = Path(value)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                cli._fail(f"directory {path} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
            paths.extend(found)
        elif not path.exists():
            cli._fail(f"image file not found: {path}")
        else:
            paths.append(path)
    return paths


def find_many(images: list[Path], target: Any, agent_kwargs: dict[str, Any], trace_dir: Path) -> None:
    """SEARCH for `target` in every image with one agent (models loaded once): one JSON line per image.

    A broken image is a line with `error` (the others still run); the exit status is 0 when at least
    one image was searched.
    """
    cli = _main()

    def build() -> Any:
        from lookcloser.agent import Agent  # noqa: PLC0415

        return Agent(**agent_kwargs, trace_dir=trace_dir, spelling="cli")

    agent = _guarded(build)
    failed = 0
    from rich.progress import Progress, TextColumn  # noqa: PLC0415

    with Progress(TextColumn("find"), *_bar_columns(), console=err) as progress:
        task = progress.add_task("find", total=len(images))
        for path in images:
            started = time.perf_counter()
            line: dict[str, Any] = {"image": str(path), "findings": [], "error": None}
            try:
                line["findings"] = [f.to_json() for f in agent.find(path, target)]
            except KeyboardInterrupt:
                cli._fail(f"interrupted after {progress.tasks[0].completed:.0f} of {len(images)} images")
            except Exception as exc:  # one broken image is one error line
                failed += 1
                line["error"] = " ".join(f"{type(exc).__name__}: {exc}".split())
            line["seconds"] = round(time.perf_counter() - started, 3)
            print(json.dumps(line, ensure_ascii=False), flush=True)
            progress.update(task, advance=1)
    cli._note(f"{len(images)} images searched, {failed} failed; traces under {trace_dir}")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
    app.command("eval-search")(eval_search_command)
