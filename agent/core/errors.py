"""Errors users see. Each names the thing that was wrong (file, field, value)."""

from __future__ import annotations

import json
from typing import Any


class LookCloserError(Exception):
    """Base class for every error lookcloser raises on purpose. Its message is one line: a line break or other
    control character that came from a caller's input (a file name, an id, a cell) is shown escaped (`\\n`), so
    a log line, a tool's error result or the CLI's `error:` line can never be split or forged by it."""

    def __str__(self) -> str:
        return _one_line(super().__str__())


def _one_line(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == " " else repr(ch)[1:-1] for ch in text)


class InputError(LookCloserError, ValueError):
    """An argument that cannot be used: an empty question, bad options, a malformed batch item or target
    (Python API), or a command-line value that fails its check. The message names the argument."""


class ImageError(LookCloserError, ValueError):
    """An input image could not be read or is unsafe to decode."""


class ToolNotFoundError(LookCloserError, KeyError):
    """A tool name is not in the registry; the message lists the known names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return _one_line(str(self.args[0])) if self.args else ""


class SettingsError(LookCloserError, ValueError):
    """Tool, VLM or agent settings that cannot be used (unknown option, clashing values, a bad --config
    file); the message names the file, role, option and value."""


class ModelLoadError(LookCloserError, RuntimeError):
    """A model could not be loaded (missing weights, no hub access, bad path).

    When changing one tool option fixes it, `option` names it (e.g. "model") and `example` is a value
    to show. The agent that ran the tool fills in `role`, `tool` and `spelling` (who configured it:
    "python", "cli" or "context"), and the message then ends with that setting written the way that
    caller writes it (`spell` below): Python keywords, CLI flags, or context JSON.
    """

    def __init__(self, message: str, *, option: str | None = None, example: str | None = None) -> None:
        super().__init__(message)
        self.option = option
        self.example = example
        self.role: str | None = None
        self.tool: str | None = None
        self.spelling: str | None = None

    def blame(self, role: str, tool: str, spelling: str) -> None:
        """Name the role and tool that failed, once: the innermost tool (the one that loads) wins."""
        if self.role is None:
            self.role, self.tool, self.spelling = role, tool, spelling

    def __str__(self) -> str:
        message = super().__str__()
        if self.option is None:
            return message
        return f"{message}: {spell(self.spelling, self.role, self.tool, self.option, self.example)}"


class VLMError(LookCloserError, RuntimeError):
    """A VLM backend call failed (endpoint down, bad response)."""


class TimeLimitError(LookCloserError):
    """The time limit of a question (AgentConfig.timeout, `ask --timeout`) ran out; the message names
    what was waiting (the VLM endpoint, a search)."""


class VLMTimeoutError(VLMError, TimeLimitError):
    """A VLM call did not answer within its per-call timeout or the question's time left."""


class AnswerError(LookCloserError):
    """SHOW, TELL or the choice scoring failed after work was done: nothing paid for is lost.

    `findings`: what the search found before the failure (a list of Finding, maybe empty);
    `partial`: an Answer with those findings, no text, and `error` set to this message;
    `__cause__`: the original error (a VLMError, TimeLimitError, ...).
    """

    def __init__(self, message: str, *, findings: list | None = None, partial: object = None) -> None:
        super().__init__(message)
        self.findings = list(findings or [])
        self.partial = partial


def spell(spelling: str | None, role: str | None, tool: str | None, option: str, example: Any) -> str:
    """How to set `option` of the `role` tool, in the words of whoever configured it:
    "cli" (flags and --config keys), "context" (the served graph's context JSON), "python" (Agent
    keywords); without a role (a tool built by hand), its constructor keyword."""
    value = example if example is not None else "..."
    if role is None:
        return f"pass {option}={value!r}"
    if spelling == "cli":
        flag = f"--tool {role}={tool} " if role and tool and option != "name" else ""
        return (f"set it with {flag}--tool {role}.{option}={value} (or in a --config file: "
                f"[tools.{role}] name = {json.dumps(tool)}, {option} = {json.dumps(value)})")
    entry = {"name": tool, option: value}
    if spelling == "context":
        return f"set it in the graph's context: {json.dumps({'tools': {role: entry}})}"
    return f"set it with Agent(tools={{{role!r}: {entry!r}}})"
