"""Match the lines a read-all search returns to a text target: quoted text first.

A text target such as `the sign saying "EXIT"` or `the word EXIT` names the text it expects;
lines matching it (normalised, fuzzy) are put first. Other phrases ("the black framed board")
keep every line in reading order and let the VLM decide which belong to the target.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Sequence

from rapidfuzz.distance import Levenshtein

from lookcloser.core.types import Detection

__all__ = ["edit_distance", "match_score", "normalise", "quoted_text", "rank_lines", "reading"]

_QUOTED = re.compile(r"[\"“”„«»]([^\"“”„«»]+)[\"“”„«»]|(?<![A-Za-z])'([^']+)'(?![A-Za-z])")
_KEYWORD = re.compile(
    r"\b(?:the\s+)?(?:words?|text|label|saying|says|reads|reading|written|spelling)\s*:?\s+(.+)$", re.IGNORECASE
)
_GENERIC = {"text", "the text", "all text", "any text", "words", "the words", "writing", "the writing"}


def quoted_text(phrase: str) -> str | None:
    """The text a phrase asks for: quoted ("EXIT", 'EXIT', “EXIT”) or after word/saying/reads; else None."""
    match = _QUOTED.search(phrase)
    if match:
        found = (match.group(1) or match.group(2) or "").strip()
        return found or None
    match = _KEYWORD.search(phrase.strip())
    if match:
        found = match.group(1).strip().strip(".?!,;:")
        if found and found.casefold() not in _GENERIC and not found.casefold().startswith(("on ", "in ", "of ", "at ")):
            return found
    return None


def normalise(text: str) -> str:
    """Casefold, strip accents, keep a-z and 0-9 only (the benchmark's normalisation)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return re.sub(r"[^a-z0-9]", "", decomposed)


def reading(text: str) -> str:
    """A line's reading up to case and spaces ("the ship" = "TheShip"), punctuation and digits kept:
    "1.0" and "10" are two readings of a seven-segment "10", which `normalise` would merge."""
    return "".join(text.casefold().split())


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions), by rapidfuzz."""
    return Levenshtein.distance(a, b)


def match_score(line: str, query: str) -> float:
    """1.0 when the normalised query is inside the line; else 1 - edit distance / query length (>= 0)."""
    a, q = normalise(line), normalise(query)
    if not q:
        return 0.0
    if q in a:
        return 1.0
    return max(0.0, 1.0 - edit_distance(a, q) / len(q))


def rank_lines(lines: Sequence[Detection], phrase: str) -> list[tuple[Detection, float | None]]:
    """Lines with their match to the quoted text (None when the phrase quotes nothing).

    Quoted text: best match first (ties by confidence). Otherwise reading order (top to bottom,
    then left to right, rows grouped by half a line height).
    """
    query = quoted_text(phrase)
    if query is None:
        def reading_key(det: Detection) -> tuple[float, float]:
            row = round(det.box.y1 / max(det.box.height / 2, 1.0))
            return (row * max(det.box.height / 2, 1.0), det.box.x1)

        return [(line, None) for line in sorted(lines, key=reading_key)]
    scored = [(line, match_score(line.text or "", query)) for line in lines]
    return sorted(scored, key=lambda pair: (-pair[1], -pair[0].score))
