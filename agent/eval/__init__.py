"""Evaluation at scale: `lookcloser eval` (questions), `lookcloser eval-search` (localizer only).

Small modules with one job each: `datasets` (read V* Bench folders, JSON Lines, Hugging Face data
into `Item`s), `runner` (ask one item: shuffle, ask, map back, score; a thread pool around it),
`search_eval` (search one annotated target, IoU against the truth), `results` (the append-only
results.jsonl), `ray_runner` (the same step on Ray actors), `settings` (what a number was measured
with), `summary` (summary.json / .md / .svg and --compare), `run` (one call per evaluation: `evaluate`, `evaluate_search`).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AgentRecipe": "lookcloser.eval.ray_runner",
    "DatasetError": "lookcloser.eval.datasets",
    "Item": "lookcloser.eval.datasets",
    "RunOptions": "lookcloser.eval.run",
    "TargetBox": "lookcloser.eval.datasets",
    "ask_item": "lookcloser.eval.runner",
    "evaluate": "lookcloser.eval.run",
    "evaluate_search": "lookcloser.eval.run",
    "load_items": "lookcloser.eval.datasets",
    "shown_order": "lookcloser.eval.runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:  # PEP 562: `lookcloser --help` imports none of the eval modules
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lookcloser.eval' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
