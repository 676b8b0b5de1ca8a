"""User settings as the CLI reads them (a `--config` TOML file, `--tool` flags).

A config file (stdlib tomllib), for `lookcloser ask` and `lookcloser find`:

    vlm = "openai:qwen2.5-vl-7b@http://localhost:8000/v1"
    # or, with options for the backend:  [vlm]  spec = "openai:..."  box_format = "qwen2_5_vl"

    [tools]
    ocr = "tesseract"                                   # a role = a registered name
    segmenter = { name = "sam2", model = "/models/sam2.1-hiera-tiny" }
    detector = false                                    # switched off

    [tools.localizer]                                   # a role = name + that tool's options
    name = "grounding_dino"
    model = "/models/grounding-dino-tiny"
    box_threshold = 0.3

    [config]                                            # AgentConfig fields
    timeout = 60

    [serve]                                             # only read by the served graph: what its clients
    vlms = []                                           # may choose (see lookcloser.runtime.serving)

Flags override the file: `--vlm` (the whole `vlm`, a table's options too), `--timeout`; `--tool ROLE=NAME` replaces the file's entry for that
role (its options too); `--tool ROLE.OPTION=VALUE` sets one option over the file's (VALUE is read as
a TOML or JSON value when it is one: 0.3, true, [1, 2], {"a": 1}; else as a string). Every mistake is one
SettingsError line naming the file and the key. Only the stdlib is imported at module level.
How a setting is written back for each kind of caller (in error messages) is `lookcloser.core.errors.spell`.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lookcloser.core.arguments import did_you_mean
from lookcloser.core.errors import SettingsError
from lookcloser.imaging.files import MAX_SETTINGS_BYTES, read_regular

__all__ = ["Settings", "load", "parse_tool_flags"]

ROLES = ("localizer", "detector", "segmenter", "ocr")  # lookcloser.tools.base.ROLES, without importing PIL
KEYS = ("vlm", "tools", "config", "serve")


@dataclass
class Settings:
    """What the file and the flags ask for: the Agent's `vlm`, `tools` (role -> name, None, or a
    {"name": ..., option: value} dict) and `config` (AgentConfig fields)."""

    vlm: str | dict[str, Any] | None = None  # a spec, or a table: {"spec": SPEC, backend option: value}
    tools: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    serve: dict[str, Any] = field(default_factory=dict)  # what a served graph's clients may choose (lookcloser.runtime.serving)

    def agent_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `Agent` (the config validated into an AgentConfig)."""
        from lookcloser.core.config import AgentConfig  # noqa: PLC0415 - pydantic, only when an agent is built

        return {"vlm": self.vlm, "tools": dict(self.tools), "config": AgentConfig(**self.config)}


def load(path: str | Path | None, *, vlm: str | None = None, tool_flags: list[str] | None = None,
         config: dict[str, Any] | None = None) -> Settings:
    """The settings of the `path` TOML file (None: none), with the command-line flags over them."""
    settings = _read(Path(path)) if path is not None else Settings()
    if vlm is not None:
        settings.vlm = vlm
    for role, value in parse_tool_flags(tool_flags).items():
        if isinstance(value, dict) and "name" not in value:  # --tool ROLE.OPTION=VALUE: over the file's entry
            current = settings.tools.get(role)
            base = current if isinstance(current, dict) else ({"name": current} if isinstance(current, str) else {})
            value = {**base, **value}
        settings.tools[role] = value
    settings.config.update(config or {})
    return settings


def parse_tool_flags(values: list[str] | None) -> dict[str, Any]:
    """`--tool ROLE=NAME` and `--tool ROLE.OPTION=VALUE` flags -> role -> name, or role -> {name?, option: value}."""
    tools: dict[str, Any] = {}
    for value in values or []:
        key, sep, text = value.partition("=")
        role, dot, option = (part.strip() for part in key.partition("."))
        if not sep or not role or not text.strip() or (dot and not option):
            raise SettingsError(f"--tool expects ROLE=NAME or ROLE.OPTION=VALUE (e.g. --tool localizer=whole_image, "
                                f"--tool detector.model=/models/gdino), got '{value}'")
        _check_role(role, f"--tool {value}")
        if not dot:
            current = tools.get(role)
            options = {k: v for k, v in current.items() if k != "name"} if isinstance(current, dict) else {}
            tools[role] = {"name": text.strip(), **options} if options else text.strip()
            continue
        current = tools.get(role)
        entry = dict(current) if isinstance(current, dict) else ({"name": current} if isinstance(current, str) else {})
        entry[option] = _value(text.strip(), f"--tool {value}")
        tools[role] = entry
    return tools


# ---------------------------------------------------------------------------------- the file
def _read(path: Path) -> Settings:
    try:
        data = tomllib.loads(read_regular(path, what="--config", max_bytes=MAX_SETTINGS_BYTES, error=SettingsError)
                            .decode("utf-8"))  # a pipe, a device or a huge file: one SettingsError
    except FileNotFoundError:
        raise SettingsError(f"--config file not found: {path}") from None
    except IsADirectoryError:
        raise SettingsError(f"--config {path} is a directory, not a TOML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"--config {path} cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise SettingsError(f"{path}: unknown key '{unknown[0]}'{did_you_mean(unknown[0], KEYS)}; the keys are: "
                            f"{', '.join(KEYS)}")
    vlm = data.get("vlm")
    if isinstance(vlm, dict):
        spec = vlm.get("spec")
        if not isinstance(spec, str) or not spec.strip():
            raise SettingsError(f"{path}: [vlm] needs spec = \"openai:MODEL@URL\" (or another VLM spec) beside its "
                                f"backend options, got {vlm!r}")
        vlm = dict(vlm)
    elif vlm is not None and (not isinstance(vlm, str) or not vlm.strip()):
        raise SettingsError(f"{path}: vlm must be a spec string such as \"openai:MODEL@URL\" or a [vlm] table "
                            f"(spec and backend options such as box_format), got {vlm!r}")
    tools = data.get("tools", {})
    if not isinstance(tools, dict):
        raise SettingsError(f"{path}: [tools] must be a table of role = name, got {tools!r}")
    config = data.get("config", {})
    if not isinstance(config, dict):
        raise SettingsError(f"{path}: [config] must be a table of AgentConfig fields, got {config!r}")
    serve = data.get("serve", {})
    if not isinstance(serve, dict):
        raise SettingsError(f"{path}: [serve] must be a table (vlms, tools, options), got {serve!r}")
    settings = Settings(vlm=vlm, tools={role: _tool(path, role, spec) for role, spec in tools.items()},
                        config=dict(config), serve=dict(serve))
    _check_config(path, settings.config)
    return settings


def _tool(path: Path, role: str, spec: Any) -> Any:
    _check_role(role, f"{path}: [tools]")
    where = f"{path}: [tools.{role}]"
    if spec is False:
        return None
    if isinstance(spec, str) and spec.strip():
        _check_tool(where, role, spec.strip(), {})
        return spec.strip()
    if isinstance(spec, dict):
        name = spec.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise SettingsError(f"{where} name must be a registered tool name, got {name!r}")
        options = {k: v for k, v in spec.items() if k != "name"}
        if name is not None:
            _check_tool(where, role, name, options)
        return dict(spec)
    raise SettingsError(f"{where} must be a tool name, false (off) or a table with name and options, got {spec!r}")


def _check_tool(where: str, role: str, name: str, options: dict[str, Any]) -> None:
    """The name is registered and takes these options (the registry's own check, prefixed with the file)."""
    from lookcloser.core.errors import ToolNotFoundError  # noqa: PLC0415
    from lookcloser.tools import registry  # noqa: PLC0415 - the registry, only when a file names tools

    try:
        registry.factory(role, name)
        registry.check_options(role, name, options)
    except (ToolNotFoundError, SettingsError) as exc:
        raise SettingsError(f"{where} {exc}") from None


def _check_config(path: Path, config: dict[str, Any]) -> None:
    from pydantic import ValidationError  # noqa: PLC0415

    from lookcloser.core.config import AgentConfig  # noqa: PLC0415

    unknown = sorted(set(config) - set(AgentConfig.model_fields))
    if unknown:
        raise SettingsError(f"{path}: unknown [config] key '{unknown[0]}'"
                            f"{did_you_mean(unknown[0], list(AgentConfig.model_fields))}; the keys are: "
                            f"{', '.join(AgentConfig.model_fields)}")
    try:
        AgentConfig(**config)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(map(str, first["loc"]))
        raise SettingsError(f"{path}: [config] {key} = {config.get(key)!r}: {first['msg']}") from None


def _check_role(role: str, where: str) -> None:
    if role not in ROLES:
        raise SettingsError(f"{where}: unknown role '{role}'{did_you_mean(role, ROLES)}; the roles are: "
                            f"{', '.join(ROLES)}")


def _value(text: str, flag: str) -> Any:
    """A flag value as TOML reads it (0.3, true, "x", [1, 2]), or JSON ({"a": 1}); anything else is the string
    itself. A value that opens a table or a list ({, [) and is neither is one SettingsError naming the flag."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        if not text.startswith(("{", "[")):
            return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{flag}: the value is neither JSON nor TOML ({exc.msg} at character {exc.pos + 1}); "
                            """e.g. --tool 'localizer.text_options={"max_input_pixels": 4000000}'""") from None
