"""Errors users see. Each names the thing that was wrong (file, field, value)."""


class LookCloserError(Exception):
    """Base class for every error lookcloser raises on purpose."""


class ImageError(LookCloserError, ValueError):
    """An input image could not be read or is unsafe to decode."""


class ToolNotFoundError(LookCloserError, KeyError):
    """A tool name is not in the registry; the message lists the known names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelLoadError(LookCloserError, RuntimeError):
    """A model could not be loaded (missing weights, no hub access, bad path)."""


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
