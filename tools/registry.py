"""Name → factory, per role. Built-ins register here; third parties use the entry-point group
`lookcloser.tools` (an entry point named `ROLE:NAME` pointing at a factory; the factory is called
with a ToolContext and the user's options and returns the tool).

Entry points are read once, on the first lookup, and each is imported only when its tool is asked
for, so one plugin cannot slow down or break the others. A broken entry point is reported once with
`warnings.warn` (naming it and the error) and skipped: a malformed name when the entry points are
read, an import error (or a non-callable target) when its tool is first asked for. Asking for a
broken tool by name raises ToolNotFoundError carrying the entry point's error.

A registration may carry a `ToolInfo` (tools/info.py: backend, default model, options, what it needs
installed): `check_options` checks options against the tool's typed options (tools/options.py); `listing`
feeds `lookcloser tools`.
"""

from __future__ import annotations

import inspect
import threading
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable

from lookcloser.core.errors import ToolNotFoundError
from lookcloser.tools.base import PROTOCOLS, ROLES
from pydantic import BaseModel

from lookcloser.tools.info import ToolInfo
from lookcloser.tools.options import check, options_model

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
        self._factories: dict[str, dict[str, Factory | _EntryPoint]] = {role: {} for role in ROLES}
        self._entry_points_loaded = False
        self._lock = threading.RLock()
        #: (role, name) -> why that tool's entry point is unusable; a tool name -> why its entry point
        #: was skipped before a role could be read from it (malformed name).
        self._broken: dict[tuple[str, str], str] = {}
        self._skipped: dict[str, str] = {}
        self._info: dict[tuple[str, str], ToolInfo] = {}

    def register(self, role: str, name: str, factory: Factory, *, replace: bool = False,
                 info: ToolInfo | None = None) -> None:
        """`info` describes the tool (backend, default model, options, requirements) for `lookcloser tools`
        and the settings check; without it the options are read from the factory's signature."""
        self._check_role(role)
        if name in self._factories[role] and not replace:
            raise ValueError(f"a {role} named '{name}' is already registered (pass replace=True)")
        self._factories[role][name] = factory
        self._broken.pop((role, name), None)
        if info is not None:
            self._info[(role, name)] = info
        else:
            self._info.pop((role, name), None)

    def info(self, role: str, name: str) -> ToolInfo | None:
        """What the tool declared when it was registered, or None."""
        return self._info.get((role, name))

    def options_model(self, role: str, name: str) -> type[BaseModel] | None:
        """The tool's options as a pydantic model (declared in its ToolInfo, else read from its factory's
        signature); None when the tool passes options on to its backend unchecked."""
        info = self.info(role, name)
        if info is not None and info.options is not None:
            return info.options()
        return options_model(self.factory(role, name), name=f"{role}.{name} options")

    def check_options(self, role: str, name: str, options: dict[str, Any]) -> dict[str, Any]:
        """The options as the tool takes them, checked once: an unknown option, a wrong type, a non-finite
        number or a value out of range is a one-line SettingsError naming the role, tool, option and value."""
        if not options:
            return {}
        return check(self.options_model(role, name), options, role=role, tool=name)

    def listing(self) -> list[tuple[str, str, ToolInfo | None, str | None]]:
        """Every tool by role, without importing any plugin: (role, name, info, plugin origin or None)."""
        self._load_entry_points()
        rows = []
        for role in ROLES:
            for name in sorted(self._factories[role]):
                factory = self._factories[role][name]
                origin = _describe(factory.entry) if isinstance(factory, _EntryPoint) else None
                rows.append((role, name, self.info(role, name), origin))
        return rows

    def names(self, role: str) -> list[str]:
        """Registered names for `role` (plugins not imported yet included; broken ones left out)."""
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
        options = self.check_options(role, spec, options)
        context = context or ToolContext()
        if "context" in inspect.signature(factory).parameters:
            return factory(context=context, **options)
        return factory(**options)

    def factory(self, role: str, name: str) -> Factory:
        """The factory registered as `name` for `role` (a plugin's entry point is imported now).

        ToolNotFoundError lists the known names, or carries the error of the name's broken entry point.
        """
        self._check_role(role)
        self._load_entry_points()
        with self._lock:
            factory = self._factories[role].get(name)
            if isinstance(factory, _EntryPoint):
                factory = self._load(role, name, factory)
        if factory is None:
            broken = self._broken.get((role, name)) or self._skipped.get(name)
            if broken:
                raise ToolNotFoundError(f"{role} '{name}' is not available: {broken}")
            known = ", ".join(self.names(role)) or "none"
            raise ToolNotFoundError(f"unknown {role} '{name}'; known {role}s: {known}")
        return factory

    def _check_role(self, role: str) -> None:
        if role not in self._factories:
            raise ToolNotFoundError(f"unknown tool role '{role}'; roles are: {', '.join(ROLES)}")

    def _load_entry_points(self) -> None:
        with self._lock:
            if self._entry_points_loaded:
                return
            self._entry_points_loaded = True
            try:
                entries = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
            except Exception as exc:  # noqa: BLE001 - a broken installed distribution must not stop built-ins
                _warn(f"could not read the '{ENTRY_POINT_GROUP}' entry points, so no plugin tools are available: "
                      f"{type(exc).__name__}: {exc}")
                return
            for entry in entries:
                role, _, name = (part.strip() for part in entry.name.partition(":"))
                if role not in self._factories or not name:
                    why = (f"entry point '{_describe(entry)}' in group {ENTRY_POINT_GROUP} is skipped: it must be "
                           f"named 'ROLE:NAME' with ROLE one of {', '.join(ROLES)}")
                    self._skipped[name or role] = why
                    _warn(why)
                    continue
                self._factories[role].setdefault(name, _EntryPoint(entry))

    def _load(self, role: str, name: str, pending: _EntryPoint) -> Factory | None:
        """Import a plugin's factory; on failure warn once, forget the name and remember why."""
        try:
            target = pending.entry.load()
            if not callable(target):
                raise TypeError(f"it points at an object of type {type(target).__name__}, not a factory")
        except Exception as exc:  # noqa: BLE001 - any error inside a third-party import is reported, not raised
            why = f"entry point '{_describe(pending.entry)}' failed to load: {type(exc).__name__}: {exc}"
            self._broken[(role, name)] = why
            del self._factories[role][name]
            _warn(f"skipping {role} '{name}': {why}")
            return None
        self._factories[role][name] = target
        return target


class _EntryPoint:
    """A plugin's factory before its module is imported."""

    def __init__(self, entry: metadata.EntryPoint) -> None:
        self.entry = entry


def _describe(entry: metadata.EntryPoint) -> str:
    dist = getattr(entry, "dist", None)
    origin = f" from {dist.name}" if dist is not None and getattr(dist, "name", None) else ""
    return f"{entry.name} = {entry.value}{origin}"


def _warn(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=3)


registry = ToolRegistry()


def register_tool(role: str, name: str, factory: Factory | None = None, *, replace: bool = False,
                  info: ToolInfo | None = None):
    """Register a factory; usable as a decorator: `@register_tool("ocr", "mine")`."""
    if factory is not None:
        registry.register(role, name, factory, replace=replace, info=info)
        return factory

    def decorate(func: Factory) -> Factory:
        registry.register(role, name, func, replace=replace, info=info)
        return func

    return decorate
