"""Name → factory, per role. Built-ins register here; third parties use the entry-point group
`lookcloser.tools` (an entry point named `ROLE:NAME` pointing at a factory; the factory is called
with a ToolContext and the user's options and returns the tool).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable

from lookcloser.errors import ToolNotFoundError
from lookcloser.tools.base import PROTOCOLS, ROLES

ENTRY_POINT_GROUP = "lookcloser.tools"

Factory = Callable[..., Any]


@dataclass
class ToolContext:
    """What a factory may use: the shared VLM (None when the agent has none) and the other tools.

    `tool(role)` builds (once) and returns the tool configured for another role, so a localizer
    can use the agent's OCR or detector without loading a second copy.
    """

    vlm: Any = None
    resolve: Callable[[str], Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def tool(self, role: str) -> Any:
        if self.resolve is None:
            raise LookupError(f"no '{role}' tool is available in this context")
        return self.resolve(role)


class ToolRegistry:
    def __init__(self) -> None:
        self._factories: dict[str, dict[str, Factory]] = {role: {} for role in ROLES}
        self._entry_points_loaded = False

    def register(self, role: str, name: str, factory: Factory, *, replace: bool = False) -> None:
        self._check_role(role)
        if name in self._factories[role] and not replace:
            raise ValueError(f"a {role} named '{name}' is already registered (pass replace=True)")
        self._factories[role][name] = factory

    def names(self, role: str) -> list[str]:
        self._check_role(role)
        self._load_entry_points()
        return sorted(self._factories[role])

    def create(self, role: str, spec: Any, context: ToolContext | None = None, **options: Any) -> Any:
        """Build the tool for `spec`: a registered name, or an already-built instance (returned as is)."""
        self._check_role(role)
        if not isinstance(spec, str):
            if not hasattr(spec, "name"):
                raise TypeError(f"a {role} instance must have a `name` attribute, got {type(spec).__name__}")
            if not isinstance(spec, PROTOCOLS[role]):
                method = [m for m in PROTOCOLS[role].__dict__ if not m.startswith("_") and m != "name"]
                raise TypeError(f"{type(spec).__name__} does not implement the {role} protocol (needs {method})")
            return spec
        factory = self.factory(role, spec)
        context = context or ToolContext()
        if "context" in inspect.signature(factory).parameters:
            return factory(context=context, **options)
        return factory(**options)

    def factory(self, role: str, name: str) -> Factory:
        """The factory registered as `name` for `role`; ToolNotFoundError lists the known names."""
        self._check_role(role)
        self._load_entry_points()
        factory = self._factories[role].get(name)
        if factory is None:
            known = ", ".join(self.names(role)) or "none"
            raise ToolNotFoundError(f"unknown {role} '{name}'; known {role}s: {known}")
        return factory

    def _check_role(self, role: str) -> None:
        if role not in self._factories:
            raise ToolNotFoundError(f"unknown tool role '{role}'; roles are: {', '.join(ROLES)}")

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
            role, _, name = entry.name.partition(":")
            if role not in self._factories or not name:
                raise ValueError(
                    f"entry point '{entry.name}' in group {ENTRY_POINT_GROUP} must be named 'ROLE:NAME' "
                    f"with ROLE one of {', '.join(ROLES)}"
                )
            self._factories[role].setdefault(name, _lazy(entry))


def _lazy(entry: metadata.EntryPoint) -> Factory:
    def factory(context: ToolContext | None = None, **options: Any) -> Any:
        target = entry.load()
        if "context" in inspect.signature(target).parameters:
            return target(context=context, **options)
        return target(**options)

    factory.__name__ = f"entry_point_{entry.name}"
    return factory


registry = ToolRegistry()


def register_tool(role: str, name: str, factory: Factory | None = None, *, replace: bool = False):
    """Register a factory; usable as a decorator: `@register_tool("ocr", "mine")`."""
    if factory is not None:
        registry.register(role, name, factory, replace=replace)
        return factory

    def decorate(func: Factory) -> Factory:
        registry.register(role, name, func, replace=replace)
        return func

    return decorate
