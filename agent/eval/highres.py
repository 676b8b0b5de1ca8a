"""Readers for the high-resolution benchmarks reported next to V*: HR-Bench 4K/8K (a TSV with base64 images)
and MME-RealWorld (a JSON array with image paths). Both give the same `Item`s as the other readers.

HR-Bench, as published (read in github.com/DreamMr/HR-Bench: hrbench/vlmeval/dataset/image_mcq.py,
HRBenchDataset: hr_bench_4k.tsv / hr_bench_8k.tsv on huggingface.co/datasets/DreamMr/HR-Bench;
hrbench/vlmeval/dataset/image_base.py reads it with pandas `read_csv(sep='\\t')`): a header row, then one row
per question with the columns `index` (id), `question`, `A` `B` `C` `D` (the options, in this order),
`answer` (the correct option's letter), `category`, `cycle_category` (which rotation of the options the row
is; each question is published four times with its options cycled) and `image` (the image file, base64; a
value of at most 64 characters is the `index` of another row whose image it shares, VLMEvalKit's
space-saving convention). `category` becomes the item's category; `cycle_category` is not used (the official
score is the mean of the per-cycle accuracies, which equals the overall accuracy with four equal cycles).

MME-RealWorld, as published (read in github.com/yfzhang114/MME-RealWorld: README.md "Evaluation Pipeline",
evaluation/model_vqa_mme_real_world.py, evaluation/eval_your_results.py,
evaluation/output_test_template.json; MME_RealWorld.json on huggingface.co/datasets/yifanzhang114/MME-RealWorld):
a JSON array of objects with `Question_id`, `Image` (a path relative to the folder the image archives are
unpacked in), `Text` (the question), `Answer choices` (["(A) ...", "(B) ...", ... "(E) ..."]),
`Ground truth` (a letter), `Task` (Perception / Reasoning), `Subtask` (the domain: Monitoring, Remote
Sensing, ...), `Category` (the task: Objects_Identify, ...), plus `Question Type` and `Dataset` (not used).
The item's category is `Task/Subtask/Category`, the file's own strings; the option text is the choice
without its "(A) " prefix (the eval shows its own letters after shuffling).

Broken rows follow the module's rule (see datasets.py): a row that cannot be asked (an empty option, an
answer letter that names no option, an image that is not base64, no question) is an error row naming the
file, the line or item and the field, and counts as wrong; a file that cannot be read as the format at all
(no header, a required column missing, not a JSON array) raises `DatasetError` in one line.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any, Iterator

from lookcloser.eval.items import DatasetError, Item, shown

__all__ = ["is_mme_realworld", "read_hrbench", "read_mme_realworld"]

HRBENCH_REQUIRED = ("index", "question", "answer", "category", "image")
MME_FIELDS = ("Question_id", "Image", "Text", "Answer choices", "Ground truth")
_CHOICE = re.compile(r"^\(([A-Z])\)\s*(.*)$", re.DOTALL)


# ------------------------------------------------------------------------------------- HR-Bench
def read_hrbench(path: Path) -> list[Item]:
    """Every row of an HR-Bench TSV. Rows are read one at a time and each image is decoded to bytes as its row
    is read, once per distinct image (the cycles of a question share one bytes object), so the 1.9/4.6 GB
    files are never held as text."""
    csv.field_size_limit(max(csv.field_size_limit(), min(sys.maxsize, 2**31 - 1)))  # 8K images: tens of MB
    decoded: dict[bytes, bytes] = {}
    records: list[tuple[int, dict[str, str], int, bytes | str | ValueError]] = []
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            header = _header(path, handle)
            missing = [c for c in (*HRBENCH_REQUIRED, "A", "B") if c not in header]
            if missing:
                found = ", ".join(_clip(h, 24) for h in header[:12])
                raise DatasetError(f"{path}: not an HR-Bench TSV: the header has no column {', '.join(missing)} "
                                   f"(found: {_clip(found, 200)})")
            letters = sorted(h for h in header if len(h) == 1 and "A" <= h <= "Z")
            columns = {name: i for i, name in enumerate(header)}
            for first, last, row in tsv_rows(handle):
                record = {name: row[i] if i < len(row) else "" for name, i in columns.items()}
                image = _image(record.pop("image").strip(), decoded)
                if last > first and any("\n" in cell and "\t" in cell for cell in row):  # a quote ate rows
                    image = _Swallowed(f"a cell that starts with a double quote runs over lines {first}-{last}: "
                                       f"the rows on lines {first + 1}-{last} were read into it (pandas' "
                                       "read_csv, the official reader, reads them the same way); fix the quote")
                records.append((first, record, len(row), image))
    except _TooLong as exc:
        raise DatasetError(f"{path}: {exc}") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path}: cannot read the TSV: {exc}") from None
    by_index = {r["index"].strip(): image for _, r, _, image in records if isinstance(image, bytes)}
    items = []
    for line, record, width, image in records:
        item_id = record["index"].strip() or f"line{line}"
        category = record["category"].strip() or "all"
        try:
            if isinstance(image, _Swallowed):  # said first: every other field of such a row is off too
                raise image
            if width != len(header):
                raise ValueError(f"the row has {width} cells, the header {len(header)}")
            items.append(_hrbench_item(record, item_id, category, letters, image, by_index))
        except ValueError as exc:
            items.append(Item(id=item_id, category=category, error=f"{path}:{line}: {exc}"))
    return items


class _Swallowed(ValueError):
    """A row that took the lines after it into one of its cells (an unclosed double quote)."""


class _TooLong(ValueError):
    """A row past MAX_ROW_CHARS: a quote left open to the end of the file, or a line that is no row."""


#: A header row longer than this is not one (a one-line file of a gigabyte is refused without reading it all).
MAX_HEADER_CHARS = 65_536
#: A data row longer than this is not one (HR-Bench 8K's largest image is tens of MB of base64): a double quote
#: left open would otherwise read the rest of a 4.6 GB file into one cell.
MAX_ROW_CHARS = 512 * 1024**2


def tsv_rows(handle: Any, first_line: int = 2) -> Iterator[tuple[int, int, list[str]]]:
    """(first line, last line, cells) of each non-blank row after the header, split as pandas' read_csv(sep='\\t')
    splits them (the official reader: a cell that starts with a double quote runs to the closing one, line breaks
    and tabs included; "" inside it is one quote; a quote elsewhere is a character), at most MAX_ROW_CHARS each."""
    held = [0, 0]  # characters and lines of the row being read

    def lines() -> Iterator[str]:
        while line := handle.readline(MAX_ROW_CHARS + 1):
            held[0] += len(line)
            held[1] += 1
            if held[0] > MAX_ROW_CHARS:
                at = first_line + reader.line_num - held[1] + 1
                raise _TooLong(f"a cell that starts with a double quote on line {at} runs past {MAX_ROW_CHARS:,} "
                               "characters without its closing quote; fix the quote" if held[1] > 1 else
                               f"line {at} is longer than {MAX_ROW_CHARS:,} characters, so it is no row")
            yield line

    reader = csv.reader(lines(), delimiter="\t")
    for row in reader:
        last = first_line + reader.line_num - 1
        start, held[:] = last - held[1] + 1, [0, 0]
        if any(cell.strip() for cell in row):
            yield start, last, row


def _header(path: Path, handle: Any) -> list[str]:
    """The header row's column names, read with a bounded readline; the handle is left at the first data row."""
    line = handle.readline(MAX_HEADER_CHARS + 1)
    if not line.strip():
        raise DatasetError(f"{path}: empty file; an HR-Bench TSV starts with a header row "
                           f"({', '.join(HRBENCH_REQUIRED)}, A, B, ...)")
    if len(line) > MAX_HEADER_CHARS and not line.endswith("\n"):
        raise DatasetError(f"{path}: not an HR-Bench TSV: its first line is longer than {MAX_HEADER_CHARS:,} "
                           f"characters, so it is no header row (it begins {_clip(line, 40)!r})")
    return [h.strip() for h in next(csv.reader([line], delimiter="\t"), [])]


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _image(encoded: str, decoded: dict[bytes, bytes]) -> bytes | str | ValueError:
    """The row's image as bytes; a value of at most 64 characters stays text (the index of the row holding
    the image, VLMEvalKit's convention); bad base64 is kept as the error its row will carry."""
    if len(encoded) <= 64:
        return encoded
    key = hashlib.sha1(encoded.encode("ascii", "replace")).digest()
    if key not in decoded:
        try:
            decoded[key] = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return ValueError(f"field 'image' is not valid base64 ({len(encoded)} characters)")
    return decoded[key]


def _hrbench_item(record: dict[str, str], item_id: str, category: str, letters: list[str],
                  image: bytes | str | ValueError, by_index: dict[str, bytes]) -> Item:
    if not record["index"].strip():
        raise ValueError("field 'index' is empty")
    question = record["question"].strip()
    if not question:
        raise ValueError("field 'question' is empty")
    empty = [letter for letter in letters if not record[letter].strip()]
    if empty:  # HR-Bench has four options on every row: an empty one is a broken row, not a 3-option question
        raise ValueError(f"option {', '.join(empty)} is empty (columns {', '.join(letters)})")
    options = [record[letter].strip() for letter in letters]
    answer = record["answer"].strip().upper()
    if answer not in letters:
        raise ValueError(f"field 'answer' = {shown(record['answer'])} is not one of the option letters "
                         f"{', '.join(letters)}")
    if isinstance(image, ValueError):
        raise image
    if image == "":
        raise ValueError("field 'image' is empty")
    if isinstance(image, str):
        if image not in by_index:
            raise ValueError(f"field 'image' = {shown(image)} is neither base64 nor the index of a row with an image")
        image = by_index[image]
    index = letters.index(answer)
    return Item(id=item_id, category=category, image=image, question=question, options=options,
                answer_index=index, answer=options[index])


# -------------------------------------------------------------------------------- MME-RealWorld
def is_mme_realworld(data: Any) -> bool:
    """A JSON array whose first object carries MME-RealWorld's own field names."""
    first = next((r for r in data if isinstance(r, dict)), None) if isinstance(data, list) else None
    return first is not None and "Answer choices" in first and ("Question_id" in first or "Ground truth" in first)


def read_mme_realworld(path: Path, data: list[Any]) -> Iterator[Item]:
    """Every object of MME_RealWorld.json (or _CN); `Image` is resolved against the JSON's folder."""
    for number, record in enumerate(data):
        fallback = f"item{number}"
        if not isinstance(record, dict):
            yield Item(id=fallback, error=f"{path} item {number}: expected a JSON object, got {type(record).__name__}")
            continue
        raw_id = record.get("Question_id")
        item_id = str(raw_id).strip() if raw_id is not None and str(raw_id).strip() else fallback
        parts = [str(record[k]).strip() for k in ("Task", "Subtask", "Category") if str(record.get(k) or "").strip()]
        category = "/".join(parts) or "all"
        try:
            yield _mme_item(record, item_id, category, path.parent)
        except ValueError as exc:
            yield Item(id=item_id, category=category, error=f"{path} item {number} ({item_id}): {exc}")


def _mme_item(record: dict[str, Any], item_id: str, category: str, base: Path) -> Item:
    missing = [f for f in MME_FIELDS if f not in record]
    if missing:
        raise ValueError(f"no field {', '.join(repr(f) for f in missing)}")
    image, question = record["Image"], record["Text"]
    if not isinstance(image, str) or not image.strip():
        raise ValueError(f"field 'Image' must be a file path, got {shown(image)}")
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"field 'Text' must be a non-empty string, got {shown(question)}")
    choices = record["Answer choices"]
    if not isinstance(choices, list) or len(choices) < 2:
        raise ValueError(f"field 'Answer choices' must list at least two choices, got {shown(choices)}")
    letters, options = [], []
    for k, choice in enumerate(choices):
        match = _CHOICE.match(choice.strip()) if isinstance(choice, str) else None
        expected = chr(65 + k)
        if match is None or match.group(1) != expected or not match.group(2).strip():
            raise ValueError(f"field 'Answer choices'[{k}] must read '({expected}) TEXT', got {shown(choice)}")
        letters.append(expected)
        options.append(match.group(2).strip())
    truth = record["Ground truth"]
    letter = truth.strip().strip("()").upper() if isinstance(truth, str) else None
    if letter not in letters:
        raise ValueError(f"field 'Ground truth' = {shown(truth)} is not one of the choice letters {', '.join(letters)}")
    image_path = Path(image) if Path(image).is_absolute() else base / image
    index = letters.index(letter)
    return Item(id=item_id, category=category, image=str(image_path), question=question.strip(),
                options=options, answer_index=index, answer=options[index])


def load_json_array(path: Path) -> Any:
    """The whole file as JSON (MME_RealWorld.json is 16 MB); a bad file is one `DatasetError` line."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            return json.load(handle)
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: bad JSON: {exc}") from None
