"""Evidence ablations (`AgentConfig.ablate`, `lookcloser eval --ablate`): does the answer rest on what the
search found? A scripted VLM reads the colour of the crop TELL receives (it answers right only when the crop
shows the target); some items need the crop, some are answered at SHOW. crop-black must drop exactly the
items that needed the crops, no-search must answer only the SHOW-answered items, the summary records the
ablation and `eval --compare` shows the deltas against the normal run. The agent, the graph, the memory,
the dataset reader and the results files are the real ones."""

from __future__ import annotations

import json

import numpy as np
from doubles import BoxMaskSegmenter, FixedLocalizer, ScriptedVLM
from eval_helpers import question_of
from PIL import Image
from typer.testing import CliRunner

from lookcloser.entrypoints.cli import app
from lookcloser.eval import AgentRecipe, evaluate, read_rows
from lookcloser.eval.summary import compare_table, item_deltas
from lookcloser.graphs.memory import VisualWorkingMemory
from lookcloser.core.types import Box, Finding, Mask, Target

runner = CliRunner()

COLOURS = {"red": (220, 20, 20), "blue": (20, 20, 220), "green": (20, 200, 20), "yellow": (230, 220, 20)}
GREY = (128, 128, 128)
#: id -> (category, target, patch colour, options with the right one first, SHOW's reply kind)
#: "search": SHOW names the target only; "answer": SHOW answers right; "guess+search": SHOW puts a WRONG
#: answer beside the target it names (the prompt contract ignores an answer beside targets).
ITEMS = {
    "cup": ("attributes", "the cup", "red", ["red", "blue", "green"], "search"),
    "flag": ("attributes", "the flag", "blue", ["blue", "red"], "search"),
    "car": ("attributes", "the car", "green", ["green", "yellow"], "answer"),
    "sign": ("attributes", "the sign", "yellow", ["yellow", "blue"], "guess+search"),
    "dog": ("position", "the dog", "red", ["red", "green"], "answer"),
    "lamp": ("position", "the lamp", "green", ["green", "red"], "search"),
}
NEEDED_CROPS = {"cup", "flag", "sign", "lamp"}
BOX = (120, 80, 140, 100)  # the target's patch in every 200x150 photo


def _question(item_id: str) -> str:
    return f"What colour is {ITEMS[item_id][1]} ({item_id})?"


def _make_dataset(root):
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for item_id, (category, _, colour, options, _) in ITEMS.items():
        image = Image.new("RGB", (200, 150), GREY)
        image.paste(COLOURS[colour], BOX)
        image.save(root / f"{item_id}.png")
        lines.append({"id": item_id, "category": category, "image": f"{item_id}.png", "question": _question(item_id),
                      "options": options, "answer": 0})
    (root / "items.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    return root / "items.jsonl"


def _colour_of(crop: Image.Image) -> str | None:
    """The named colour at the crop's centre (the target's patch), None when it shows none (black)."""
    pixel = crop.convert("RGB").getpixel((crop.width // 2, crop.height // 2))
    return next((name for name, rgb in COLOURS.items() if pixel == rgb), None)


def _reply(prompt: str, images: list[Image.Image]) -> str:
    item_id = question_of(prompt).rsplit("(", 1)[1].rstrip(")?")
    _, target, _, options, kind = ITEMS[item_id]
    if "additional visual information" in prompt:  # TELL: only the crop tells the colour
        seen = _colour_of(images[1]) if len(images) > 1 else None
        return seen if seen in options else "I cannot tell from what I see."
    if kind == "answer":
        return json.dumps({"answer": options[0], "missing": []})
    guess = options[1] if kind == "guess+search" else None
    return json.dumps({"answer": guess, "missing": [{"name": target, "kind": "object"}]})


def _run(tmp_path, dataset, name, ablate=None, segmenter=None):
    vlm = ScriptedVLM(_reply)
    tools = {"localizer": FixedLocalizer({ITEMS[i][1]: BOX for i in ITEMS})}
    if segmenter is not None:
        tools["segmenter"] = segmenter
    config = {"ablate": ablate} if ablate else {}
    summary = evaluate(dataset, tmp_path / name, AgentRecipe(vlm=vlm, tools=tools, config=config), seed=1)
    rows = {r["id"]: r for r in read_rows(tmp_path / name / "results.jsonl")}
    return summary, rows, vlm


def _tell_calls(vlm):
    return [c for c in vlm.calls if "additional visual information" in c["text"]]


def test_crop_black_drops_exactly_the_items_that_needed_the_crops(tmp_path):
    dataset = _make_dataset(tmp_path / "data")
    normal, normal_rows, normal_vlm = _run(tmp_path, dataset, "normal")
    black, black_rows, black_vlm = _run(tmp_path, dataset, "black", ablate="crop-black")

    assert normal["overall"]["accuracy"] == 1.0  # the crops carry the answers the search was needed for
    assert {i for i, r in black_rows.items() if r["correct"]} == set(ITEMS) - NEEDED_CROPS
    assert item_deltas(list(normal_rows.values()), list(black_rows.values())) == \
        {"lost": sorted(NEEDED_CROPS), "gained": []}
    assert black["categories"]["attributes"]["correct"] == 1 and black["categories"]["position"]["correct"] == 1
    assert {black_rows[i]["choice_mode"] for i in NEEDED_CROPS} == {"unmatched"}
    # the search ran as usual: same findings, same calls
    assert [black_rows[i]["findings"] for i in ITEMS] == [normal_rows[i]["findings"] for i in ITEMS]
    assert black["overall"]["tool_calls_per_item"] == normal["overall"]["tool_calls_per_item"]
    # TELL got the same prompt text and images of the same sizes; only the crops' pixels are gone
    tell_normal, tell_black = _tell_calls(normal_vlm), _tell_calls(black_vlm)
    assert sorted(c["text"] for c in tell_black) == sorted(c["text"] for c in tell_normal)
    assert sorted(c["image_sizes"] for c in tell_black) == sorted(c["image_sizes"] for c in tell_normal)
    assert all(len(c["image_sizes"]) == 2 and c["image_sizes"][0] == (200, 150) for c in tell_black)

    assert black["settings"]["config"]["ablate"] == "crop-black"
    assert normal["settings"]["config"]["ablate"] == "none"
    assert "(ablate crop-black)" in (tmp_path / "black" / "summary.md").read_text()
    assert json.loads((tmp_path / "black" / "run.json").read_text())["config"]["ablate"] == "crop-black"


def test_crop_black_keeps_the_full_image_and_blackens_masked_crops_too():
    """What TELL receives, at the memory: the full image is untouched by the memory; every crop (masked or
    not) is black at the size it would have had; the text, read OCR lines included, is the same."""
    image = Image.new("RGB", (200, 150), GREY)
    image.paste(COLOURS["red"], BOX)
    mask = np.zeros((150, 200), bool)
    mask[80:100, 120:140] = True
    findings = [
        Finding(target=Target(name="the cup"), status="found", box=Box.from_list(BOX), score=0.9, tool="t",
                mask=Mask.from_array(mask)),
        Finding(target=Target(name="the dog"), status="found", box=Box.from_list([10, 10, 40, 30]), score=0.8,
                tool="t"),
        Finding(target=Target(name="the sign", kind="text"), status="found", box=Box.from_list([50, 10, 90, 20]),
                score=0.7, text="EXIT", tool="ocr"),
    ]
    plain_text, plain = VisualWorkingMemory(image, "q", findings).render()
    black_text, black = VisualWorkingMemory(image, "q", findings, black_crops=True).render()
    assert black_text == plain_text and '"EXIT"' in black_text and "segmentation mask" in black_text
    assert [c.size for c in black] == [c.size for c in plain] and len(black) == 3
    assert all(c.getextrema() == ((0, 0), (0, 0), (0, 0)) for c in black)
    assert any(c.getextrema() != ((0, 0), (0, 0), (0, 0)) for c in plain)


def test_crop_black_with_a_segmenter_drops_the_same_items(tmp_path):
    dataset = _make_dataset(tmp_path / "data")
    segmenter = BoxMaskSegmenter()
    _, rows, vlm = _run(tmp_path, dataset, "black", ablate="crop-black", segmenter=segmenter)
    assert segmenter.calls == len(NEEDED_CROPS)  # the masks were made; their crops were blacked out
    assert all("segmentation mask" in c["text"] for c in _tell_calls(vlm))
    assert {i for i, r in rows.items() if r["correct"]} == set(ITEMS) - NEEDED_CROPS


def test_no_search_answers_only_what_show_answered(tmp_path):
    dataset = _make_dataset(tmp_path / "data")
    summary, rows, vlm = _run(tmp_path, dataset, "nosearch", ablate="no-search")

    assert {i for i, r in rows.items() if r["correct"]} == {"car", "dog"}
    assert len(vlm.calls) == len(ITEMS) and not _tell_calls(vlm)  # SHOW only: no search, no TELL
    assert summary["overall"]["vlm_calls_per_item"] == 1.0 and summary["overall"]["tool_calls_per_item"] == 0.0
    assert all(r["findings"] == [] for r in rows.values())
    # SHOW named targets instead of answering (an answer beside targets is ignored, as in the normal run):
    # an explicit unanswered row, counted wrong, not an error
    for item_id in ("cup", "flag", "lamp", "sign"):
        row = rows[item_id]
        assert row["choice_mode"] == "unanswered" and row["choice"] is None and row["reply"] is None
        assert not row["correct"] and row["error"] is None
    assert summary["overall"]["choice_modes"] == {"letter": 2, "unanswered": 4}
    assert summary["settings"]["config"]["ablate"] == "no-search"


def test_no_search_through_the_agent_keeps_the_named_targets_and_says_why(tmp_path):
    from lookcloser import Agent
    from lookcloser.core.config import AgentConfig

    image = Image.new("RGB", (200, 150), GREY)
    localizer = FixedLocalizer({"the cup": BOX})
    agent = Agent(vlm=ScriptedVLM(_reply), tools={"localizer": localizer}, config=AgentConfig(ablate="no-search"))
    answer = agent.run(image, _question("cup"), options=["red", "blue"])
    assert answer.text is None and answer.choice is None and answer.choice_path == "unanswered"
    assert answer.stats.tool_calls == 0 and not localizer.threads and answer.findings == []
    assert any("ablate=no-search" in note and "the cup" in note and "unanswered" in note for note in answer.notes)


def test_compare_shows_the_ablations_and_their_deltas(tmp_path):
    dataset = _make_dataset(tmp_path / "data")
    runs = {name: _run(tmp_path, dataset, name, ablate=ablate)
            for name, ablate in (("black", "crop-black"), ("normal", None), ("nosearch", "no-search"))}
    table = compare_table([(name, summary) for name, (summary, _, _) in runs.items()],
                          [list(rows.values()) for _, rows, _ in runs.values()])
    by_metric = {row[0]: row[1:] for row in table}
    assert table[0] == ["", "black", "normal (baseline)", "nosearch"]  # the first run without an ablation
    assert by_metric["ablate"] == ["crop-black", "none", "no-search"]
    assert by_metric["overall accuracy"] == ["33.3% (-66.7 pp)", "100.0%", "33.3% (-66.7 pp)"]
    assert by_metric["attributes accuracy"] == ["25.0% (-75.0 pp)", "100.0%", "25.0% (-75.0 pp)"]
    assert by_metric["position accuracy"] == ["50.0% (-50.0 pp)", "100.0%", "50.0% (-50.0 pp)"]
    assert by_metric["overall lost vs baseline"] == ["4", "–", "4"]
    assert by_metric["attributes lost vs baseline"] == ["3", "–", "3"]
    assert by_metric["position gained vs baseline"] == ["0", "–", "0"]
    assert by_metric["settings.config.ablate"] == ["crop-black", "none", "no-search"]

    result = runner.invoke(app, ["eval", "--compare", str(tmp_path / "normal"), str(tmp_path / "black"),
                                 "--plot", str(tmp_path / "both.svg")])
    assert result.exit_code == 0, result.output
    assert "crop-black" in result.stdout and "-66.7 pp" in result.stdout and "baseline" in result.stdout
    assert "4 item(s) right in" in result.stderr and "cup, flag, lamp, sign" in result.stderr
    assert "(crop-black)" in (tmp_path / "both.svg").read_text()


def test_the_ablate_flag_from_the_command_line(tmp_path):
    from openai_stub import StubServer, prompt_text

    dataset = _make_dataset(tmp_path / "data")
    with StubServer() as stub:
        stub.script = lambda request: _reply(prompt_text(request), [])
        args = ["eval", str(dataset), "--vlm", stub.spec, "--tool", "localizer=whole_image", "--no-traces"]
        result = runner.invoke(app, [*args, "--out", str(tmp_path / "n"), "--ablate", "no-search"])
        assert result.exit_code == 0, result.output
        assert len(stub.requests) == len(ITEMS)  # SHOW only
        refused = runner.invoke(app, [*args, "--out", str(tmp_path / "n"), "--resume"])
        assert refused.exit_code == 2 and "ablate" in refused.output  # a resume must keep the ablation
        bad = runner.invoke(app, [*args, "--out", str(tmp_path / "x"), "--ablate", "crop-white"])
        assert bad.exit_code == 2 and "--ablate must be one of none, crop-black, no-search" in bad.output
    summary = json.loads((tmp_path / "n" / "summary.json").read_text())
    assert summary["settings"]["config"]["ablate"] == "no-search"
    assert summary["overall"]["correct"] == 2 and summary["overall"]["choice_modes"]["unanswered"] == 4


def test_a_served_run_may_ask_for_an_ablation_in_its_context(tmp_path):
    """The ablation travels with the run's config: the operator admits a client's `config.ablate` (plain JSON,
    as the served graph receives it) and the graph applies it (here no-search: SHOW only, unanswered)."""
    from lookcloser.graphs.agent_graph import build_graph
    from lookcloser.runtime.serving import Operator
    from test_graph_state import data_url

    operator = Operator.from_env({"LOOKCLOSER_VLM": "openai:operator@http://10.0.0.5:8000/v1"})
    admitted = operator.admit({"config": {"ablate": "crop-black"}})
    assert admitted.config.ablate == "crop-black" and operator.admit(None).config.ablate == "none"

    vlm = ScriptedVLM(_reply)
    localizer = FixedLocalizer({"the cup": BOX})

    def admit(context):  # the operator's decision, with the test's VLM and localizer in place of its endpoint
        return operator.admit(context).model_copy(update={"vlm": vlm, "tools": {"localizer": localizer}})

    image = Image.new("RGB", (200, 150), GREY)
    out = build_graph(admit=admit).invoke({"image": data_url(image), "question": _question("cup"),
                                           "options": ["red", "blue"]}, context={"config": {"ablate": "no-search"}})
    assert out["answer"] is None and out["choice_path"] == "unanswered" and len(vlm.calls) == 1
    assert not localizer.threads
