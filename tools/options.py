"""Typed tool options: what a tool accepts is its constructor's signature, checked by pydantic.

A tool declares its options once, as the typed keyword arguments of the class (or function) its
factory calls, with ranges written as `Annotated[float, Field(ge=0, le=1)]` where a value can be out of
range. `options_model` turns such a signature into a pydantic model (unknown names forbidden, NaN and
infinity refused), so a bad option fails when the agent is built, in one line naming the role, the
tool, the option, the value and what is allowed, nested options included, never as a TypeError deep
inside a search.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, ValidationError, create_model, model_validator
from pydantic.errors import PydanticSchemaGenerationError

from lookcloser.core.errors import SettingsError

__all__ = ["OPTION_CONFIG", "check", "options_model"]

#: How every options model treats values: unknown names and non-finite numbers are errors; objects
#: (a reader instance, a cue model) are allowed where the signature types them.
OPTION_CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False, arbitrary_types_allowed=True)


def options_model(func: Callable[..., Any], *, name: str, exclude: tuple[str, ...] = ("self", "context"),
                  extra: dict[str, tuple[Any, Any]] | None = None,
                  check: Callable[[dict[str, Any]], None] | None = None) -> type[BaseModel] | None:
    """A pydantic model of the keyword options `func` takes (a class: its constructor), plus `extra`
    fields ({name: (type, default)}) and `check(options set)`, a cross-field check that raises
    ValueError; None when `func` passes unknown options on (**kwargs)."""
    target = func.__init__ if inspect.isclass(func) else func
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception:  # noqa: BLE001 - an unresolvable annotation: that option is typed Any below
        hints = {}
    fields: dict[str, tuple[Any, Any]] = {}
    for parameter in inspect.signature(func).parameters.values():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            return None
        if parameter.name in exclude or parameter.kind not in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                               inspect.Parameter.KEYWORD_ONLY):
            continue
        default = None if parameter.default is inspect.Parameter.empty else parameter.default
        fields[parameter.name] = (_checkable(hints.get(parameter.name, Any)), default)
    fields.update(extra or {})
    validators = {}
    if check is not None:
        def holds(model: BaseModel) -> BaseModel:
            check({key: getattr(model, key) for key in model.model_fields_set})
            return model
        validators["holds"] = model_validator(mode="after")(holds)
    return create_model(name, __config__=OPTION_CONFIG, __validators__=validators, **fields)


def _checkable(annotation: Any) -> Any:
    """The annotation if pydantic can check it, else Any (e.g. a non-runtime Protocol)."""
    try:
        create_model("Probe", __config__=OPTION_CONFIG, value=(annotation, None))
    except (PydanticSchemaGenerationError, TypeError, NameError):
        return Any
    return annotation


def check(model: type[BaseModel] | None, options: dict[str, Any], *, role: str | None, tool: str) -> dict[str, Any]:
    """The options checked against `model` (values as the model reads them: "5" for an int is 5);
    SettingsError naming the first problem. No model: passed on unchecked."""
    if model is None or not options:
        return dict(options)
    try:
        checked = model.model_validate(options)
    except ValidationError as exc:
        raise SettingsError(_describe(exc, model, options, role=role, tool=tool)) from None
    return {key: _plain(getattr(checked, key)) for key in options}


def _plain(value: Any) -> Any:
    """A nested options model back to the dict its tool takes."""
    return value.model_dump(exclude_unset=True) if isinstance(value, BaseModel) else value


def _describe(exc: ValidationError, model: type[BaseModel], options: dict[str, Any], *, role: str | None,
              tool: str) -> str:
    error = exc.errors(include_url=False)[0]
    path = ".".join(str(part) for part in error["loc"])
    owner = f"{role} '{tool}'" if role else f"'{tool}'"
    if error["type"] == "extra_forbidden":
        parent = _field_model(model, error["loc"][:-1])
        known = ", ".join(sorted(parent.model_fields)) if parent is not None else "none"
        parent_path = ".".join(map(str, error["loc"][:-1]))
        where = f"the options of {parent_path} are" if parent_path else "its options are"
        return f"unknown option '{path}' for {owner}; {where}: {known}"
    if not path:  # a cross-field check
        return f"{owner} options {options!r}: {error['msg'].removeprefix('Value error, ')}"
    value = _value_at(options, error["loc"])
    return f"{owner} option '{path}' = {value!r}: {error['msg'].removeprefix('Value error, ')}"


def _field_model(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The nested options model at `loc` (for the list of its option names)."""
    current: Any = model
    for part in loc:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return None
        annotation = field.annotation
        candidates = [annotation, *typing.get_args(annotation)]
        current = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if current is None:
            return None
    return current


def _value_at(options: Any, loc: tuple[Any, ...]) -> Any:
    value = options
    for part in loc:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return value
    return value
