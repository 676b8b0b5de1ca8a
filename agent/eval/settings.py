"""What a number was measured with: models, tools and their config, prompt hashes, seed, versions, git revision.

Why: V* / ZoomEye scores move by several points with the prompt, the precision or the seed; a
result without these facts cannot be reproduced or compared. They go into `summary.json`.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
from importlib import metadata, resources
from pathlib import Path
from typing import Any

__all__ = ["collect_settings", "prompt_hashes"]

PACKAGES = ("lookcloser", "torch", "transformers", "langgraph", "langchain-core", "rapidocr",
            "onnxruntime", "openai", "ray", "datasets")


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


def git_revision() -> str | None:
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


def _describe(obj: Any) -> Any:
    describe = getattr(obj, "describe", None)
    try:
        return describe() if callable(describe) else type(obj).__name__
    except Exception as exc:  # describing must never break an eval
        return {"describe_error": str(exc)}


def collect_settings(agent: Any, **extra: Any) -> dict[str, Any]:
    """Settings of `agent` (VLM, tools as configured and as built, AgentConfig) plus `extra` (dataset, seed...)."""
    services = agent.services
    tools: dict[str, Any] = {}
    for role, spec in services.tool_specs.items():
        entry: dict[str, Any] = {"name": spec if isinstance(spec, str) or spec is None else type(spec).__name__,
                                 "options": services.tool_options.get(role, {})}
        built = next((tool for (r, _), tool in services._tools.items() if r == role), None)  # noqa: SLF001
        if built is not None:
            entry["described"] = _describe(built)
        tools[role] = entry
    vlm_spec = agent.context.vlm
    return {
        "vlm": {"spec": vlm_spec if isinstance(vlm_spec, str) or vlm_spec is None else type(vlm_spec).__name__,
                "described": _describe(agent.vlm)},
        "tools": tools,
        "config": agent.config.model_dump(mode="json"),
        "prompts": prompt_hashes(),
        "versions": _versions(),
        "python": platform.python_version(),
        "git_revision": git_revision(),
        **extra,
    }
