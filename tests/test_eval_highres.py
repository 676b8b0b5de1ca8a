"""HR-Bench (TSV, base64 images) and MME-RealWorld (JSON array, image paths) read into `Item`s, run through
`lookcloser eval` with an OpenAI-compatible stub as the VLM, and malformed files as one-line errors. The files
are written here in the published formats (columns and field names as in DreamMr/HR-Bench and
yfzhang114/MME-RealWorld), with tiny PIL images."""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path

import pytest
from eval_helpers import question_of
from openai_stub import StubServer, prompt_text
from PIL import Image
from typer.testing import CliRunner

from lookcloser.entrypoints.cli import app
from lookcloser.eval import DatasetError, load_items, read_rows

runner = CliRunner()
HEADER = ["index", "question", "A", "B", "C", "D", "answer", "category", "cycle_category", "image"]

#: (index, question, options A-D, answer letter, category, cycle)
HR_ROWS = [
    (0, "What colour is the kite?", ["red", "blue", "green", "white"], "B", "single", "0"),
    (1, "What colour is the kite?", ["white", "red", "blue", "green"], "C", "single", "1"),
    (2, "Which sign is left of the car?", ["stop", "yield", "exit", "none"], "A", "cross", "0"),
    (3, 'How many "dots" are on the tile?', ["two", "three", "four", "five"], "D", "cross", "0"),
]


def _b64_png(colour) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), colour).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _write_tsv(path: Path, rows: list[list[str]], header=HEADER) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:  # as pandas to_csv(sep='\t') writes it
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def make_hrbench(path: Path) -> Path:
    kite = _b64_png((200, 30, 30))
    rows = []
    for index, question, options, answer, category, cycle in HR_ROWS:
        image = kite if index == 0 else "0" if index == 1 else _b64_png((10, 10 * index, 90))
        rows.append([str(index), question, *options, answer, category, cycle, image])  # row 1 shares row 0's image
    return _write_tsv(path, rows)


#: (Question_id, Task, Subtask, Category, question, choices, ground truth)
MME_ROWS = [
    ("Perception/Autonomous_Driving/Objects_Identify/0000", "Perception", "Autonomous_Driving", "Objects_Identify",
     "What is in front of the ego car?", ["many cars", "one truck", "a bus", "nothing", "All the above answers are wrong."], "B"),
    ("Perception/Remote Sensing/count/0001", "Perception", "Remote Sensing", "count",
     "How many planes are on the apron?", ["3", "4", "5", "6", "The image does not feature the planes."], "E"),
    ("Perception/Remote Sensing/count/0002", "Perception", "Remote Sensing", "count",
     "How many ships are in the harbour?", ["1", "2", "7", "9", "The image does not feature the ships."], "C"),
]


def _mme_record(qid, task, subtask, category, question, choices, truth, image):
    return {"Question_id": qid, "Question Type": "Multiple Choice", "Image": image, "Text": question,
            "Answer choices": [f"({chr(65 + k)}) {c}" for k, c in enumerate(choices)], "Ground truth": truth,
            "Task": task, "Subtask": subtask, "Category": category, "Dataset": "test"}


def make_mme(root: Path) -> Path:
    (root / "AutonomousDriving").mkdir(parents=True)
    (root / "remote_sensing").mkdir()
    records = []
    for number, row in enumerate(MME_ROWS):
        image = f"{'AutonomousDriving' if number == 0 else 'remote_sensing'}/img{number}.jpg"
        Image.new("RGB", (40, 30), (number * 60, 90, 120)).save(root / image)
        records.append(_mme_record(*row, image))
    (root / "MME_RealWorld.json").write_text(json.dumps(records, indent=4), encoding="utf-8")
    return root / "MME_RealWorld.json"


# ------------------------------------------------------------------------------------------ reading
def test_hrbench_tsv_reads_back(tmp_path):
    items = load_items(make_hrbench(tmp_path / "hr_bench_4k.tsv"))
    assert [i.id for i in items] == ["0", "1", "2", "3"]
    assert all(i.error is None for i in items), [i.error for i in items]
    first, second = items[0], items[1]
    assert first.question == "What colour is the kite?" and first.options == ["red", "blue", "green", "white"]
    assert (first.answer_index, first.answer, first.category) == (1, "blue", "single")
    assert (second.answer_index, second.answer) == (2, "blue")
    assert items[3].question == 'How many "dots" are on the tile?' and items[3].answer == "five"
    assert [i.category for i in items] == ["single", "single", "cross", "cross"]
    assert isinstance(first.image, bytes) and Image.open(io.BytesIO(first.image)).size == (24, 16)
    assert second.image is first.image  # a shared image (by index reference or identical base64) is held once
    assert first.to_json()["image"].endswith("bytes>")


def test_mme_realworld_json_reads_back(tmp_path):
    path = make_mme(tmp_path / "mme")
    items = load_items(path)
    assert [i.id for i in items] == [r[0] for r in MME_ROWS] and all(i.error is None for i in items)
    first = items[0]
    assert first.question == "What is in front of the ego car?"
    assert first.options == ["many cars", "one truck", "a bus", "nothing", "All the above answers are wrong."]
    assert (first.answer_index, first.answer) == (1, "one truck")
    assert first.category == "Perception/Autonomous_Driving/Objects_Identify"
    assert first.image == str(tmp_path / "mme" / "AutonomousDriving" / "img0.jpg") and Path(first.image).is_file()
    assert (items[1].answer_index, items[1].category) == (4, "Perception/Remote Sensing/count")


# -------------------------------------------------------------------------------------- bad input
def test_hrbench_bad_rows_are_error_rows_naming_line_and_field(tmp_path):
    good = _b64_png("white")
    rows = [
        ["10", "Q ok?", "a", "b", "c", "d", "A", "single", "0", good],
        ["11", "Q missing C?", "a", "b", "", "d", "A", "single", "0", good],
        ["12", "Q answer E?", "a", "b", "c", "d", "E", "cross", "0", good],
        ["13", "Q bad image?", "a", "b", "c", "d", "B", "cross", "0", "not base64 at all!" * 5],
        ["14", "Q short row?", "a", "b", "c", "d", "B", "cross"],
        ["15", "Q dangling ref?", "a", "b", "c", "d", "B", "cross", "0", "99"],
    ]
    path = _write_tsv(tmp_path / "bad.tsv", rows)
    items = {i.id: i for i in load_items(path)}
    assert items["10"].error is None and items["10"].answer == "a"
    assert items["11"].error == f"{path}:3: option C is empty (columns A, B, C, D)"
    assert items["12"].error == f"{path}:4: field 'answer' = 'E' is not one of the option letters A, B, C, D"
    assert items["13"].error.startswith(f"{path}:5: field 'image' is not valid base64")
    assert items["14"].error == f"{path}:6: the row has 8 cells, the header 10"
    assert items["15"].error.startswith(f"{path}:7: field 'image' = '99' is neither base64 nor the index")
    assert all("\n" not in i.error for i in items.values() if i.error)


def test_hrbench_unreadable_files_are_one_line(tmp_path):
    no_answer = _write_tsv(tmp_path / "x.tsv", [["1", "q", "a", "b", "cat", "img"]],
                           header=["index", "question", "A", "B", "category", "image"])
    with pytest.raises(DatasetError, match=r"x\.tsv: not an HR-Bench TSV: the header has no column answer"):
        load_items(no_answer)
    (tmp_path / "empty.tsv").write_text("")
    with pytest.raises(DatasetError, match=r"empty\.tsv: empty file"):
        load_items(tmp_path / "empty.tsv")


def test_mme_realworld_bad_items_are_error_rows_naming_item_and_field(tmp_path):
    path = make_mme(tmp_path / "mme")
    records = json.loads(path.read_text())
    records[0]["Ground truth"] = "F"
    records[1]["Answer choices"][2] = "5"  # lost its "(C) " prefix
    del records[2]["Text"]
    records.append("not an object")
    path.write_text(json.dumps(records), encoding="utf-8")
    items = load_items(path)
    assert items[0].error == (f"{path} item 0 ({MME_ROWS[0][0]}): field 'Ground truth' = 'F' is not one of the "
                              "choice letters A, B, C, D, E")
    assert items[0].category == "Perception/Autonomous_Driving/Objects_Identify"
    assert items[1].error == f"{path} item 1 ({MME_ROWS[1][0]}): field 'Answer choices'[2] must read '(C) TEXT', got '5'"
    assert items[2].error == f"{path} item 2 ({MME_ROWS[2][0]}): no field 'Text'"
    assert items[3].id == "item3" and items[3].error == f"{path} item 3: expected a JSON object, got str"


def test_json_arrays_that_are_not_mme_realworld_are_one_line(tmp_path):
    (tmp_path / "other.json").write_text(json.dumps([{"question": "q", "image": "a.jpg"}]))
    with pytest.raises(DatasetError, match="a JSON array, but not MME-RealWorld's"):
        load_items(tmp_path / "other.json")
    (tmp_path / "broken.json").write_text('[{"Question_id": 1,')
    with pytest.raises(DatasetError, match=r"broken\.json: bad JSON"):
        load_items(tmp_path / "broken.json")


# ------------------------------------------------------------------------------ `lookcloser eval`
def _answering(correct: dict[str, str], wrong=frozenset()):
    """The stub's SHOW reply: the right option's text, or (for questions in `wrong`) a wrong one."""
    def script(request):
        question = question_of(prompt_text(request))
        entry = correct[question]
        return json.dumps({"answer": entry[1] if question in wrong else entry[0], "missing": []})
    return script


def test_eval_over_hrbench_and_mme_realworld_gives_accuracy_per_category(tmp_path):
    hr = make_hrbench(tmp_path / "hr_bench_4k.tsv")
    mme = make_mme(tmp_path / "mme")
    # question -> (right option text, a wrong option text)
    hr_truth = {q: (opts[ord(a) - 65], next(o for o in opts if o != opts[ord(a) - 65]))
                for _, q, opts, a, _, _ in HR_ROWS}
    mme_truth = {q: (choices[ord(t) - 65], next(c for c in choices if c != choices[ord(t) - 65]))
                 for *_, q, choices, t in MME_ROWS}
    with StubServer() as stub:
        stub.script = _answering({**hr_truth, **mme_truth},
                                 wrong={"Which sign is left of the car?", "How many ships are in the harbour?"})
        for name, data in (("hr", hr), ("mme", mme)):
            result = runner.invoke(app, ["eval", str(data), "--vlm", stub.spec, "--tool", "localizer=whole_image",
                                         "--no-traces", "--seed", "1", "--out", str(tmp_path / name)])
            assert result.exit_code == 0, result.output
    hr_summary = json.loads((tmp_path / "hr" / "summary.json").read_text())
    assert hr_summary["overall"]["n"] == 4 and hr_summary["overall"]["accuracy"] == 0.75
    assert hr_summary["categories"]["single"]["accuracy"] == 1.0
    assert hr_summary["categories"]["cross"]["accuracy"] == 0.5
    rows = {r["id"]: r for r in read_rows(tmp_path / "hr" / "results.jsonl")}
    assert rows["1"]["answer"] == "blue" and rows["1"]["correct"] and rows["1"]["error"] is None

    mme_summary = json.loads((tmp_path / "mme" / "summary.json").read_text())
    assert mme_summary["overall"]["n"] == 3 and mme_summary["overall"]["correct"] == 2
    assert mme_summary["categories"]["Perception/Autonomous_Driving/Objects_Identify"]["accuracy"] == 1.0
    assert mme_summary["categories"]["Perception/Remote Sensing/count"]["accuracy"] == 0.5
    row = next(r for r in read_rows(tmp_path / "mme" / "results.jsonl") if r["id"] == MME_ROWS[1][0])
    assert row["answer"] == "The image does not feature the planes." and row["correct"]


def test_eval_over_a_bad_tsv_is_one_line(tmp_path):
    path = _write_tsv(tmp_path / "x.tsv", [["1", "q"]], header=["index", "question"])
    result = runner.invoke(app, ["eval", str(path), "--vlm", "openai:x@http://127.0.0.1:9/v1",
                                 "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "x.tsv: not an HR-Bench TSV" in errors[0], result.output
