"""The graph's runtime context (what to use) and the services built from it (the models, once).

`Context` is what LangGraph passes to every node (`context_schema`). It mirrors the CLI and is plain
JSON when the graph is served (`langgraph dev`, LangGraph Platform):

    {"vlm": "openai:MODEL@URL" | "transformers:ID_OR_PATH",
     "tools": {"localizer": {"name": "grounding_dino", "model": "/models/gdino"}, "ocr": "rapidocr"},
     "tool_options": {"ocr": {"min_score": 0.6}},
     "config": {"max_targets": 4, "timeout": 60}}

Served, a client's context is first admitted against the operator's setup (`lookcloser.runtime.serving`):
files, endpoints, models and limit ceilings are the operator's.

A role in `tools` is a registered name, an instance (Python only), None (off), or a settings dict:
name (default: the role's default tool) plus that tool's options. `Context` normalises the dicts
once into names + `tool_options`, so both spellings are one context (one `key()`).

From Python, `Agent` builds the same context and may also put built objects in it (a VLM instance, a
tool instance). `services(context)` turns a context into `Services` (traced VLM and tools, built on
first use); models are built once per process per distinct spec and shared by every thread.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from lookcloser.core.config import AgentConfig
from lookcloser.core.errors import ModelLoadError, SettingsError

__all__ = ["Context", "Services", "as_context", "services"]


class Context(BaseModel):
    """A run's setup: the VLM, each role's tool with its options, and the per-run AgentConfig. The one
    settings model: Agent keywords build it, `lookcloser.runtime.serving` admits a served client's into it, and
    its JSON schema is the served graph's context schema (Studio renders the form). Errors are one
    SettingsError line naming the key."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    vlm: Any = Field(None, description="VLM spec ('openai:MODEL@URL', 'transformers:ID_OR_LOCAL_DIR'); null: the "
                                       "default. From Python, a VLM object or LangChain chat model too.")
    tools: dict[str, Any] = Field(
        default_factory=dict, description="Role (localizer, detector, segmenter, ocr) -> registered tool name, null "
                                          "(off), or {\"name\": NAME, OPTION: VALUE}; over the defaults (localizer: "
                                          "vstar, ocr: rapidocr). From Python, a tool instance too.")
    tool_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Role -> that tool's options (the same as in `tools`, set apart).")
    config: AgentConfig = Field(default_factory=AgentConfig, description="Per-run settings (AgentConfig fields).")

    _services: Services | None = PrivateAttr(default=None)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise SettingsError(_one_line(exc)) from None

    @model_validator(mode="after")
    def _fold_tool_settings(self) -> "Context":
        """role -> {name, options} dicts become names + tool_options, so both spellings are one setup."""
        self.tools, self.tool_options = _split_settings(self.tools, self.tool_options)
        return self

    @property
    def services(self) -> "Services":
        """The models and tools of this setup: the ones pinned to it (an Agent pins its own), else the
        process's shared ones for an equal setup (`services()`)."""
        return self._services if self._services is not None else services(self)

    def pin(self, built: "Services") -> None:
        """Use exactly `built` for this context (the Agent's own services, built with its wording)."""
        self._services = built

    def key(self) -> str:
        """Identity of the models and tools this context asks for (not `config`, which is per run): JSON
        specs by value, objects by identity."""
        def part(value: Any) -> Any:
            if value is None or isinstance(value, (str, int, float, bool)):
                return value
            if isinstance(value, dict):
                return {str(k): part(v) for k, v in sorted(value.items())}
            if isinstance(value, (list, tuple)):
                return [part(v) for v in value]
            return f"<object {type(value).__name__} at {id(value):#x}>"

        from lookcloser.tools import DEFAULT_TOOLS  # noqa: PLC0415

        tools = {**DEFAULT_TOOLS, **self.tools}  # naming a default tool is the same setup as leaving it out
        return json.dumps([part(self.vlm), part(tools), part(self.tool_options)], sort_keys=True)


class Services:
    """The traced VLM and tools for one context; tools are built on first use and shared (thread-safe).

    Only what changes the models and tools is here (vlm, tools, tool options): runs whose contexts
    differ in `config` alone share one Services, and each run reads its own `context.config`."""

    def __init__(self, context: Context, *, spelling: str = "context") -> None:
        """spelling: who wrote the settings ("python", "cli", "context"), so that an error naming a
        setting to change says it in their words (see ModelLoadError)."""
        from lookcloser.tools import DEFAULT_TOOLS, registry  # noqa: PLC0415
        from lookcloser.vlm.chat import chat_vlm  # noqa: PLC0415
        from lookcloser.vlm.factory import make_vlm  # noqa: PLC0415

        self.spelling = spelling
        self.vlm_spec = context.vlm
        self.vlm = chat_vlm(make_vlm(context.vlm))
        self.tool_specs = {**DEFAULT_TOOLS, **context.tools}
        self.tool_options = dict(context.tool_options)
        for role, spec in self.tool_specs.items():  # fails now, naming the tool and option, not at first use
            options = self.tool_options.get(role, {})
            if isinstance(spec, str):
                registry.factory(role, spec)  # lists the known names
                registry.check_options(role, spec, options)
            elif spec is not None and options:
                raise SettingsError(f"options for the {role} ({', '.join(sorted(options))}) go to a registered "
                                    f"tool's factory, but the {role} given is an instance of "
                                    f"{type(spec).__name__}; configure the instance itself")
        self._tools: dict[tuple[str, bool], Any] = {}
        self._lock = threading.RLock()

    def has_tool(self, role: str) -> bool:
        return self.tool_specs.get(role) is not None

    def built_tools(self) -> dict[str, Any]:
        """The tools built so far, by role (the one built first when a role has two: with and without the VLM)."""
        with self._lock:
            built: dict[str, Any] = {}
            for (role, _), tool in self._tools.items():
                built.setdefault(role, tool)
            return built

    def batches(self, role: str) -> bool:
        """Whether the `role` tool finds several targets in one call (`locate_many`), known without
        building it: an instance says so by having the method, a registered tool in its ToolInfo."""
        from lookcloser.tools import registry  # noqa: PLC0415

        spec = self.tool_specs.get(role)
        if spec is None:
            return False
        if not isinstance(spec, str):
            return callable(getattr(spec, "locate_many", None))
        info = registry.info(role, spec)
        return bool(info is not None and info.batches)

    def tool(self, role: str, *, with_vlm: bool = True) -> Any:
        """The traced tool for `role`, built on first use and then shared. `with_vlm=False` builds the
        tool without the VLM (SEARCH-only use with no VLM named: no contextual cue)."""
        from lookcloser.tools import ToolContext, registry  # noqa: PLC0415
        from lookcloser.runtime.expert_tools import ExpertTool  # noqa: PLC0415

        if not self.has_tool(role):
            raise LookupError(f"no '{role}' tool is configured; pass tools={{'{role}': NAME_OR_INSTANCE}}")
        key = (role, with_vlm)
        with self._lock:
            if key not in self._tools:
                context = ToolContext(vlm=self.vlm if with_vlm else None,
                                      resolve=lambda other: self.tool(other, with_vlm=with_vlm))
                spec = self.tool_specs[role]
                try:
                    built = registry.create(role, spec, context, **self.tool_options.get(role, {}))
                except ModelLoadError as exc:
                    exc.blame(role, spec if isinstance(spec, str) else getattr(spec, "name", role), self.spelling)
                    raise
                self._tools[key] = ExpertTool(role, built, spelling=self.spelling)
            return self._tools[key]


def _split_settings(tools: dict[str, Any], tool_options: dict[str, dict[str, Any]]) -> tuple[dict, dict]:
    """role -> settings dict becomes role -> name plus tool_options[role]; roles checked; an option
    set both in the dict and in tool_options is an error naming the role and the option."""
    from lookcloser.core.arguments import did_you_mean  # noqa: PLC0415
    from lookcloser.tools import DEFAULT_TOOLS, ROLES  # noqa: PLC0415

    for where, roles in (("unknown tool role", tools), ("tool_options names unknown role", tool_options)):
        for role in roles:
            if role not in ROLES:
                raise SettingsError(f"{where} '{role}'{did_you_mean(role, ROLES)}; roles are: {', '.join(ROLES)}")
    names: dict[str, Any] = {}
    options = {role: dict(values) for role, values in tool_options.items()}
    for role, spec in tools.items():
        if isinstance(spec, dict):
            settings = dict(spec)
            name = settings.pop("name", DEFAULT_TOOLS.get(role))
            if not isinstance(name, str) or not name.strip():
                raise SettingsError(f"tools['{role}'] needs a 'name' (a registered {role}), got {name!r}"
                                    if name is not None else
                                    f"tools['{role}'] needs a 'name': there is no default {role}")
            clash = sorted(set(settings) & set(options.get(role, {})))
            if clash:
                raise SettingsError(f"the {role} option '{clash[0]}' is set both in tools['{role}'] and in "
                                    f"tool_options['{role}']; set it in one place")
            if settings:
                options[role] = {**options.get(role, {}), **settings}
            spec = name.strip()
        names[role] = spec
    return names, {role: values for role, values in options.items() if values}


def _one_line(exc: ValidationError) -> str:
    """A context's validation errors as one line naming each key (a SettingsError's own text unchanged); an
    unknown key with the closest valid one (`{"tool": ...}`: did you mean 'tools'?)."""
    from lookcloser.core.arguments import unknown_names  # noqa: PLC0415

    problems, unknown = [], {}
    for error in exc.errors(include_url=False):
        message = error["msg"].removeprefix("Value error, ")
        if not error["loc"]:
            return message
        where = ".".join(map(str, error["loc"]))
        if error["type"] == "extra_forbidden":  # gathered by where they are: the known keys said once
            unknown.setdefault(".".join(map(str, error["loc"][:-1])), []).append(error["loc"][-1])
            continue
        problems.append(f"{where}: {message}")
    for parent, names in reversed(unknown.items()):
        known = list(AgentConfig.model_fields) if parent.split(".")[0] == "config" else list(Context.model_fields)
        what, whats = (f"key in '{parent}'", f"keys in '{parent}'") if parent else ("context key", "context keys")
        problems.insert(0, unknown_names(names, known, what=what, whats=whats)
                        or f"unknown key {str(names[0])[:60]!r}")
    return f"bad context: {'; '.join(problems)}"


_CACHE: OrderedDict[str, Services] = OrderedDict()
_CACHE_LOCK = threading.Lock()
#: Distinct model setups kept per process; the least recently used one is dropped past this.
MAX_SERVICES = 8


def as_context(value: Context | dict | None) -> Context:
    """A Context from what a graph was given: none (the defaults), its JSON, or a Context."""
    if value is None:
        return Context()
    return Context(**value) if isinstance(value, dict) else value


def services(context: Context | dict | None) -> Services:
    """The shared `Services` for `context` (built on first use per distinct spec)."""
    context = as_context(context)
    if context._services is not None:  # an Agent pins its own services to its context
        return context._services
    key = context.key()
    with _CACHE_LOCK:
        found = _CACHE.get(key)
        if found is not None:
            _CACHE.move_to_end(key)
            return found
    built = Services(context)  # outside the lock: building may take a while
    with _CACHE_LOCK:
        found = _CACHE.setdefault(key, built)
        _CACHE.move_to_end(key)
        while len(_CACHE) > MAX_SERVICES:
            _CACHE.popitem(last=False)
    return found
