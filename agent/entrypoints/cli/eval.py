"""`lookcloser eval` and `lookcloser eval-search`: run an evaluation set into a run folder (resumable,
threads or Ray) and print its summary; `eval --compare` puts finished runs side by side.

Every item failing is exit status 2 after the summary is printed (`_finish`). `lookcloser.eval` is imported
inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import typer

from lookcloser.core.errors import InputError
from lookcloser.entrypoints.cli.errors import CommandFailed
from lookcloser.entrypoints.cli.output import _note, _progress, out
from lookcloser.entrypoints.cli.params import VLM_HELP, WORKERS_HELP, _out_folder, _parameter, _settings


def eval_command(
    paths: Optional[list[Path]] = typer.Argument(None, metavar="DATASET", help="V* Bench folder, .jsonl file, .parquet or HF save_to_disk folder, HR-Bench .tsv, MME-RealWorld .json (with --compare: two or more run folders)."),
    vlm: Optional[str] = typer.Option(None, "--vlm", help=VLM_HELP),
    out_dir: Optional[Path] = typer.Option(None, "--out", parser=_parameter(_out_folder), metavar="DIR",
                                           help="Run folder: results.jsonl, summary.json/.md/.svg, traces/."),
    tool: Optional[list[str]] = typer.Option(None, "--tool", help="ROLE=NAME, e.g. localizer=whole_image (repeat)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N items."),
    resume: bool = typer.Option(False, "--resume", help="Keep the finished items of --out, ask its error rows again, run the rest."),
    workers: int = typer.Option(1, "--workers", help=WORKERS_HELP),
    ray: bool = typer.Option(False, "--ray", help="Run on Ray: a local cluster, or --address."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster to join ('auto', 'ray://HOST:10001')."),
    ray_cpus: float = typer.Option(1.0, "--ray-cpus", help="CPUs per Ray actor (fractions allowed)."),
    ray_gpus: float = typer.Option(0.0, "--ray-gpus", help="GPUs per Ray actor (1 for a local VLM on a GPU node)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the option shuffling (recorded per item)."),
    traces: bool = typer.Option(True, "--traces/--no-traces", help="Write a trace per item under OUT/traces."),
    compare: bool = typer.Option(False, "--compare", help="Print the finished runs given as arguments side by side: --compare RUN_A RUN_B."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="With --compare: write the accuracy-vs-VLM-calls plot (SVG) here."),
    strategy: str = typer.Option("vstar", "--strategy", metavar="vstar|zoom",
                                 help="How each question is answered: vstar (SHOW -> SEARCH -> TELL) or zoom (the VLM "
                                      "zooms and calls the experts itself). Recorded with the run; compare runs "
                                      "with --compare."),
    ablate: str = typer.Option("none", "--ablate", metavar="none|crop-black|no-search",
                               help="Evidence ablation: crop-black hands TELL black images of the crops' sizes; "
                                    "no-search answers from SHOW alone. Compare with the normal run: --compare."),
) -> None:
    """Evaluate the agent on a multiple-choice set: accuracy per category, resumable, threads or Ray.
    Exit status 2 when every item failed."""
    from lookcloser.core.config import ABLATIONS, STRATEGIES  # noqa: PLC0415

    if ablate not in ABLATIONS:
        raise InputError(f"--ablate must be one of {', '.join(ABLATIONS)}, got {ablate!r}")
    if strategy not in STRATEGIES:
        raise InputError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if strategy == "zoom" and ablate != "none":
        raise InputError(f"--ablate {ablate} applies to the vstar strategy (SHOW -> SEARCH -> TELL), not to --strategy zoom")
    if compare:
        if ablate != "none":
            raise InputError("--ablate goes with a run, not with --compare (each run's summary records its own)")
        if strategy != "vstar":
            raise InputError("--strategy goes with a run, not with --compare (each run's summary records its own)")
        _compare(list(paths or []), plot)
        return
    if plot is not None:
        raise InputError("--plot goes with --compare; a run writes its own plot to OUT/summary.svg")
    if not paths or len(paths) != 1 or out_dir is None:
        raise InputError("give one DATASET and --out DIR (or --compare RUN_A RUN_B)")
    from lookcloser.eval.run import RunOptions, evaluate  # noqa: PLC0415

    run = RunOptions(workers=workers, ray=ray, address=address, cpus_per_actor=ray_cpus, gpus_per_actor=ray_gpus)
    recipe = _recipe(vlm, tool, out_dir, traces)
    if ablate != "none":
        recipe.config["ablate"] = ablate
    recipe.config["strategy"] = strategy
    summary = _evaluated("eval", lambda on_start, on_row: evaluate(
        paths[0], out_dir, recipe, seed=seed, limit=limit, resume=resume, run=run, on_start=on_start, on_row=on_row))
    _print_groups(summary, "accuracy")
    _finish(summary, out_dir)


def eval_search_command(
    dataset: Path = typer.Argument(..., help="A dataset whose items carry target boxes (V* Bench folder, text_dev items.jsonl, ...)."),
    out_dir: Path = typer.Option(..., "--out", parser=_parameter(_out_folder), metavar="DIR", help="Run folder: results.jsonl, summary.json/.md."),
    tool: Optional[list[str]] = typer.Option(None, "--tool", help="ROLE=NAME, e.g. localizer=grounding_dino (repeat)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N items."),
    resume: bool = typer.Option(False, "--resume", help="Keep the finished targets of --out, search its error rows again, run the rest."),
    workers: int = typer.Option(1, "--workers", help=WORKERS_HELP),
    ray: bool = typer.Option(False, "--ray", help="Run on Ray: a local cluster, or --address."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster to join."),
    ray_cpus: float = typer.Option(1.0, "--ray-cpus", help="CPUs per Ray actor (fractions allowed)."),
    ray_gpus: float = typer.Option(0.0, "--ray-gpus", help="GPUs per Ray actor."),
) -> None:
    """Localizer only (no VLM): search each annotated target; hit = IoU > 0.5 with its box (V*'s search metric).
    Exit status 2 when every target failed."""
    from lookcloser.eval.run import RunOptions, evaluate_search  # noqa: PLC0415

    run = RunOptions(workers=workers, ray=ray, address=address, cpus_per_actor=ray_cpus, gpus_per_actor=ray_gpus)
    recipe = _recipe(None, tool, out_dir, traces=False)
    summary = _evaluated("eval-search", lambda on_start, on_row: evaluate_search(
        dataset, out_dir, recipe, limit=limit, resume=resume, run=run, on_start=on_start, on_row=on_row))
    _print_groups(summary, "hit_rate")
    _finish(summary, out_dir)


def _recipe(vlm: Optional[str], tool: Optional[list[str]], out_dir: Path, traces: bool) -> Any:
    from lookcloser.eval.run import AgentRecipe  # noqa: PLC0415

    settings = _settings(None, tool)  # --tool ROLE=NAME and ROLE.OPTION=VALUE, as for ask
    return AgentRecipe(vlm=vlm, tools=settings.tools, config=dict(settings.config),
                       trace_dir=str((out_dir / "traces").resolve()) if traces else None)


def _evaluated(label: str, work: Callable[[Any, Any], dict[str, Any]]) -> dict[str, Any]:
    """Run an evaluation under a progress bar; Ctrl-C says what was kept."""
    try:
        with _progress(label) as (on_start, on_row):
            return work(on_start, on_row)
    except KeyboardInterrupt:
        raise CommandFailed("interrupted: every finished item is kept in results.jsonl; run again with --resume "
                            "to continue") from None


def _finish(summary: dict[str, Any], out_dir: Path) -> None:
    """Where the results are, how many error rows a resume asked again; status 2 when every item failed."""
    from lookcloser.eval.summary import RESULTS_FILE, read_rows  # noqa: PLC0415

    retried = summary["settings"].get("retried_errors")
    if retried:
        _note(f"--resume: {retried} error rows of the earlier run were run again")
    _note(f"results: {out_dir / RESULTS_FILE}; summary: {out_dir / 'summary.md'}")
    overall = summary["overall"]
    if overall["n"] and overall["errors"] == overall["n"]:
        first = next((r["error"] for r in read_rows(out_dir / RESULTS_FILE) if r.get("error")), "")
        first = first if len(first) <= 300 else first[:299] + "…"
        raise CommandFailed(f"every item failed ({overall['errors']} of {overall['n']} rows are errors), so nothing "
                            f"was measured; the first: {first} — fix the cause and run again with --resume, which "
                            "runs the error rows again")


def _compare(runs: list[Path], plot: Optional[Path]) -> None:
    from rich.table import Table  # noqa: PLC0415

    from lookcloser.eval.summary import (RESULTS_FILE, ablation, baseline_index, compare_table,  # noqa: PLC0415
                                         item_deltas, load_summary, plot_svg, read_rows)

    if len(runs) < 2:
        raise InputError("--compare needs at least two run folders: lookcloser eval --compare RUN_A RUN_B")
    loaded = [(str(path), load_summary(path)) for path in runs]
    results = [read_rows(path / RESULTS_FILE) for path in runs]
    rows = compare_table(loaded, results)
    table = Table(*rows[0], title="runs side by side (pp: points against the baseline run)")
    for row in rows[1:]:
        table.add_row(*row)
    out.print(table)
    base = baseline_index(loaded)
    for i, (label, _) in enumerate(loaded):
        lost = [] if i == base else item_deltas(results[base], results[i])["lost"]
        if lost:
            shown = ", ".join(lost[:20]) + (f", … ({len(lost) - 20} more)" if len(lost) > 20 else "")
            _note(f"{label}: {len(lost)} item(s) right in {loaded[base][0]} are wrong here: {shown}")
    if plot is not None:
        labelled = [(label if ablation(s) == "none" else f"{label} ({ablation(s)})", s) for label, s in loaded]
        plot.write_text(plot_svg(labelled), encoding="utf-8")
        _note(f"plot written to {plot}")


def _print_groups(summary: dict[str, Any], metric: str) -> None:
    from rich.table import Table  # noqa: PLC0415

    search = metric == "hit_rate"
    zoomed = bool(summary["overall"].get("zoom_turns_per_item"))  # the zoom strategy: its turns, not search steps
    columns = ("mean IoU", "search steps/item", "s/item") if search else \
        ("VLM calls/item", "images/item", "zoom turns/item" if zoomed else "search steps/item", "s/item")
    keys = ("mean_iou", "search_steps_per_item", "seconds_per_item") if search else \
        ("vlm_calls_per_item", "images_sent_per_item", "zoom_turns_per_item" if zoomed else "search_steps_per_item",
         "seconds_per_item")
    table = Table("", metric, "n", "errors", *columns, title="summary")
    for name, group in {"overall": summary["overall"], **summary["categories"]}.items():
        value = group.get(metric)
        table.add_row(name, "–" if value is None else f"{100 * value:.1f}%", str(group["n"]), str(group["errors"]),
                      *("–" if group.get(k) is None else f"{group[k]:.2f}" for k in keys))
    out.print(table)
