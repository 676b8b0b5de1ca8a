"""Small V* Bench-format datasets made on the spot, and VLM doubles that know (or not) the answers."""

from __future__ import annotations

import json
import re
from pathlib import Path

from PIL import Image

#: category -> [(name, question, options with the correct one first)]
QUESTIONS = {
    "attributes": [
        ("cup", "What is the color of the cup?", ["The cup is red.", "The cup is blue.", "The cup is green.", "The cup is white."]),
        ("flag", "Is the flag red or white?", ["The flag is white.", "The flag is red."]),
        ("car", "What is the color of the car?", ["The car is black.", "The car is silver.", "The car is yellow.", "The car is pink."]),
    ],
    "position": [
        ("dog", "Is the dog on the left or right of the bench?", ["The dog is on the left.", "The dog is on the right."]),
        ("lamp", "Is the lamp above or below the sign?", ["The lamp is above the sign.", "The lamp is below the sign."]),
    ],
}


def make_vstar(root: Path, questions: dict = QUESTIONS) -> Path:
    """A V* Bench folder: category/NAME.jpg + NAME.json (bbox [x,y,w,h], first option correct)."""
    for category, entries in questions.items():
        folder = root / category
        folder.mkdir(parents=True, exist_ok=True)
        for name, question, options in entries:
            Image.new("RGB", (64, 48), (120, 80, 40)).save(folder / f"{name}.jpg")
            meta = {"target_object": [name], "bbox": [[4, 6, 10, 8]], "question": question, "options": options}
            (folder / f"{name}.json").write_text(json.dumps(meta), encoding="utf-8")
    return root


def correct_texts(questions: dict = QUESTIONS) -> dict[str, str]:
    return {question: options[0] for entries in questions.values() for _, question, options in entries}


def question_of(prompt: str) -> str:
    match = re.search(r"Question: (.*)", prompt)
    assert match, prompt
    return match.group(1).strip()


def knowing_reply(prompt: str, wrong: set[str] = frozenset()) -> str:
    """SHOW reply naming the right option's text (or, for questions in `wrong`, another option's)."""
    question = question_of(prompt)
    entry = next(options for entries in QUESTIONS.values() for _, q, options in entries if q == question)
    text = entry[1] if question in wrong else entry[0]
    return json.dumps({"answer": text, "missing": []})
