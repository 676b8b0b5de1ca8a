"""Errors users see. Each names the thing that was wrong (file, field, value)."""

from __future__ import annotations


class LookCloserError(Exception):
    """Base class for every error lookcloser raises on purpose."""


class InputError(LookCloserError, ValueError):
    """An argument that cannot be used: an empty question, bad options, a malformed batch item or target
    (Python API), or a command-line value that fails its check. The message names the argument."""


class ImageError(LookCloserError, ValueError):
    """An input image could not be read or is unsafe to decode."""


class ToolNotFoundError(LookCloserError, KeyError):
    """A tool name is not in the registry; the message lists the known names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class SettingsError(LookCloserError, ValueError):
    """Tool, VLM or agent settings that cannot be used (unknown option, clashing values, a bad --config
    file); the message names the file, role, option and value."""


class ModelLoadError(LookCloserError, RuntimeError):
    """A model could not be loaded (missing weights, no hub access, bad path).

    When changing one tool option fixes it, `option` names it (e.g. "model") and `example` is a value
    to show. The agent that ran the tool fills in `role`, `tool` and `spelling` (who configured it:
    "python", "cli" or "context"), and the message then ends with that setting written the way that
    caller writes it (`lookcloser.settings.spell`): Python keywords, CLI flags, or context JSON.
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
        from lookcloser.settings import spell  # noqa: PLC0415 - stdlib only; keeps this module import-free

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
