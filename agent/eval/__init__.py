"""Evaluation at scale: `lookcloser eval` (questions), `lookcloser eval-search` (localizer only).

Modules: `items` (the `Item` shape), `datasets` (read V* Bench folders, JSON Lines, Hugging Face data into
`Item`s; HR-Bench and MME-RealWorld through `highres`), `scoring` (what one row means: ask an item — shuffle,
ask, map back, score — or search one annotated target, IoU against the truth; through the agent's own
`batch_as_completed`), `run` (one call per evaluation: `evaluate`, `evaluate_search`; the append-only
results.jsonl, `--resume`, Ray actors, what a number was measured with), `summary` (summary.json / .md / .svg,
`read_rows`, and `--compare`). The commands are in `lookcloser.entrypoints.cli.eval`. May import the Agent
and everything below it.
"""

from __future__ import annotations

from lookcloser.core.lazy import lazy_exports

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

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)  # `lookcloser --help` imports no eval module
