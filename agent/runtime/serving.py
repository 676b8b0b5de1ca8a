"""Who sets what when the graph is served: the operator owns the server, a client chooses within it.

A served graph (`langgraph dev`, LangGraph Platform) answers anyone who reaches its port, so nothing a
run's context says may make the server read its files or call addresses the operator did not allow.
The operator's setup comes from the environment, read once when the server starts:

    LOOKCLOSER_VLM      the default VLM spec ("openai:MODEL@URL", "transformers:ID_OR_PATH")
    LOOKCLOSER_CONFIG   a TOML file in the `lookcloser ask --config` format (vlm, [tools], [config]) plus
                        a [serve] table saying what a run's context may choose:

    [serve]
    vlms = ["openai:qwen2.5-vl-7b@http://10.0.0.7:8000/v1"]   # VLMs besides the operator's own
    [serve.tools]
    localizer = ["whole_image"]                               # tools besides the operator's, per role
    [serve.options]
    localizer = ["max_steps"]                                 # tool options a run may set, per role

A run without context (Agent Chat UI sends none) runs on the operator's setup. A run's context may name
the operator's VLM or one listed in `vlms`; per role the operator's tool, one listed in `[serve.tools]`, or
null (off); the tool options listed in `[serve.options]` (models, files and devices stay the operator's
unless listed); and `config` fields, except `image_dir`, with the limits at most the operator's. Anything
else fails the run with one line naming the setting and why. The CLI and the Python API are their own
operator: nothing here applies to them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, ValidationError

from lookcloser.core.config import AgentConfig
from lookcloser.core.errors import SettingsError
from lookcloser.runtime.context import Context, services
from lookcloser.runtime.settings import ROLES, load

__all__ = ["CONFIG_ENV", "VLM_ENV", "Operator", "ServePolicy"]

VLM_ENV = "LOOKCLOSER_VLM"
CONFIG_ENV = "LOOKCLOSER_CONFIG"

#: AgentConfig fields only the operator sets (a client's value is refused).
OPERATOR_ONLY = ("image_dir",)
#: AgentConfig limits a client may lower but not raise above the operator's value.
CEILINGS = ("max_targets", "max_search_seconds", "max_new_tokens", "timeout", "max_reply_chars", "max_crops",
            "max_pixels", "max_text_chars", "max_text_lines", "max_zoom_turns", "max_zoom_pixels",
            "max_zoom_images")


class ServePolicy(BaseModel):
    """The [serve] table: what a run's context may choose beyond the operator's own setup."""

    model_config = ConfigDict(extra="forbid")

    vlms: list[str] = []
    tools: dict[str, list[str]] = {}
    options: dict[str, list[str]] = {}


@dataclass(frozen=True)
class Operator:
    """The operator's setup (`context`, what a run without context uses) and what clients may change."""

    context: Context
    policy: ServePolicy

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Operator":
        """The setup LOOKCLOSER_VLM and LOOKCLOSER_CONFIG describe; a bad one fails now, at server start."""
        environ = os.environ if environ is None else environ
        path = environ.get(CONFIG_ENV) or None
        where = f"{CONFIG_ENV}={path}" if path else CONFIG_ENV
        settings = load(path, vlm=environ.get(VLM_ENV) or None)
        try:
            policy = ServePolicy(**settings.serve)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise SettingsError(f"{where}: [serve] {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
        for table in (policy.tools, policy.options):
            for role in table:
                if role not in ROLES:
                    raise SettingsError(f"{where}: [serve] names unknown role '{role}'; roles are: {', '.join(ROLES)}")
        context = Context(vlm=settings.vlm, tools=settings.tools, config=AgentConfig(**settings.config))
        services(context)  # checks the VLM spec, tool names and options now (models still load lazily)
        return cls(context=context, policy=policy)

    def admit(self, requested: Any) -> Context:
        """The Context a run uses: the operator's, changed only where the run's context may change it."""
        if requested is None:
            return self.context
        client = Context(**requested) if isinstance(requested, dict) else requested
        if not isinstance(client, Context):
            raise SettingsError(f"the run's context must be a JSON object, got {type(requested).__name__}")
        return Context(vlm=self._vlm(client.vlm), **self._tools(client), config=self._config(client.config))

    # ------------------------------------------------------------------ the three parts
    def _vlm(self, wanted: Any) -> Any:
        if wanted is None or wanted == self.context.vlm:
            return self.context.vlm
        if isinstance(wanted, str) and wanted in self.policy.vlms:
            return wanted
        raise SettingsError("context 'vlm' names a VLM this server's operator does not allow; leave 'vlm' out to "
                            f"use the server's (the operator allows others with [serve] vlms in {CONFIG_ENV})")

    def _tools(self, client: Context) -> dict[str, Any]:
        from lookcloser.tools import DEFAULT_TOOLS  # noqa: PLC0415

        tools = {**DEFAULT_TOOLS, **self.context.tools}
        options = {role: dict(values) for role, values in self.context.tool_options.items()}
        for role in sorted(set(client.tools) | set(client.tool_options)):
            ours = tools.get(role)
            name = client.tools.get(role, ours)
            if name is not None and name != ours and name not in self.policy.tools.get(role, []):
                allowed = [n for n in [ours, *self.policy.tools.get(role, [])] if n is not None]
                raise SettingsError(f"context 'tools.{role}' = {name!r} is not allowed on this server; the {role} "
                                    f"may be {', '.join(map(repr, allowed)) or 'nothing else'} or null (off)")
            wanted = client.tool_options.get(role, {})
            refused = sorted(set(wanted) - set(self.policy.options.get(role, [])))
            if refused:
                allowed = self.policy.options.get(role, [])
                raise SettingsError(f"context option '{refused[0]}' of the {role} is the server operator's to set; "
                                    f"a run may set: {', '.join(allowed) if allowed else 'none'}")
            base = options.get(role, {}) if name == ours else {}  # the operator's options belong to its own tool
            options[role] = {**base, **wanted}
            tools[role] = name
        return {"tools": tools, "tool_options": {role: values for role, values in options.items() if values}}

    def _config(self, wanted: AgentConfig) -> AgentConfig:
        ours = self.context.config
        changed = {field: getattr(wanted, field) for field in wanted.model_fields_set}
        for field, value in changed.items():
            if field in OPERATOR_ONLY and value != getattr(ours, field):
                raise SettingsError(f"context 'config.{field}' is the server operator's setting; leave it out")
            ceiling = getattr(ours, field)
            if field in CEILINGS and ceiling is not None and (value is None or value > ceiling):
                raise SettingsError(f"context 'config.{field}' = {value!r} is over this server's limit of "
                                    f"{ceiling!r}; ask for {ceiling!r} or less")
        return ours.model_copy(update=changed)
