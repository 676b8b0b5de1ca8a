"""From result rows to `summary.json`, `summary.md` and `summary.svg`; and two runs side by side.

Why recomputed from `results.jsonl` (read here: `read_rows`) every time: the summary then always describes exactly the rows on
disk (a resumed run, a run finished on Ray), and `--compare` can read any two output folders.
Accuracy counts error rows as wrong: a run cannot look better by failing on hard items.
The plot is a small hand-written SVG (accuracy against VLM calls per item, one point per run), so
the eval needs no plotting library.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

from lookcloser.eval.datasets import DatasetError

__all__ = ["RESULTS_FILE", "ablation", "strategy", "baseline_index", "compare_table", "item_deltas", "load_summary", "plot_svg",
           "read_rows", "summarise", "write_summary"]

#: One JSON line per finished item in the run folder (written by lookcloser.eval.run).
RESULTS_FILE = "results.jsonl"

COST_FIELDS = ("vlm_calls", "tool_calls", "search_steps", "images_sent", "zoom_turns", "seconds")


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """The complete rows of a results file, the last row per id winning (a resumed item may be asked again);
    a line cut short by a kill is skipped (that item was not finished)."""
    path = Path(path)
    if not path.exists():
        return []
    rows: dict[str, dict[str, Any]] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and "id" in row:
                rows[str(row["id"])] = row
    return list(rows.values())


def _group(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    correct = sum(1 for r in rows if r.get("correct"))
    group: dict[str, Any] = {"accuracy": round(correct / n, 4) if n else None, "n": n, "correct": correct,
                             "errors": sum(1 for r in rows if r.get("error"))}
    for name in COST_FIELDS:
        group[f"{name}_per_item"] = round(sum(float(r.get(name) or 0) for r in rows) / n, 3) if n else None
    modes: dict[str, int] = {}
    for row in rows:
        if row.get("choice_mode"):
            modes[row["choice_mode"]] = modes.get(row["choice_mode"], 0) + 1
    group["choice_modes"] = dict(sorted(modes.items()))
    if any("hit" in r for r in rows):  # eval-search rows
        scored = [r for r in rows if r.get("iou") is not None or "hit" in r]
        group["hits"] = sum(1 for r in scored if r.get("hit"))
        group["hit_rate"] = round(group["hits"] / n, 4) if n else None
        ious = [float(r["iou"]) for r in rows if r.get("iou") is not None]
        group["mean_iou"] = round(sum(ious) / len(ious), 4) if ious else None
        group["cue_calls_per_item"] = round(sum(int(r.get("cue_calls") or 0) for r in rows) / n, 3) if n else None
        group.pop("accuracy", None)
        group.pop("correct", None)
    return group


def summarise(rows: list[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
    categories: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        categories.setdefault(str(row.get("category") or "all"), []).append(row)
    return {"overall": _group(rows), "categories": {name: _group(group) for name, group in sorted(categories.items())},
            "settings": settings}


def write_summary(out_dir: str | Path, settings: dict[str, Any], *, title: str = "lookcloser eval") -> dict[str, Any]:
    """Summarise DIR/results.jsonl into DIR/summary.json, DIR/summary.md and DIR/summary.svg."""
    out_dir = Path(out_dir)
    rows = read_rows(out_dir / RESULTS_FILE)
    summary = summarise(rows, settings)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False, default=str) + "\n",
                                          encoding="utf-8")
    (out_dir / "summary.md").write_text(_markdown(summary, rows, title), encoding="utf-8")
    if "accuracy" in summary["overall"]:
        (out_dir / "summary.svg").write_text(plot_svg([(out_dir.name, summary)]), encoding="utf-8")
    return summary


def load_summary(out_dir: str | Path) -> dict[str, Any]:
    path = Path(out_dir) / "summary.json"
    if not path.is_file():
        raise DatasetError(f"{path} not found: is {out_dir} the --out folder of a finished `lookcloser eval`?")
    return json.loads(path.read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------ markdown
def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "–"
    return str(value)


def _table(groups: dict[str, dict[str, Any]]) -> list[str]:
    fields = [k for k in next(iter(groups.values()))]
    lines = ["| | " + " | ".join(fields) + " |", "|---" * (len(fields) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(_cell(g.get(k)) for k in fields) + " |" for name, g in groups.items()]
    return lines


def _markdown(summary: dict[str, Any], rows: list[dict[str, Any]], title: str) -> str:
    settings = summary["settings"]
    lines = [f"# {title}", "", *_table({"overall": summary["overall"], **summary["categories"]}), ""]
    if settings.get("retried_errors"):
        lines += [f"Resumed: {settings['retried_errors']} error rows of the earlier run were run again.", ""]
    errors = [r for r in rows if r.get("error")]
    if errors:
        lines += [f"## Errors ({len(errors)})", ""] + [f"- `{r['id']}`: {r['error']}" for r in errors[:50]] + [""]
    lines += ["## Settings", "", "```json", json.dumps(settings, indent=2, ensure_ascii=False, default=str), "```", ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------- plot
def plot_svg(runs: list[tuple[str, dict[str, Any]]], width: int = 480, height: int = 320) -> str:
    """Accuracy (y, 0-100 %) against VLM calls per item (x), one labelled point per run."""
    points = [(label, s["overall"].get("vlm_calls_per_item") or 0.0, s["overall"].get("accuracy") or 0.0)
              for label, s in runs]
    x_max = max([p[1] for p in points] + [1.0]) * 1.25
    left, right, top, bottom = 56, 20, 20, 44
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(value: float) -> float:
        return left + plot_w * value / x_max

    def sy(value: float) -> float:
        return top + plot_h * (1 - value)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="11">', f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="black"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="black"/>']
    for tick in range(0, 101, 20):
        y = sy(tick / 100)
        parts.append(f'<line x1="{left - 4}" y1="{y:.1f}" x2="{left}" y2="{y:.1f}" stroke="black"/>'
                     f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>')
    for i in range(5):
        value = x_max * i / 4
        x = sx(value)
        parts.append(f'<line x1="{x:.1f}" y1="{top + plot_h}" x2="{x:.1f}" y2="{top + plot_h + 4}" stroke="black"/>'
                     f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{value:.2g}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 8}" text-anchor="middle">VLM calls per item</text>')
    parts.append(f'<text x="14" y="{top + plot_h / 2}" text-anchor="middle" '
                 f'transform="rotate(-90 14 {top + plot_h / 2})">accuracy (%)</text>')
    for label, x, y in points:
        parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4" fill="#1f77b4"><title>{escape(label)}: '
                     f'{100 * y:.1f}% at {x:.2f} VLM calls/item</title></circle>'
                     f'<text x="{sx(x) + 7:.1f}" y="{sy(y) - 6:.1f}">{escape(label)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


# -------------------------------------------------------------------------------------- compare
def ablation(summary: dict[str, Any]) -> str:
    """The evidence ablation a run was measured with (`settings.config.ablate`; "none" for older runs)."""
    return str(((summary.get("settings") or {}).get("config") or {}).get("ablate") or "none")


def baseline_index(runs: list[tuple[str, dict[str, Any]]]) -> int:
    """The run the others are compared with: the first without an ablation, else the first."""
    return next((i for i, (_, s) in enumerate(runs) if ablation(s) == "none"), 0)


def item_deltas(base_rows: list[dict[str, Any]], rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Item by item against the baseline run: `lost` = ids right there and wrong here, `gained` the reverse
    (ids in both runs only). For an ablation, `lost` are the items whose right answer needed the evidence."""
    base = {str(r["id"]): bool(r.get("correct")) for r in base_rows}
    here = {str(r["id"]): bool(r.get("correct")) for r in rows}
    both = sorted(set(base) & set(here))
    return {"lost": [i for i in both if base[i] and not here[i]], "gained": [i for i in both if here[i] and not base[i]]}


def strategy(summary: dict[str, Any]) -> str:
    """The strategy a run used ("vstar" for runs recorded before strategies existed)."""
    config = (summary.get("settings") or {}).get("config") or {}
    return str(config.get("strategy") or "vstar")


def compare_table(runs: list[tuple[str, dict[str, Any]]],
                  rows: list[list[dict[str, Any]]] | None = None) -> list[list[str]]:
    """Rows [metric, run A, run B, ...] for the ablation of each run, overall and each category, and the
    settings that differ. Accuracy (hit rate) of every run but the baseline (`baseline_index`: the first run
    without an ablation) carries its difference to the baseline in points; with `rows` (each run's result
    rows, in the same order) each group also counts the items `lost` / `gained` against the baseline."""
    base = baseline_index(runs)
    header = ["", *[label + (" (baseline)" if i == base else "") for i, (label, _) in enumerate(runs)]]
    table = [header, ["strategy", *[strategy(s) for _, s in runs]], ["ablate", *[ablation(s) for _, s in runs]]]
    groups = ["overall", *sorted({c for _, s in runs for c in s.get("categories", {})})]
    metrics = [k for k in runs[0][1]["overall"] if k != "choice_modes"] + ["choice_modes"]
    for group in groups:
        for metric in metrics:
            values = [(s["overall"] if group == "overall" else s.get("categories", {}).get(group, {})).get(metric)
                      for _, s in runs]
            if metric in ("accuracy", "hit_rate"):
                shown = ["–" if v is None else f"{100 * v:.1f}%" + _delta(v, values[base], i == base)
                         for i, v in enumerate(values)]
            else:
                shown = [_cell(v) for v in values]
            table.append([f"{group} {metric}", *shown])
        if rows is not None:
            table += _flips(group, rows, base)
    flat = [_flatten(s.get("settings", {})) for _, s in runs]
    for key in sorted({k for f in flat for k in f}):
        values = [f.get(key) for f in flat]
        if len({json.dumps(v, sort_keys=True, default=str) for v in values}) > 1:
            table.append([f"settings.{key}", *[_cell(v) for v in values]])
    return table


def _delta(value: float, base: float | None, is_base: bool) -> str:
    if is_base or base is None:
        return ""
    return f" ({100 * (value - base):+.1f} pp)"


def _flips(group: str, rows: list[list[dict[str, Any]]], base: int) -> list[list[str]]:
    """The `lost` and `gained` rows of one group (counts of items against the baseline run)."""
    def of_group(run_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in run_rows if group == "overall" or str(r.get("category") or "all") == group]

    deltas = [None if i == base else item_deltas(of_group(rows[base]), of_group(run_rows))
              for i, run_rows in enumerate(rows)]
    return [[f"{group} {kind} vs baseline", *["–" if d is None else str(len(d[kind])) for d in deltas]]
            for kind in ("lost", "gained")]


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat
