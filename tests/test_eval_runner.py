"""`lookcloser.eval`: exact accuracy per category, seeded shuffling mapped back, likelihood choice,
interrupted-then-resumed runs, error rows. A scripted VLM stands in for the model; the agent,
the graph, the dataset reader and the results file are the real ones."""

from __future__ import annotations

import json
import threading

import pytest
from doubles import ScriptedVLM
from eval_helpers import QUESTIONS, correct_texts, knowing_reply, make_vstar, question_of

from lookcloser.eval import AgentRecipe, DatasetError, RunOptions, evaluate, load_items, shown_order
from lookcloser.eval import read_rows

TOOLS = {"localizer": "whole_image"}  # never used here: every reply answers at SHOW
STABLE = ("id", "category", "options", "shown_order", "answer", "choice", "choice_letter", "correct", "choice_mode",
          "reply", "error")


def _recipe(vlm):
    return AgentRecipe(vlm=vlm, tools=TOOLS)


def _stable(rows):
    return sorted(({k: r[k] for k in STABLE} for r in rows), key=lambda r: r["id"])


def test_accuracy_is_exact_per_category(tmp_path):
    data = make_vstar(tmp_path / "vstar")
    wrong = {"What is the color of the car?", "Is the lamp above or below the sign?"}
    vlm = ScriptedVLM(lambda prompt, images: knowing_reply(prompt, wrong))
    summary = evaluate(data, tmp_path / "run", _recipe(vlm), seed=3)

    assert summary["overall"]["n"] == 5 and summary["overall"]["correct"] == 3
    assert summary["overall"]["accuracy"] == 0.6
    assert summary["categories"]["attributes"]["accuracy"] == round(2 / 3, 4)
    assert summary["categories"]["position"]["accuracy"] == 0.5
    assert summary["overall"]["vlm_calls_per_item"] == 1.0
    assert summary["overall"]["choice_modes"] == {"letter": 5}  # the scripted VLM cannot score options
    written = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert written["overall"] == summary["overall"]
    settings = written["settings"]
    assert settings["seed"] == 3 and settings["items"] == 5 and settings["complete"] is True
    assert set(settings["prompts"]) >= {"show", "tell"} and settings["vlm"]["described"]["backend"] == "scripted"
    assert settings["config"]["choice"] == "likelihood" and settings["versions"]["lookcloser"]
    md = (tmp_path / "run" / "summary.md").read_text()
    assert "| attributes |" in md and "| position |" in md
    assert "<circle" in (tmp_path / "run" / "summary.svg").read_text()


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_shuffle_is_seeded_recorded_and_mapped_back(tmp_path, seed):
    data = make_vstar(tmp_path / "vstar")
    vlm = ScriptedVLM(lambda prompt, images: knowing_reply(prompt))
    summary = evaluate(data, tmp_path / "run", _recipe(vlm), seed=seed)
    assert summary["overall"]["accuracy"] == 1.0  # whatever order the options were shown in

    rows = read_rows(tmp_path / "run" / "results.jsonl")
    items = {i.id: i for i in load_items(data)}
    for row in rows:
        item = items[row["id"]]
        assert row["shown_order"] == shown_order(item.id, len(item.options), seed)
        assert row["options"] == [item.options[i] for i in row["shown_order"]]
        assert row["choice"] == 0 and row["answer"] == item.options[0]
        assert row["options"][ord(row["choice_letter"]) - 65] == item.options[0]  # the letter as shown
    # what the VLM saw: the options in the recorded order
    for call in vlm.calls:
        row = next(r for r in rows if r["question"] == question_of(call["text"]))
        shown = [line.split(") ", 1)[1] for line in call["text"].splitlines() if line[:1] == "(" and ") " in line]
        assert shown == row["options"]


def test_first_option_never_leaks(tmp_path):
    """A VLM that always says (A) scores exactly the share of items whose correct option was shown first."""
    data = make_vstar(tmp_path / "vstar")
    vlm = ScriptedVLM(lambda prompt, images: '{"answer": "(A)", "missing": []}')
    summary = evaluate(data, tmp_path / "run", _recipe(vlm), seed=11)
    rows = read_rows(tmp_path / "run" / "results.jsonl")
    shown_first = sum(1 for r in rows if r["shown_order"][0] == 0)
    assert summary["overall"]["correct"] == shown_first
    assert any(r["shown_order"][0] != 0 for r in rows)  # the seed did move some correct options
    assert all(r["choice"] == r["shown_order"][0] for r in rows)


class ScoringVLM(ScriptedVLM):
    """Always replies '(A)', but scores the right option text highest: the eval must follow the scores."""

    def score_options(self, image, question, options):
        right = correct_texts()[question.splitlines()[-1]]
        return [0.0 if option == right else -5.0 for option in options]


def test_choice_by_likelihood_when_the_backend_scores_options(tmp_path):
    data = make_vstar(tmp_path / "vstar")
    vlm = ScoringVLM(lambda prompt, images: '{"answer": "(A)", "missing": []}')
    summary = evaluate(data, tmp_path / "run", _recipe(vlm), seed=5)
    assert summary["overall"]["accuracy"] == 1.0
    assert summary["overall"]["choice_modes"] == {"likelihood": 5}
    assert summary["overall"]["vlm_calls_per_item"] == 2.0  # SHOW + the option scoring


class Interrupt(ScriptedVLM):
    """Answers correctly; at call number `stop_at` raises KeyboardInterrupt (a Ctrl-C / kill mid-run)."""

    def __init__(self, stop_at=None):
        super().__init__(self._reply)
        self.stop_at = stop_at
        self.asked: list[str] = []
        self._count_lock = threading.Lock()

    def _reply(self, prompt, images):
        with self._count_lock:
            self.asked.append(question_of(prompt))
            if self.stop_at is not None and len(self.asked) == self.stop_at:
                raise KeyboardInterrupt
        return knowing_reply(prompt, {"Is the flag red or white?"})


@pytest.mark.parametrize("workers", [1, 2])
def test_interrupted_then_resumed_equals_uninterrupted_and_asks_nothing_twice(tmp_path, workers):
    data = make_vstar(tmp_path / "vstar")
    whole = Interrupt()
    evaluate(data, tmp_path / "whole", _recipe(whole), seed=2, run=RunOptions(workers=workers))

    first = Interrupt(stop_at=3)
    with pytest.raises(KeyboardInterrupt):
        evaluate(data, tmp_path / "run", _recipe(first), seed=2, run=RunOptions(workers=workers))
    kept = read_rows(tmp_path / "run" / "results.jsonl")
    # finished items are on disk, the interrupted one is not (with 2 workers the other thread may finish items
    # before or after the interrupt reaches the pool, so how many is a race; which one is not)
    interrupted = first.asked[2]
    assert interrupted not in {r["question"] for r in kept}
    assert len(kept) == 2 if workers == 1 else len(kept) <= len(first.asked) - 1
    with open(tmp_path / "run" / "results.jsonl", "a") as handle:
        handle.write('{"id": "position/lamp", "category": "posi')  # a line cut short by a kill

    second = Interrupt()
    summary = evaluate(data, tmp_path / "run", _recipe(second), seed=2, resume=True, run=RunOptions(workers=workers))
    kept_questions = {r["question"] for r in kept}
    assert len(second.asked) == len(set(second.asked)) == 5 - len(kept)  # each remaining item once
    assert not kept_questions & set(second.asked)  # nothing finished is asked again
    rows = read_rows(tmp_path / "run" / "results.jsonl")
    assert _stable(rows) == _stable(read_rows(tmp_path / "whole" / "results.jsonl"))
    assert summary["overall"]["accuracy"] == 0.8 and summary["settings"]["complete"] is True


def test_resume_refuses_other_settings_and_a_fresh_run_refuses_old_results(tmp_path):
    data = make_vstar(tmp_path / "vstar")
    vlm = ScriptedVLM(lambda prompt, images: knowing_reply(prompt))
    evaluate(data, tmp_path / "run", _recipe(vlm), seed=1, limit=2)
    with pytest.raises(DatasetError, match="already holds results; pass --resume"):
        evaluate(data, tmp_path / "run", _recipe(vlm), seed=1)
    with pytest.raises(DatasetError, match=r"other settings \(seed: 1 then, 4 now\)"):
        evaluate(data, tmp_path / "run", _recipe(vlm), seed=4, resume=True)
    summary = evaluate(data, tmp_path / "run", _recipe(vlm), seed=1, resume=True)  # a larger limit: the rest
    assert summary["overall"]["n"] == 5 and len(vlm.calls) == 5


def test_workers_give_the_same_rows_as_one_worker(tmp_path):
    data = make_vstar(tmp_path / "vstar")
    one = ScriptedVLM(lambda prompt, images: knowing_reply(prompt, {"Is the flag red or white?"}))
    two = ScriptedVLM(lambda prompt, images: knowing_reply(prompt, {"Is the flag red or white?"}), delay=0.05)
    evaluate(data, tmp_path / "one", _recipe(one), run=RunOptions(workers=1))
    evaluate(data, tmp_path / "two", _recipe(two), run=RunOptions(workers=3))
    assert _stable(read_rows(tmp_path / "one" / "results.jsonl")) == _stable(read_rows(tmp_path / "two" / "results.jsonl"))
    assert len(two.calls) == 5


def test_error_rows_for_missing_image_and_bad_json(tmp_path):
    data = make_vstar(tmp_path / "vstar")
    (data / "attributes" / "cup.jpg").unlink()  # missing image
    (data / "position" / "dog.json").write_text('{"question": "Is the dog', encoding="utf-8")  # bad JSON
    (data / "position" / "lamp.json").write_text(json.dumps({"question": "Where?", "options": ["only one"]}))
    vlm = ScriptedVLM(lambda prompt, images: knowing_reply(prompt))
    summary = evaluate(data, tmp_path / "run", _recipe(vlm))

    rows = {r["id"]: r for r in read_rows(tmp_path / "run" / "results.jsonl")}
    assert len(rows) == 5 and summary["overall"]["errors"] == 3
    assert "image file not found" in rows["attributes/cup"]["error"] and "cup.jpg" in rows["attributes/cup"]["error"]
    assert "dog.json: bad JSON" in rows["position/dog"]["error"]
    assert "lamp.json" in rows["position/lamp"]["error"] and "'options'" in rows["position/lamp"]["error"]
    assert rows["attributes/flag"]["correct"] and rows["attributes/car"]["correct"]
    assert summary["overall"]["correct"] == 2 and summary["overall"]["accuracy"] == 0.4  # errors count as wrong
    assert len(vlm.calls) == 2
    assert "## Errors (3)" in (tmp_path / "run" / "summary.md").read_text()


def test_jsonl_dataset_open_answers_and_bad_lines(tmp_path):
    image = tmp_path / "a.png"
    from PIL import Image

    Image.new("RGB", (32, 32)).save(image)
    lines = [
        {"id": "q1", "image": "a.png", "question": "What is the color of the cup?", "options": ["blue", "red"], "answer": "red"},
        {"id": "q2", "image": "a.png", "question": "Is the flag red or white?", "answer": "white", "category": "open"},
        {"id": "q3", "image": "a.png", "question": "Q?", "options": ["x", "y"], "answer": 5},
    ]
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n{not json\n", encoding="utf-8")
    items = {i.id: i for i in load_items(path)}
    assert items["q1"].answer_index == 1 and items["q1"].options == ["blue", "red"]
    assert "not an index of the 2 options" in items["q3"].error and "set.jsonl:3" in items["q3"].error
    assert "set.jsonl:4: bad JSON" in items["line4"].error

    def reply(prompt, images):
        return json.dumps({"answer": {"What is the color of the cup?": "red",
                                      "Is the flag red or white?": "The flag is white."}[question_of(prompt)], "missing": []})

    summary = evaluate(path, tmp_path / "run", _recipe(ScriptedVLM(reply)))
    rows = {r["id"]: r for r in read_rows(tmp_path / "run" / "results.jsonl")}
    assert rows["q1"]["correct"] and rows["q2"]["correct"] and rows["q2"]["choice_mode"] == "open"
    assert summary["categories"]["open"]["accuracy"] == 1.0 and summary["overall"]["errors"] == 2


def test_unknown_dataset_layout_is_one_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="dataset not found"):
        load_items(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="not a known dataset layout"):
        load_items(tmp_path / "empty")


def test_real_vstar_sample_reads_both_categories():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "shared" / "data" / "vstar_bench"
    if not root.is_dir():
        pytest.skip("../shared/data/vstar_bench is not here (a user's clone has no shared/)")
    items = load_items(root)
    assert len(items) == 40 and {i.category for i in items} == {"direct_attributes", "relative_position"}
    assert all(i.error is None and i.answer_index == 0 and i.targets and i.targets[0].box for i in items)
    assert QUESTIONS  # the synthetic set above mirrors this layout


def test_hugging_face_dataset_on_disk_and_parquet(tmp_path):
    datasets = pytest.importorskip("datasets")
    from PIL import Image

    images = [Image.new("RGB", (32, 24), color) for color in ("red", "blue", "blue")]  # stored as bytes, as releases are
    table = datasets.Dataset.from_dict({
        "image": images,
        "question": ["What is the color of the cup?", "Is the flag red or white?", "Is the flag red or white?"],
        "options": [["The cup is red.", "The cup is blue."], ["The flag is white.", "The flag is red."], ["x"]],
        "answer": ["B", "A", "A"],
        "category": ["color", "color", "broken"],
    }).cast_column("image", datasets.Image())
    table.save_to_disk(str(tmp_path / "hf"))
    table.to_parquet(str(tmp_path / "set.parquet"))

    for source in (tmp_path / "hf", tmp_path / "set.parquet"):
        items = load_items(source)
        assert [i.id for i in items] == ["0", "1", "2"]
        assert isinstance(items[0].image, bytes) and items[0].answer_index == 1 and items[1].answer_index == 0
        assert "row 2" in items[2].error and "'options'" in items[2].error

    def reply(prompt, images):  # right for the cup (answer B), wrong for the flag
        return json.dumps({"answer": "The cup is blue." if "cup" in prompt else "The flag is red.", "missing": []})

    summary = evaluate(tmp_path / "hf", tmp_path / "run", _recipe(ScriptedVLM(reply)))
    assert summary["categories"]["color"]["accuracy"] == 0.5 and summary["categories"]["broken"]["errors"] == 1


def test_resume_asks_error_rows_again_and_counts_them(tmp_path):
    data = make_vstar(tmp_path / "vstar")
    from lookcloser.core.errors import VLMError

    def flag_down(prompt, images):
        if "flag" in prompt:
            raise VLMError("the endpoint is down")
        return knowing_reply(prompt)

    down = ScriptedVLM(flag_down)
    first = evaluate(data, tmp_path / "run", _recipe(down), seed=1)
    assert first["overall"]["errors"] == 1 and first["settings"]["retried_errors"] == 0
    back = ScriptedVLM(lambda prompt, images: knowing_reply(prompt))
    summary = evaluate(data, tmp_path / "run", _recipe(back), seed=1, resume=True)
    assert [question_of(call["text"]) for call in back.calls] == ["Is the flag red or white?"]  # only the error row
    assert summary["settings"]["retried_errors"] == 1
    assert summary["overall"]["errors"] == 0 and summary["overall"]["accuracy"] == 1.0


def test_run_options_refuse_bad_values_with_the_projects_error_type():
    from lookcloser.core.errors import InputError

    for kwargs, message in (({"workers": 0}, "--workers must be at least 1"), ({"address": "auto"}, "--address needs --ray"),
                            ({"ray": True, "cpus_per_actor": 0}, "--ray-cpus must be > 0")):
        with pytest.raises(InputError, match=message):
            RunOptions(**kwargs)
