"""Arguments that come from outside (an MCP tool call, a LangChain tool call, a run's context): what is wrong with
them, in one line.

Why one home: every door takes named arguments from a client that can misspell them. A misspelt name must not be
dropped (the question would be answered without the option the client meant), and pydantic's own report (several
lines, a link) is not for a client's log line. `unknown_names` says which name is not known and the closest known
one; `one_line` renders a ValidationError naming each argument.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any, Iterable, Sequence

if TYPE_CHECKING:  # the CLI's settings check imports this module: no pydantic at its start
    from pydantic import ValidationError

__all__ = ["closest", "did_you_mean", "one_line", "unknown_names"]


def closest(name: str, known: Sequence[str]) -> str | None:
    """The known name `name` is most likely a misspelling of, or None."""
    found = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
    return found[0] if found else None


def did_you_mean(name: str, known: Sequence[str]) -> str:
    """"; did you mean 'X'?" for the known name `name` is closest to, or "" (for a message about `name`)."""
    guess = closest(name, known)
    return f"; did you mean '{guess}'?" if guess else ""


def unknown_names(given: Iterable[Any], known: Sequence[str], *, what: str = "argument",
                  whats: str | None = None) -> str | None:
    """One line naming the unknown names of `given` (each with the closest known one; the known ones listed once),
    or None when all are known. `whats`: `what` in the plural (default: what + "s")."""
    unknown = [name for name in dict.fromkeys(given) if name not in known]
    if not unknown:
        return None
    if len(unknown) == 1:
        name = unknown[0]
        return f"unknown {what} {str(name)[:60]!r}{did_you_mean(name, known)} (known: {', '.join(known)})"
    named = []
    for name in unknown[:5]:
        guess = closest(name, known)
        named.append(f"{str(name)[:40]!r}" + (f" (did you mean '{guess}'?)" if guess else ""))
    more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
    return f"unknown {whats or what + 's'} {', '.join(named)}{more} (known: {', '.join(known)})"


def one_line(exc: ValidationError, *, what: str = "argument", known: Sequence[str] = ()) -> str:
    """A ValidationError as one line: each wrong argument named with pydantic's short reason and the value's type;
    the unknown ones (extra="forbid") together, each with the closest of `known`."""
    problems, unknown = [], []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or what
        if error["type"] == "extra_forbidden" and len(error["loc"]) == 1:
            unknown.append(error["loc"][0])
            continue
        message = str(error["msg"]).removeprefix("Value error, ")
        value = error.get("input")
        got = "" if error["type"] == "missing" else f" (got {type(value).__name__} {_show(value)})"
        problems.append(f"{what} '{where}': {message}{got}")
    if unknown:
        problems.insert(0, unknown_names(unknown, known, what=what) or f"unknown {what} {str(unknown[0])[:60]!r}")
    return "; ".join(dict.fromkeys(problems))  # one per problem, in order


def _show(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
