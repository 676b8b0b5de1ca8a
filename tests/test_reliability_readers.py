"""The eval readers on what a probe sends them (issue 30 item 8, and what the property tests found beyond it):
a bad value is quoted in a few dozen characters (a list of 150,000 was repeated whole, a 750 kB error line),
a huge JSON Lines line is refused without being held, an HR-Bench TSV is split as the official reader splits it
(pandas' read_csv(sep='\\t'), compared row by row), a cell a stray quote runs to the end of the file is refused
in one line without reading the file into it, and a well-quoted multi-line cell is a cell, not a swallowed row."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from lookcloser.eval.datasets import DatasetError, load_items

HEADER = ["index", "question", "A", "B", "C", "D", "answer", "category", "image"]


def _image_cell() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buffer, "JPEG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_a_huge_bad_value_is_quoted_in_a_few_dozen_characters(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps({"id": "a", "image": ["x"] * 150_000, "question": "q?"}) + "\n", encoding="utf-8")
    [item] = load_items(path)
    assert item.error.startswith(f"{path}:1: field 'image' must be a file path, got ['x', 'x'")
    assert len(item.error) < len(str(path)) + 200


def test_a_huge_json_lines_line_is_an_error_row_not_held(tmp_path):
    from lookcloser.eval.datasets import MAX_LINE_CHARS  # noqa: PLC0415

    path = tmp_path / "items.jsonl"
    good = json.dumps({"id": "b", "image": "b.jpg", "question": "q?", "options": ["x", "y"], "answer": 0})
    path.write_text("z" * (MAX_LINE_CHARS * 3 + 5) + "\n" + good + "\n", encoding="utf-8")
    first, second = load_items(path)
    assert first.error == (f"{path}:1: the line is longer than {MAX_LINE_CHARS:,} characters, so it is no item "
                           f"(it begins {'z' * 40!r}…)")
    assert second.id == "b" and second.error is None  # the line after it is read, and numbered, as it is


def test_a_well_quoted_multi_line_cell_is_a_cell_not_a_swallowed_row(tmp_path):
    image = _image_cell()
    rows = ["\t".join(HEADER), f'1\t"What does the\nsign say?"\tGATE 1\tGATE 2\tGATE 3\tGATE 4\tB\tsingle\t{image}',
            f"2\tq2?\ta\tb\tc\td\tA\tsingle\t1"]
    path = tmp_path / "hr.tsv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    first, second = load_items(path)
    assert first.error is None and first.question == "What does the\nsign say?" and first.answer == "GATE 2"
    assert second.error is None and second.image == first.image  # line 4 is its own row


def test_a_quote_left_open_to_the_end_of_the_file_is_one_line(tmp_path, monkeypatch):
    import lookcloser.eval.highres as highres  # noqa: PLC0415

    monkeypatch.setattr(highres, "MAX_ROW_CHARS", 10_000)  # the real limit is 512 MiB: an 8K image is tens of MB
    image = _image_cell()
    rows = ["\t".join(HEADER), f'1\t"q1?\ta\tb\tc\td\tA\tsingle\t{image}',
            *(f"{i}\tq{i}?\ta\tb\tc\td\tA\tsingle\t1" for i in range(2, 2000))]
    path = tmp_path / "hr.tsv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError) as refused:
        load_items(path)
    assert str(refused.value).startswith(f"{path}: a cell that starts with a double quote on line 2 runs past "
                                         "10,000 characters without its closing quote")
    assert len(str(refused.value)) < 300


# ------------------------------------------------------------------- as the official reader reads it
cell = st.lists(st.sampled_from(["a", "b", " ", '"', "\n", "\r\n", "é"]), max_size=6).map("".join)


@settings(max_examples=150, deadline=3000, derandomize=True, database=None)
@given(st.lists(st.lists(cell, min_size=9, max_size=9), min_size=1, max_size=5))
def test_cells_are_split_as_pandas_read_csv_splits_them(rows):
    """Where pandas reads a TSV without error (its ParserError is a whole file refused; ours is a row), each row
    pandas reads is ours, cell for cell: quotes, doubled quotes, line breaks inside a quoted cell."""
    pd = pytest.importorskip("pandas")  # the eval extra's datasets brings it
    from lookcloser.eval.highres import tsv_rows  # noqa: PLC0415

    text = "\n".join("\t".join(row) for row in [HEADER, *rows]) + "\n"
    try:
        frame = pd.read_csv(io.StringIO(text), sep="\t", dtype=str, keep_default_na=False)
    except pd.errors.ParserError:
        return
    if list(frame.columns) != HEADER:  # pandas took a first column as the index (a row one cell too long)
        return
    theirs = [list(r) for r in frame.itertuples(index=False) if any(c.strip() for c in r)]
    handle = io.StringIO(text, newline="")
    handle.readline()
    ours = [row + [""] * (len(HEADER) - len(row)) for _, _, row in tsv_rows(handle)]
    assert ours == theirs
