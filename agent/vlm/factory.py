"""Turn a VLM spec (CLI string, object or None) into a backend.

Accepted specs:
  None                          -> TransformersVLM() with the default model (loaded lazily)
  "transformers"                -> same
  "transformers:ID_OR_PATH"     -> TransformersVLM(ID_OR_PATH)
  "openai:MODEL"                -> OpenAIVLM(MODEL) at OPENAI_BASE_URL, else OpenAI's API
  "openai:MODEL@URL"            -> OpenAIVLM(MODEL, base_url=URL), URL starting with http:// or https://
  a LangChain BaseChatModel     -> LangChainVLM(model)
  any object with generate()    -> returned as is
  {"spec": SPEC, OPTION: VALUE} -> SPEC's backend with those constructor options (a `[vlm]` table of a
                                   --config file: e.g. box_format = "qwen2_5_vl")
"""

from __future__ import annotations

import re
from typing import Any

from lookcloser.vlm.langchain_vlm import LangChainVLM
from lookcloser.vlm.openai_vlm import OpenAIVLM
from lookcloser.vlm.transformers_vlm import TransformersVLM

FORMS = (
    "'transformers', 'transformers:MODEL_ID_OR_PATH', 'openai:MODEL', 'openai:MODEL@http://host:port/v1', "
    "a LangChain chat model, or an object with a generate(messages) method"
)
# Model names may contain ':' (Ollama "qwen2.5vl:7b"); the URL follows the first '@' that starts a
# http(s) URL (the regex's lazy model group), so credentials in the URL are kept.
_OPENAI_SPEC = re.compile(r"^(?P<model>.+?)@(?P<url>https?://\S+)$")


def _bad(spec: Any, why: str) -> ValueError:
    return ValueError(f"bad VLM spec {spec!r}: {why}; accepted forms: {FORMS}")


def make_vlm(spec: Any = None, **options: Any) -> Any:
    """Build a VLM from `spec`; `options` go to the backend constructor for string specs."""
    if spec is None:
        return TransformersVLM(**options)
    if isinstance(spec, str):
        return _from_string(spec, options)
    if isinstance(spec, dict):
        return _from_table(spec, options)
    try:
        from langchain_core.language_models import BaseChatModel
    except ImportError:  # langchain_core is a dependency, but don't fail unrelated specs on it
        BaseChatModel = None  # type: ignore[assignment,misc]
    # BaseChatModel has its own generate(); check it first so it gets wrapped.
    if BaseChatModel is not None and isinstance(spec, BaseChatModel):
        return LangChainVLM(spec, **options)
    if callable(getattr(spec, "generate", None)):
        if options:
            raise ValueError(f"options {sorted(options)} cannot be applied to an already-built VLM {spec!r}")
        return spec
    raise _bad(spec, f"a {type(spec).__name__} is neither a spec string nor a VLM")


def _from_table(table: dict[str, Any], options: dict[str, Any]) -> Any:
    """{"spec": SPEC, OPTION: VALUE}: the spec string's backend built with the table's other keys as options."""
    spec = table.get("spec")
    if not isinstance(spec, str) or not spec.strip():
        raise _bad(table, "a VLM table needs a 'spec' string (e.g. spec = \"openai:MODEL@URL\")")
    extra = {k: v for k, v in table.items() if k != "spec"}
    try:
        return _from_string(spec, {**extra, **options})
    except TypeError as exc:
        if "unexpected keyword argument" not in str(exc):
            raise
        known = ", ".join(sorted(extra)) or "none"
        raise _bad(table, f"its backend does not take one of the options given ({known}): {exc}") from None


def _from_string(spec: str, options: dict[str, Any]) -> Any:
    backend, sep, rest = spec.strip().partition(":")
    backend = backend.lower()
    rest = rest.strip()
    if backend == "transformers":
        if sep and not rest:
            raise _bad(spec, "missing model id or path after 'transformers:'")
        return TransformersVLM(rest, **options) if rest else TransformersVLM(**options)
    if backend == "openai":
        if not rest:
            raise _bad(spec, "missing model name after 'openai:'")
        match = _OPENAI_SPEC.match(rest)
        if match:
            return OpenAIVLM(match["model"], base_url=match["url"], **options)
        if "@" in rest:
            raise _bad(spec, "the endpoint URL after '@' must start with http:// or https://")
        return OpenAIVLM(rest, **options)
    raise _bad(spec, f"unknown backend {backend!r}")
