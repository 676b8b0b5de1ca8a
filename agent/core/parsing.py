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

from lookcloser.core.types import Target

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


#: Capital letters that are also English words: "A blue car." / "I think ..." are words, not options.
_WORD_LETTERS = frozenset("AI")
#: After these a bare letter is an option even when words follow ("Option A is right").
_OPTION_WORDS = re.compile(r"\b(?:option|choice)\s*[:\-]?\s*", re.IGNORECASE)
#: After these a bare "A"/"a" followed by words is an article ("The answer is a blue car").
_ANSWER_WORDS = re.compile(
    r"\banswer\b(?:\s+(?:is|would\s+be|will\s+be|should\s+be))?\s*[:\-]?\s*", re.IGNORECASE)
_BRACKETED = re.compile(r"(?<![A-Za-z0-9])[(\[]([A-Za-z])[)\]]")
_DELIMITERS = ".:),;-\u2013\u2014"


def parse_choice(text: str | None, options: list[str] | None) -> int | None:
    """Map a reply to a 0-based option index, or None when it names no option clearly.

    Letters first: the reply opening with a letter ("B", "(B)", "B.", "B) a blue car"), a letter
    after "answer"/"option"/"choice" ("Answer: C", "The answer is (D)", "Option A is right"), or a
    bracketed letter anywhere ("I'd say (B)"). A capital "A" or "I", or any lowercase letter,
    followed by words is read as a word, not a letter: "A blue car." is the option text "a blue car".
    Then option text: the reply equal to one option, else the one option named in it (whole words;
    when several are named and one contains all the others, e.g. "car" and "blue car", the longer).

    When the reply has both a letter and another option's text ("B) a red truck" with (A) a red
    truck, (B) a blue car), the letter wins: the prompt lists the options as "(A) ...", the letter is
    what the model was asked for, and the text is only consulted when no letter is found.
    """
    if not text or not options:
        return None
    clean = re.sub(r"[*`]+", "", text).strip().strip("\"'").strip()
    letter = _letter_choice(clean, len(options))
    if letter is not None:
        return letter
    return _text_choice(clean, options)


def _letter_choice(text: str, count: int) -> int | None:
    candidates = [_letter_at(text, words_ok=False)]
    candidates += [_letter_at(text[m.end():], words_ok=False) for m in _ANSWER_WORDS.finditer(text)]
    candidates += [_letter_at(text[m.end():], words_ok=True) for m in _OPTION_WORDS.finditer(text)]
    candidates += [m.group(1).upper() for m in _BRACKETED.finditer(text)]
    for letter in candidates:
        if letter is not None and ord(letter) - ord("A") < count:
            return ord(letter) - ord("A")
    return None


def _letter_at(text: str, *, words_ok: bool) -> str | None:
    """The option letter `text` opens with, or None ("Blue", "A blue car", "I think")."""
    match = re.match(r"([(\[])?([A-Za-z])([)\]])?", text)
    if not match:
        return None
    opened, letter, closed = match.groups()
    if closed:  # "(B)", "[B]", "B)"
        return letter.upper()
    if opened:  # "(a blue car)"
        return None
    rest = text[match.end():]
    if rest[:1].isalnum() or rest[:1] in ("'", "\u2019"):  # a word ("Blue", "It", "I'm")
        return None
    after = rest.lstrip()
    if not after or after[0] in _DELIMITERS or not any(c.isalnum() for c in after):
        return letter.upper()  # "B", "B.", "B: blue", "B - blue", "B!"
    # a letter followed by words: "B blue" is a letter, "A blue car" / "a blue car" an article
    if letter.isupper() and (words_ok or letter not in _WORD_LETTERS):
        return letter
    return None


def _norm(value: str) -> str:
    return " ".join(value.casefold().split()).strip(" .,;:!?\"'")


def _text_choice(text: str, options: list[str]) -> int | None:
    reply = _norm(text)
    names = [_norm(o) for o in options]
    exact = [i for i, name in enumerate(names) if name and name == reply]
    if len(exact) == 1:
        return exact[0]
    named = [i for i, name in enumerate(names)
             if name and re.search(rf"(?<!\w){re.escape(name)}(?!\w)", reply)]
    if len(named) > 1:  # "car" inside "blue car": keep the options no other named option contains
        named = [i for i in named if not any(j != i and names[i] in names[j] for j in named)]
    return named[0] if len(named) == 1 else None
