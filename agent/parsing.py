"""Parse the VLM's SHOW reply, forgivingly and explicitly.

The public contract (documented in docs/prompt-contract.md) is one JSON object:
`{"answer": string or null, "missing": [{"name": string, "kind": "object" | "text"}]}`.
Models do not always comply, so parsing tries, in order, and records which path it took:
"json" (the whole reply), "json_fence" (a ```json block or the first {...} in the text),
"seal_phrase" (SEAL's "Sorry, I can not answer the question. Some visual information about the
following objects is missing or unclear: a, b"), and "text" (the reply is taken as the answer).
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from lookcloser.prompts import option_letter
from lookcloser.types import Target

ParsePath = Literal["json", "json_fence", "seal_phrase", "text"]


class MissingTarget(BaseModel):
    name: str
    kind: str = "object"

    @field_validator("kind", mode="before")
    @classmethod
    def _kind(cls, value: Any) -> str:
        value = str(value or "object").strip().lower()
        return "text" if value in ("text", "ocr", "word", "words", "number", "label") else "object"


class ShowReply(BaseModel):
    """The JSON schema SHOW asks for."""

    answer: str | None = None
    missing: list[MissingTarget] = Field(default_factory=list)

    @field_validator("answer", mode="before")
    @classmethod
    def _answer(cls, value: Any) -> str | None:
        if value is None:
            return None
        value = str(value).strip()
        return value or None


class ParsedShow(BaseModel):
    answer: str | None
    targets: list[Target]
    parse_path: ParsePath


_FENCE = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.DOTALL | re.IGNORECASE)
_SEAL = re.compile(
    r"sorry,?\s*i\s*can\s*not\s*answer\s*the\s*question\.?\s*some\s*visual\s*information\s*about\s*the\s*"
    r"following\s*objects\s*is\s*missing\s*or\s*unclear:?\s*(.*)",
    re.IGNORECASE | re.DOTALL,
)


def parse_show(text: str) -> ParsedShow:
    """Turn a SHOW reply into (answer, targets, parse_path)."""
    stripped = text.strip()
    reply = _try_json(stripped)
    if reply is not None:
        return _from_reply(reply, "json")
    for candidate in _json_candidates(stripped):
        reply = _try_json(candidate)
        if reply is not None:
            return _from_reply(reply, "json_fence")
    seal = _SEAL.search(stripped)
    if seal:
        names = [n.strip(" .\n\"'") for n in re.split(r",|;|\band\b", seal.group(1))]
        targets = _targets([MissingTarget(name=n) for n in names if n.strip(" .\n\"'")])
        return ParsedShow(answer=None, targets=targets, parse_path="seal_phrase")
    return ParsedShow(answer=stripped or None, targets=[], parse_path="text")


def _json_candidates(text: str) -> list[str]:
    found = [m.group(1) for m in _FENCE.finditer(text)]
    start = text.find("{")
    end = text.rfind("}")
    if start != -1 and end > start:
        found.append(text[start : end + 1])
    return found


def _try_json(text: str) -> ShowReply | None:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return None
    if not isinstance(data, dict) or not ({"answer", "missing"} & data.keys()):
        return None
    try:
        return ShowReply.model_validate(data)
    except ValidationError:
        return None


def _from_reply(reply: ShowReply, path: ParsePath) -> ParsedShow:
    targets = _targets(reply.missing)
    return ParsedShow(answer=reply.answer if not targets else None, targets=targets, parse_path=path)


def _targets(missing: list[MissingTarget]) -> list[Target]:
    """Drop empty names and duplicates, keeping the model's order."""
    seen: set[tuple[str, str]] = set()
    targets = []
    for item in missing:
        name = " ".join(item.name.split())
        key = (name.casefold(), item.kind)
        if name and key not in seen:
            seen.add(key)
            targets.append(Target(name=name, kind=item.kind))
    return targets


def parse_choice(text: str | None, options: list[str] | None) -> int | None:
    """Map a reply to a 0-based option index: '(B)', 'B', 'B.', 'Answer: B' or the option's text."""
    if not text or not options:
        return None
    clean = text.strip()
    letters = [option_letter(i) for i in range(len(options))]
    patterns = [
        r"^\(?([A-Z])\)?(?:[.):\s]|$)",
        r"\banswer\s*(?:is)?\s*[:\-]?\s*\(?([A-Z])\)?(?:[.):\s]|$)",
        r"\(([A-Z])\)",
    ]
    for pattern in patterns:
        match = re.search(pattern, clean, re.IGNORECASE if "answer" in pattern else 0)
        if match and match.group(1).upper() in letters:
            return letters.index(match.group(1).upper())
    lowered = clean.casefold().strip(" .")
    exact = [i for i, o in enumerate(options) if o.casefold().strip(" .") == lowered]
    if len(exact) == 1:
        return exact[0]
    contained = [i for i, o in enumerate(options) if o.casefold().strip(" .") and o.casefold().strip(" .") in lowered]
    if len(contained) == 1:
        return contained[0]
    return None
