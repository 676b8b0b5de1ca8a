"""Evaluation at scale: `lookcloser eval` (questions), `lookcloser eval-search` (localizer only).

Modules: `items` (the `Item` shape), `datasets` (read V* Bench folders, JSON Lines, Hugging Face data into
`Item`s; HR-Bench and MME-RealWorld through `highres`), `scoring` (what one row means: ask an item — shuffle,
ask, map back, score — or search one annotated target, IoU against the truth; through the agent's own
`batch_as_completed`), `run` (one call per evaluation: `evaluate`, `evaluate_search`; the append-only
results.jsonl, `--resume`, Ray actors, what a number was measured with), `summary` (summary.json / .md / .svg,
`read_rows`, and `--compare`). The commands are in
`lookcloser.entrypoints.cli.main`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AgentRecipe": "lookcloser.eval.run",
    "DatasetError": "lookcloser.eval.datasets",
    "Item": "lookcloser.eval.datasets",
    "RunOptions": "lookcloser.eval.run",
    "TargetBox": "lookcloser.eval.datasets",
    "ask_item": "lookcloser.eval.scoring",
    "evaluate": "lookcloser.eval.run",
    "evaluate_search": "lookcloser.eval.run",
    "load_items": "lookcloser.eval.datasets",
    "read_rows": "lookcloser.eval.summary",
    "shown_order": "lookcloser.eval.scoring",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:  # PEP 562: `lookcloser --help` imports none of the eval modules
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lookcloser.eval' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
