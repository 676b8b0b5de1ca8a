"""A run's setup and what is built from it: may import core, imaging, tools, vlm and tracing.

- `context`: `Context` (the one settings model: the VLM, each role's tool and options, `AgentConfig`;
  LangGraph's `context_schema`) and `Services` (the models and tools of one setup, built once).
- `settings`: the CLI's TOML file and `--tool` flags read into a setup, checked before any model loads.
- `serving`: the operator of a served graph (environment) and what a client's context may change.
- `expert_tools`: each expert wrapped as a LangChain tool, so its calls are traced runs.

`Context`, `Services`, `as_context` and `services` are importable from here as well as from `context`.
"""

from __future__ import annotations

from lookcloser.core.lazy import lazy_exports

__all__ = ["Context", "Services", "as_context", "services"]

# PEP 562: `import lookcloser.runtime.settings` stays cheap
__getattr__, __dir__ = lazy_exports(__name__, dict.fromkeys(__all__, "lookcloser.runtime.context"))
