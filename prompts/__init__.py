"""Prompt templates as text files, loaded by name and filled with `string.Template` ($name fields).

`string.Template` keeps literal JSON braces in templates safe. Unknown or missing fields raise
a KeyError naming the field, so a template and its caller cannot silently drift apart.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from string import Template


@lru_cache(maxsize=None)
def load_prompt(name: str) -> Template:
    """Return the template `prompts/<name>.txt`."""
    try:
        text = resources.files(__name__).joinpath(f"{name}.txt").read_text(encoding="utf-8")
    except FileNotFoundError:
        known = sorted(p.name[:-4] for p in resources.files(__name__).iterdir() if p.name.endswith(".txt"))
        raise KeyError(f"no prompt named '{name}'; known prompts: {', '.join(known)}") from None
    return Template(text)


def render_prompt(name: str, **fields: object) -> str:
    return load_prompt(name).substitute(**fields)


def options_block(options: list[str] | None) -> str:
    """'Options:\\n(A) red\\n(B) blue' or '' when there are no options."""
    if not options:
        return ""
    return "Options:\n" + "\n".join(f"({option_letter(i)}) {o}" for i, o in enumerate(options)) + "\n"


def option_letter(index: int) -> str:
    return chr(ord("A") + index)
