"""Read evaluation sets into one `Item` shape: the V* Bench folder, a JSON Lines file, a Hugging Face dataset.

Why one shape: the runner, the Ray actors and the localizer eval then never care where an item came
from. A broken record (bad JSON, no question, an answer that is not an option) does not stop the
read: it becomes an `Item` with `error` set, and the runner writes it as an error row, so one bad
file costs one row, not the run. Only a dataset that cannot be read at all raises `DatasetError`.

Formats (see docs/eval.md):
- V* Bench folder: category sub-folders; per image NAME.jpg + NAME.json with `question`, `options`
  (the first is correct), `target_object` (names) and `bbox` ([x, y, w, h] per target).
- JSON Lines: one object per line: `image` (path, relative to the file), `question`, `options` with
  `answer` (option index or the option's text; absent: the first option is correct, as in V*), or
  `answer` text alone (open question); optional `id`, `category`, `targets` [{name, kind?, box
  [x1,y1,x2,y2]}]. A text_dev line (`text`, `box_xyxy`) is one text target.
- HR-Bench 4K/8K (`.tsv`) and MME-RealWorld (a `.json` array): `lookcloser.eval.highres`.
- Hugging Face: a `save_to_disk` folder, a .parquet file or a folder of .parquet files. Columns are
  matched by common names (image, question, options/choices, answer, category, id, bbox).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Iterator

from lookcloser.eval.items import DatasetError, Item, TargetBox, shown
from lookcloser.imaging.files import IMAGE_SUFFIXES

__all__ = ["DatasetError", "Item", "TargetBox", "load_items"]


def load_items(path: str | Path, *, limit: int | None = None) -> list[Item]:
    """Every item of the dataset at `path` (first `limit` only), in a stable order."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"dataset not found: {path}")
    if path.is_file() and path.suffix.lower() == ".tsv":
        from lookcloser.eval.highres import read_hrbench  # noqa: PLC0415 (only when a .tsv is read)
        items = read_hrbench(path)
    elif path.is_file() and path.suffix.lower() == ".json" and _starts_with(path, "["):
        from lookcloser.eval.highres import is_mme_realworld, load_json_array, read_mme_realworld  # noqa: PLC0415
        data = load_json_array(path)
        if not is_mme_realworld(data):
            raise DatasetError(f"{path}: a JSON array, but not MME-RealWorld's (its objects have Question_id, Image, "
                               "Text, 'Answer choices', 'Ground truth'); other questions go one JSON object a line")
        items = list(read_mme_realworld(path, data))
    elif path.is_file() and path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        items = list(_read_jsonl(path))
    elif path.is_file() and path.suffix.lower() == ".parquet" or path.is_dir() and _is_hf(path):
        items = _read_hf(path)
    elif path.is_dir() and any(p.is_dir() and any(p.glob("*.json")) for p in path.iterdir()):
        items = list(_read_vstar(path))
    elif path.is_dir() and (path / "items.jsonl").is_file():
        items = list(_read_jsonl(path / "items.jsonl"))
    else:
        raise DatasetError(
            f"{path}: not a known dataset layout; expected a V* Bench folder (category folders of NAME.jpg + "
            "NAME.json), a .jsonl file (or a folder with items.jsonl), a .parquet file, a Hugging Face "
            "save_to_disk folder, an HR-Bench .tsv or MME-RealWorld's .json")
    if not items:
        raise DatasetError(f"{path}: holds no items, so nothing would be measured")
    ids = [item.id for item in items]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise DatasetError(f"{path}: item ids must be unique (results are resumed by id); repeated: "
                           f"{', '.join(duplicates[:5])}")
    return items[:limit] if limit is not None else items


def _starts_with(path: Path, char: str) -> bool:
    """Whether the file's first non-blank character is `char` (a JSON array, not JSON Lines)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from None
    return head[:1] == char.encode()


# ------------------------------------------------------------------------------ V* Bench folder
def _read_vstar(root: Path) -> Iterator[Item]:
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for meta in sorted(folder.glob("*.json")):
            item_id = f"{folder.name}/{meta.stem}"
            image = next((str(meta.with_suffix(s)) for s in IMAGE_SUFFIXES if meta.with_suffix(s).exists()),
                         str(meta.with_suffix(".jpg")))  # a missing image is the runner's error row
            try:
                record = json.loads(meta.read_text(encoding="utf-8"))
                yield _vstar_item(item_id, folder.name, image, record, meta)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                yield Item(id=item_id, category=folder.name, image=image, error=f"{meta}: bad JSON: {exc}")
            except (KeyError, TypeError, ValueError) as exc:
                yield Item(id=item_id, category=folder.name, image=image, error=f"{meta}: {exc}")


def _vstar_item(item_id: str, category: str, image: str, record: Any, meta: Path) -> Item:
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    options = _options(record.get("options"), "options")
    names = record.get("target_object") or []
    boxes = record.get("bbox") or []
    if len(boxes) != len(names):
        raise ValueError(f"'target_object' names {len(names)} targets but 'bbox' has {len(boxes)} boxes")
    targets = [TargetBox(name=str(n), box=_xywh_to_xyxy(b, f"bbox[{i}]")) for i, (n, b) in enumerate(zip(names, boxes))]
    return Item(id=item_id, category=category, image=image, question=_text(record.get("question"), "question"),
                options=options, answer_index=0, answer=options[0], targets=targets)


# ------------------------------------------------------------------------------------ JSON Lines
#: A JSON Lines line longer than this is no item (an item names its image by path: a few hundred characters); it
#: is an error row, read past in pieces, never held whole.
MAX_LINE_CHARS = 1024**2


def _lines(handle: Any) -> Iterator[tuple[str, bool]]:
    """(line, whole) for each line; a line past MAX_LINE_CHARS comes as its first piece, the rest read past."""
    while line := handle.readline(MAX_LINE_CHARS + 1):
        if len(line) <= MAX_LINE_CHARS or line.endswith("\n"):
            yield line, True
            continue
        while (rest := handle.readline(MAX_LINE_CHARS)) and not rest.endswith("\n"):
            pass
        yield line, False


def _read_jsonl(path: Path) -> Iterator[Item]:
    base = path.parent
    with open(path, encoding="utf-8") as handle:
        for number, (line, whole) in enumerate(_lines(handle), start=1):
            if not line.strip():
                continue
            fallback = f"line{number}"
            if not whole:
                yield Item(id=fallback, error=f"{path}:{number}: the line is longer than {MAX_LINE_CHARS:,} "
                                              f"characters, so it is no item (it begins {line[:40]!r}…)")
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield Item(id=fallback, error=f"{path}:{number}: bad JSON: {exc}")
                continue
            if not isinstance(record, dict):
                yield Item(id=fallback, error=f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
                continue
            item_id = str(record.get("id") or fallback)
            category = str(record.get("category") or "all")
            try:
                yield _record_item(record, item_id, category, base)
            except (KeyError, TypeError, ValueError) as exc:
                yield Item(id=item_id, category=category, error=f"{path}:{number}: {exc}")


def _record_item(record: dict[str, Any], item_id: str, category: str, base: Path) -> Item:
    image = record.get("image")
    if not isinstance(image, str) or not image.strip():
        raise ValueError(f"field 'image' must be a file path, got {shown(image)}")
    image_path = Path(image) if Path(image).is_absolute() else base / image
    targets = [_target(t, i) for i, t in enumerate(record.get("targets") or [])]
    if "text" in record and "box_xyxy" in record:  # a text_dev line: one text target
        targets.append(TargetBox(name=str(record["text"]), box=_xyxy(record["box_xyxy"], "box_xyxy"), kind="text"))
    question = record.get("question")
    options = _options(record["options"], "options") if record.get("options") is not None else None
    answer, answer_index = record.get("answer"), None
    if options is not None:
        answer_index = _answer_index(answer, options)
        answer = options[answer_index]
    elif answer is not None:
        answer = _text(answer, "answer")
    if question is not None:
        question = _text(question, "question")
        if options is None and answer is None:
            raise ValueError("a question needs 'options' or an 'answer'")
    elif not targets:
        raise ValueError("a record needs a 'question' or annotated 'targets'")
    return Item(id=item_id, category=category, image=str(image_path), question=question, options=options,
                answer_index=answer_index, answer=answer, targets=targets)


def _answer_index(answer: Any, options: list[str]) -> int:
    if answer is None:
        return 0  # the V* convention: the first option is correct
    if isinstance(answer, bool):
        raise ValueError(f"field 'answer' must be an option index or an option's text, got {shown(answer)}")
    if isinstance(answer, int):
        if not 0 <= answer < len(options):
            raise ValueError(f"field 'answer' = {answer} is not an index of the {len(options)} options")
        return answer
    text = str(answer).strip()
    if len(text) == 1 and text.upper().isalpha() and ord(text.upper()) - 65 < len(options):
        return ord(text.upper()) - 65  # a letter: "B"
    if text in options:
        return options.index(text)
    raise ValueError(f"field 'answer' = {shown(answer)} is neither an option index, a letter nor one of the options")


def _target(value: Any, index: int) -> TargetBox:
    if not isinstance(value, dict) or not str(value.get("name") or "").strip():
        raise ValueError(f"targets[{index}] must be an object with a 'name', got {shown(value)}")
    kind = str(value.get("kind") or "object")
    if kind not in ("object", "text"):
        raise ValueError(f"targets[{index}].kind must be 'object' or 'text', got {shown(kind)}")
    box = _xyxy(value["box"], f"targets[{index}].box") if value.get("box") is not None else None
    return TargetBox(name=str(value["name"]).strip(), box=box, kind=kind)


# ---------------------------------------------------------------------------- Hugging Face data
def _is_hf(path: Path) -> bool:
    return (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists() or any(path.glob("*.parquet"))


def _read_hf(path: Path) -> list[Item]:
    try:
        import datasets
    except ImportError:
        raise DatasetError(f"{path}: reading a Hugging Face dataset needs the 'datasets' package: "
                           "pip install 'lookcloser[eval]'") from None
    try:
        if path.is_file() or any(path.glob("*.parquet")):
            files = [str(path)] if path.is_file() else sorted(str(p) for p in path.glob("*.parquet"))
            table = datasets.load_dataset("parquet", data_files=files, split="train")
        else:
            table = datasets.load_from_disk(str(path))
    except Exception as exc:  # the library's own errors vary by version; one line names the path
        raise DatasetError(f"{path}: cannot load the Hugging Face dataset: {exc}") from None
    if isinstance(table, datasets.DatasetDict):
        split = "test" if "test" in table else next(iter(table))
        table = table[split]
    columns = set(table.column_names)
    image_column = _first(columns, ("image", "img", "image_path"), path, required=True)
    if isinstance(table.features.get(image_column), datasets.Image):
        table = table.cast_column(image_column, datasets.Image(decode=False))  # keep the original bytes
    question_column = _first(columns, ("question", "prompt", "query"), path)
    option_column = _first(columns, ("options", "choices"), path)
    items = []
    for index, row in enumerate(table):
        item_id = str(row.get("id") or row.get("question_id") or index)
        category = str(row.get("category") or row.get("type") or "all")
        try:
            record = {"id": item_id, "question": row.get(question_column) if question_column else None,
                      "options": row.get(option_column) if option_column else None,
                      "answer": row.get("answer", row.get("label"))}
            options = _options(record["options"], option_column) if record["options"] is not None else None
            answer = record["answer"]
            answer_index = _answer_index(answer, options) if options is not None else None
            image = _hf_image(row[image_column], path)
            names, boxes = row.get("target_object") or [], row.get("bbox") or []
            targets = [TargetBox(name=str(n), box=_xywh_to_xyxy(b, f"bbox[{i}]")) for i, (n, b) in enumerate(zip(names, boxes))]
            items.append(Item(id=item_id, category=category, image=image,
                              question=_text(record["question"], question_column or "question"), options=options,
                              answer_index=answer_index,
                              answer=options[answer_index] if options is not None else _opt_text(answer),
                              targets=targets))
        except (KeyError, TypeError, ValueError) as exc:
            items.append(Item(id=item_id, category=category, error=f"{path} row {index}: {exc}"))
    return items


def _hf_image(value: Any, base: Path) -> str | bytes:
    if isinstance(value, dict) and value.get("bytes"):
        return bytes(value["bytes"])
    path = value.get("path") if isinstance(value, dict) else value
    if isinstance(path, str) and path:
        return path if Path(path).is_absolute() else str((base if base.is_dir() else base.parent) / path)
    if hasattr(value, "save"):  # a decoded PIL image
        buffer = io.BytesIO()
        value.save(buffer, format="PNG")
        return buffer.getvalue()
    raise ValueError(f"image column holds neither bytes nor a path: {type(value).__name__}")


def _first(columns: set[str], names: tuple[str, ...], path: Path, *, required: bool = False) -> str | None:
    found = next((n for n in names if n in columns), None)
    if found is None and required:
        raise DatasetError(f"{path}: no image column; expected one of {', '.join(names)}, "
                           f"found columns: {', '.join(sorted(columns))}")
    return found


# ----------------------------------------------------------------------------------- field checks
def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"field '{name}' must be a non-empty string, got {shown(value)}")
    return value.strip()


def _opt_text(value: Any) -> str | None:
    return None if value is None else str(value).strip() or None


def _options(value: Any, name: str) -> list[str]:
    if not isinstance(value, (list, tuple)) or len(value) < 2 or any(not str(o).strip() for o in value):
        raise ValueError(f"field '{name}' must list at least two non-empty options, got {shown(value)}")
    return [str(o).strip() for o in value]


def _numbers(value: Any, name: str) -> list[float]:
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise ValueError(f"field '{name}' must be 4 numbers, got {shown(value)}")
    try:
        return [float(v) for v in value]
    except (TypeError, ValueError):
        raise ValueError(f"field '{name}' must be 4 numbers, got {shown(value)}") from None


def _xywh_to_xyxy(value: Any, name: str) -> list[float]:
    x, y, w, h = _numbers(value, name)
    if w < 0 or h < 0:
        raise ValueError(f"field '{name}' has a negative width or height: {shown(value)}")
    return [x, y, x + w, y + h]


def _xyxy(value: Any, name: str) -> list[float]:
    x1, y1, x2, y2 = _numbers(value, name)
    if x2 < x1 or y2 < y1:
        raise ValueError(f"field '{name}' must be [x1, y1, x2, y2] with x2 >= x1 and y2 >= y1, got {shown(value)}")
    return [x1, y1, x2, y2]
