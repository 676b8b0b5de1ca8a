"""`vlm_grounding`: the VLM's own boxes as a localizer and a detector, with every backend.

The VLM is a stand-in that sees a green object in the pixels it is sent (tests/grounding_doubles.py) and answers
as Qwen2.5-VL (absolute pixels of its smart-resized input) or Qwen3-VL (0-1000) would; the box it draws is
measured on the original 12-Mpx photo, after the tool's view, the backend's encoding and the server's grid.
"""

from __future__ import annotations

import json
import time

import pytest
from PIL import Image

pytest.importorskip("supervision")
pytest.importorskip("openai")

from doubles import ScriptedVLM  # noqa: E402
from grounding_doubles import SeeingVLM, photo_12mp, qwen_reply, request_image  # noqa: E402
from lookcloser import Agent  # noqa: E402
from lookcloser.core import boxes  # noqa: E402
from lookcloser.core.errors import SettingsError  # noqa: E402
from lookcloser.core.types import Box, Target  # noqa: E402
from lookcloser.tools import registry  # noqa: E402
from lookcloser.tools.vlm_grounding import SMALL, TRUSTED, VLMGrounding  # noqa: E402
from openai_stub import StubServer, prompt_text  # noqa: E402

BALL = (1500, 1000, 1900, 1300)  # a 400x300 green ellipse on the 4000x3000 photo
DOT = (3000, 2200, 3020, 2220)   # a 20-px one


@pytest.fixture(scope="module")
def ball_photo():
    return photo_12mp(BALL)


@pytest.fixture()
def server():
    with StubServer() as stub:
        yield stub


def _iou(finding, box) -> float:
    return finding.box.iou(Box.from_list(box))


def _served(server, style: str, label: str) -> None:
    """The stub answers as a served Qwen would: the box it sees in the image it received, in pixels of the grid
    its processor smart-resizes that image to (absolute), or 0-1000 (relative)."""
    def answer(request):
        image = request_image(request)
        return qwen_reply(image, label, style, boxes.smart_resize(*image.size) if style == "absolute" else None)
    server.script = answer


# ------------------------------------------------------------------ the mapping, through the OpenAI backend
@pytest.mark.parametrize(("model", "style"), [("Qwen/Qwen2.5-VL-7B-Instruct", "absolute"),
                                              ("Qwen/Qwen3-VL-8B-Instruct", "relative")])
def test_a_box_on_a_12mp_photo_lands_on_the_object(server, ball_photo, model, style):
    _served(server, style, "green ball")
    agent = Agent(vlm=f"openai:{model}@{server.url}", tools={"localizer": "vlm_grounding"})
    [finding] = agent.find(ball_photo, Target(name="green ball"))
    assert finding.status == "found" and finding.tool == "vlm_grounding" and finding.score == TRUSTED
    assert _iou(finding, BALL) > 0.7, finding.box
    assert len(server.requests) == 1  # the whole photo, one call
    sent = request_image(server.requests[0])
    assert sent.width * sent.height <= 1280 * 28 * 28
    if style == "absolute":  # sent on Qwen2.5-VL's grid: the server's resize leaves it as it is
        assert sent.width % 28 == 0 and sent.height % 28 == 0
    grounding = finding.search["grounding"]
    assert grounding["box_format"] == ("qwen2_5_vl" if style == "absolute" else "qwen3_vl")
    assert grounding["box_format_from"].startswith("model name") and grounding["looks"] == 1


def test_absolute_boxes_map_through_the_grid_the_server_used(server, ball_photo):
    # the backend shrinks the 1148x840 view to 1000x732 (off the grid); the server's processor puts it back on a
    # grid (1008x728) and answers in its pixels; sent_image_size says so and the box still lands
    _served(server, "absolute", "green ball")
    from lookcloser.vlm import OpenAIVLM

    vlm = OpenAIVLM("Qwen/Qwen2.5-VL-7B-Instruct", base_url=server.url, max_image_side=1000, max_retries=0)
    [finding] = VLMGrounding(vlm).locate(ball_photo, Target(name="green ball"))
    assert request_image(server.requests[0]).size == (1000, 732) and vlm.sent_image_size((1148, 840)) == (1008, 728)
    assert _iou(finding, BALL) > 0.7, finding.box


def test_a_20px_object_in_a_12mp_photo_is_found_in_native_patches():
    photo = photo_12mp(DOT)
    vlm = SeeingVLM("green dot", "absolute", box_format="qwen2_5_vl")
    start = time.perf_counter()
    [finding] = VLMGrounding(vlm).locate(photo, Target(name="green dot"))
    seconds = time.perf_counter() - start
    assert finding.status == "found" and finding.score == TRUSTED and _iou(finding, DOT) > 0.5, finding.box
    sizes = [call["size"] for call in vlm.calls]
    # the whole photo (the dot ~6 px there: too small to trust), then patches best-first toward it, at native
    # resolution last (a 1000x750 patch, sent at 1008x756)
    assert sizes[0] == (1148, 840) and sizes[-1] == (1008, 756) and len(sizes) <= 21
    assert finding.search["grounding"]["looks"] == len(sizes)
    assert finding.search["stop_reason"] == "confident" and len(finding.search["steps"]) == len(sizes)
    assert seconds < 30


def test_without_the_patch_search_a_small_box_is_kept_with_a_low_score():
    photo = photo_12mp(DOT)
    [finding] = VLMGrounding(SeeingVLM("green dot", "relative", box_format="qwen3_vl"), search=False).locate(
        photo, Target(name="green dot"))
    assert finding.status == "found" and finding.score == SMALL


# ------------------------------------------------------------------ one call for all targets, where the family allows
def _two_objects(text, images):
    return '```json\n[{"bbox_2d": [100, 100, 200, 200], "label": "red car"}, {"bbox_2d": [600, 500, 900, 800], ' \
           '"label": "Dog"}, {"bbox_2d": [0, 0, 50, 50], "label": "tree"}]\n```'


def test_every_target_in_one_call_and_each_box_to_its_label():
    vlm = ScriptedVLM(_two_objects)
    photo = Image.new("RGB", (1000, 1000), "white")
    car, dog = VLMGrounding(vlm, box_format="qwen3_vl").locate_many(photo, [Target(name="red car"), Target(name="dog")])
    assert len(vlm.calls) == 1 and '"red car", "dog"' in vlm.calls[0]["text"]
    assert car[0].box.to_list() == [100, 100, 200, 200] and dog[0].box.to_list() == [600, 500, 900, 800]
    notes = car[0].search["grounding"]["notes"]
    assert any("'tree' matches none" in n for n in notes)


def test_a_family_that_labels_nothing_is_asked_once_per_target():
    vlm = ScriptedVLM(lambda text, images: "It is <|begin_of_box|>[100,100,300,300]<|end_of_box|>.")
    found = VLMGrounding(vlm, box_format="glm", search=False).locate_many(
        Image.new("RGB", (500, 500)), [Target(name="cup"), Target(name="lamp")])
    assert len(vlm.calls) == 2 and "Help me to locate cup" in vlm.calls[0]["text"]
    assert [f[0].box.to_list() for f in found] == [[50, 50, 150, 150]] * 2


# ------------------------------------------------------------------ bad output: a not_found finding with a note
@pytest.mark.parametrize(("reply", "note"), [
    ("I'm sorry, I can't see a dog here.", "no box in the reply"),
    ('```json\n[{"bbox_2d": [10, 20, 30, 40], "label": "dog"}, {"bbox_2d": [5', None),  # truncated: its whole box kept
    ('[{"bbox_2d": [NaN, 20, 30, 40], "label": "dog"}]', "malformed"),
    ('[{"bbox_2d": [900, 800, 100, 200], "label": "dog"}]', "inverted"),
    ('[{"bbox_2d": [2000, 2000, 3000, 3000], "label": "dog"}]', "outside the image"),
    ("[" + ", ".join(f'{{"bbox_2d": [{i % 900}, {i // 900}, {i % 900 + 9}, 20], "label": "dog"}}' for i in range(3000))
     + "]", "runaway"),
])
def test_bad_replies_are_findings_with_a_note(reply, note):
    tool = VLMGrounding(ScriptedVLM(lambda text, images: reply), box_format="qwen3_vl", search=False)
    start = time.perf_counter()
    [finding] = tool.locate(Image.new("RGB", (1000, 1000)), Target(name="dog"))
    assert time.perf_counter() - start < 5
    if note is None:
        assert finding.status == "found" and finding.box.to_list() == [10, 20, 30, 40]
        return
    notes = finding.search["grounding"]["notes"]
    assert any(note in n for n in notes), notes
    if finding.status == "not_found":
        assert finding.error.startswith("not found in 1 VLM look(s)") and note in finding.error


def test_prose_everywhere_ends_after_the_budget_of_looks():
    vlm = ScriptedVLM(lambda text, images: "There is no dog in this picture.")
    [finding] = VLMGrounding(vlm, box_format="qwen2_5_vl", max_looks=5).locate(photo_12mp(DOT), Target(name="dog"))
    assert finding.status == "not_found" and len(vlm.calls) == 5 and "no box in the reply" in finding.error


def test_a_failing_vlm_is_a_failed_finding_and_the_run_answers():
    class Down(ScriptedVLM):
        def generate(self, messages, *, max_new_tokens=256):
            if "bbox" in messages[0].text:
                from lookcloser.core.errors import VLMError
                raise VLMError("VLM endpoint http://127.0.0.1:9/v1 failed: connection refused")
            return super().generate(messages, max_new_tokens=max_new_tokens)

    show = json.dumps({"answer": None, "missing": [{"name": "dog", "kind": "object"}]})
    vlm = Down(lambda text, images: "a guess" if "Additional visual information" in text else show)
    answer = Agent(vlm=vlm, tools={"localizer": "vlm_grounding"}).run(Image.new("RGB", (64, 64)), "Is there a dog?")
    [finding] = answer.findings
    assert answer.text == "a guess" and finding.status == "failed" and "connection refused" in finding.error


def test_without_a_vlm_the_error_names_the_fix():
    [finding] = Agent(tools={"localizer": "vlm_grounding"}).find(Image.new("RGB", (64, 64)), Target(name="dog"))
    assert finding.status == "failed" and "ModelLoadError" in finding.error and "--vlm SPEC" in finding.error


# ------------------------------------------------------------------ in the graph, traced, feeding SAM 2
def _asking(label: str):
    """SHOW names the target, the grounding prompt gets the seeing reply (relative), TELL answers."""
    show = json.dumps({"answer": None, "missing": [{"name": label, "kind": "object"}]})

    def script(text, images):
        if "Additional visual information" in text:
            return "It is green."
        if "bbox" in text:
            return qwen_reply(images[0], label, "relative")
        return show
    return script


def test_the_grounding_call_is_a_traced_llm_run_under_the_tool_run(ball_photo, tmp_path):
    from lookcloser.tracing import load_trace, validate_trace

    vlm = ScriptedVLM(_asking("green ball"), name="Qwen/Qwen3-VL-8B-Instruct")
    answer = Agent(vlm=vlm, tools={"localizer": "vlm_grounding"}, trace_dir=tmp_path).run(ball_photo, "What colour?")
    [finding] = answer.findings
    assert answer.text == "It is green." and _iou(finding, BALL) > 0.7
    assert answer.stats.vlm_calls == 3 and answer.stats.tool_calls == 1
    runs = load_trace(answer.trace_dir)
    validate_trace(runs)
    by_id = {r["id"]: r for r in runs}
    llm = [r for r in runs if r["run_type"] == "llm"]
    assert len(llm) == 3

    def ancestors(run):
        while run.get("parent_run_id"):
            run = by_id[run["parent_run_id"]]
            yield run

    grounding = [r for r in llm if any(a["run_type"] == "tool" for a in ancestors(r))]
    assert len(grounding) == 1
    tool_run = next(a for a in ancestors(grounding[0]) if a["run_type"] == "tool")
    assert "vlm_grounding" in tool_run["name"] and any(a["name"] == "search" for a in ancestors(tool_run))


def test_found_boxes_feed_sam2(tmp_path_factory, ball_photo):
    pytest.importorskip("torchvision")
    from tiny_sam2 import build_tiny_sam2
    from lookcloser.tools.sam2 import Sam2Segmenter

    sam = build_tiny_sam2(tmp_path_factory.mktemp("sam2_for_grounding"))
    photo = ball_photo.resize((800, 600))
    vlm = ScriptedVLM(_asking("green ball"), name="qwen3-vl")
    agent = Agent(vlm=vlm, tools={"localizer": "vlm_grounding", "segmenter": "sam2"},
                  tool_options={"segmenter": {"model": str(sam), "device": "cpu"}})
    [finding] = agent.run(photo, "What colour is the ball?").findings
    assert finding.status == "found" and finding.mask is not None and (finding.mask.width, finding.mask.height) == (800, 600)
    [direct] = Sam2Segmenter(model=sam, device="cpu").segment(photo, [finding.box])
    assert (finding.mask.to_array() == direct.mask.to_array()).all()


def test_as_the_detector_of_the_v_star_search(ball_photo):
    vlm = ScriptedVLM(lambda text, images: qwen_reply(images[0], "green ball", "relative"), name="qwen3-vl")
    agent = Agent(vlm=vlm, tools={"localizer": {"name": "vstar", "cue": "detector", "use_context": False},
                                  "detector": "vlm_grounding"})
    [finding] = agent.find(ball_photo, Target(name="green ball"))
    assert finding.status == "found" and finding.tool == "vstar" and _iou(finding, BALL) > 0.7


def test_through_a_langchain_chat_model(ball_photo):
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage
    from lookcloser.vlm import LangChainVLM

    # the fake model cannot see: it answers the Qwen3-VL reply for the ball's known place
    reply = '```json\n[{"bbox_2d": [375, 333, 475, 433], "label": "green ball"}]\n```'
    model = GenericFakeChatModel(messages=iter([AIMessage(content=reply)]))
    [finding] = Agent(vlm=LangChainVLM(model, box_format="qwen3_vl"), tools={"localizer": "vlm_grounding"}).find(
        ball_photo, Target(name="green ball"))
    assert finding.search["grounding"]["box_format_from"] == "box_format" and _iou(finding, BALL) > 0.9


def test_through_transformers_the_grid_is_the_processors(tiny_qwen_path, ball_photo, monkeypatch):
    # a real TransformersVLM (tiny Qwen2.5-VL, its processor's own small max_pixels): the convention comes from the
    # loaded config's model_type and the grid from the backend's sent_image_size; the model's eyes are the stand-in
    from lookcloser.core.vlm_protocol import VLMReply
    from lookcloser.vlm import TransformersVLM

    vlm = TransformersVLM(str(tiny_qwen_path), device="cpu", dtype="float32")
    if not callable(getattr(vlm, "sent_image_size", None)):
        pytest.skip("TransformersVLM.sent_image_size is not in this checkout")
    grids = []

    def answer(messages, *, max_new_tokens=256):
        image = messages[0].images[0]
        grids.append(vlm.sent_image_size(image.size))
        return VLMReply(text=qwen_reply(image, "green ball", "absolute", grids[-1]))

    monkeypatch.setattr(vlm, "generate", answer)
    tool = VLMGrounding(vlm)
    [finding] = tool.locate(ball_photo, Target(name="green ball"))
    assert tool.convention() == (boxes.convention("qwen2_5_vl"), "model_type qwen2_5_vl")
    assert grids[0] != (1148, 840)  # the tiny processor's budget is smaller than the view: it resizes again
    assert _iou(finding, BALL) > 0.7, finding.box


# ------------------------------------------------------------------ registry, settings, CLI
def test_registered_for_both_roles_with_what_it_needs():
    from lookcloser.tools.report import rows

    listed = {(r["role"], r["name"]): r for r in rows()}
    for role in ("localizer", "detector"):
        row = listed[(role, "vlm_grounding")]
        assert row["needs_vlm"] and row["status"] == "ok" and "VLM" in row["backend"]
    assert registry.info("localizer", "vlm_grounding").batches
    with pytest.raises(SettingsError, match="box_format"):
        registry.check_options("localizer", "vlm_grounding", {"box_format": "yolo"})
    with pytest.raises(SettingsError, match="max_view_pixels"):
        registry.check_options("detector", "vlm_grounding", {"max_view_pixels": 10})
    assert registry.check_options("localizer", "vlm_grounding", {"box_format": "glm", "min_box_px": 8})


def test_a_config_file_sets_the_backends_box_format(tmp_path):
    from lookcloser.runtime.settings import load

    config = tmp_path / "settings.toml"
    config.write_text('[vlm]\nspec = "openai:my-model@http://127.0.0.1:1/v1"\nbox_format = "qwen2_5_vl"\n\n'
                      '[tools]\nlocalizer = "vlm_grounding"\n')
    settings = load(config)
    assert settings.vlm == {"spec": "openai:my-model@http://127.0.0.1:1/v1", "box_format": "qwen2_5_vl"}
    agent = Agent(**settings.agent_kwargs())
    assert agent.vlm.backend.box_format == "qwen2_5_vl"
    config.write_text('[vlm]\nbox_format = "glm"\n')
    with pytest.raises(SettingsError, match=r"\[vlm\] needs spec"):
        load(config)


def test_cli_find_with_vlm_and_tools_listing(server, ball_photo, tmp_path):
    import subprocess
    import sys

    image = tmp_path / "photo.jpg"
    ball_photo.save(image, quality=95)
    _served(server, "absolute", "green ball")
    command = [sys.executable, "-m", "lookcloser.entrypoints.cli"]
    spec = f"openai:Qwen/Qwen2.5-VL-7B-Instruct@{server.url}"
    found = subprocess.run([*command, "find", str(image), "green ball", "--tool", "localizer=vlm_grounding",
                            "--vlm", spec, "--json", "--trace-dir", str(tmp_path / "traces")],
                           capture_output=True, text=True, timeout=120)
    assert found.returncode == 0, found.stderr
    [finding] = json.loads(found.stdout)["findings"]
    assert finding["status"] == "found" and Box.from_list(finding["box"]).iou(Box.from_list(BALL)) > 0.7
    assert "bbox_2d" in prompt_text(server.requests[0])
    # without --vlm: the failed finding, then one line naming the fix, exit status 2
    missing = subprocess.run([*command, "find", str(image), "green ball", "--tool", "localizer=vlm_grounding",
                              "--json", "--trace-dir", str(tmp_path / "traces")], capture_output=True, text=True,
                             timeout=120)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.count("error:") == 1 and "--vlm SPEC" in missing.stderr
    listed = subprocess.run([*command, "tools", "--json"], capture_output=True, text=True, timeout=120)
    rows = {(r["role"], r["name"]): r for r in json.loads(listed.stdout)}
    assert rows[("localizer", "vlm_grounding")]["needs_vlm"] and rows[("detector", "vlm_grounding")]["needs_vlm"]


def test_two_targets_are_one_search_branch_and_one_grounding_call_in_the_graph():
    show = json.dumps({"answer": None, "missing": [{"name": "red car", "kind": "object"}, {"name": "dog", "kind": "object"}]})
    vlm = ScriptedVLM(lambda text, images: "done" if "Additional visual information" in text
                      else _two_objects(text, images) if "bbox" in text else show, name="qwen3-vl-8b")
    answer = Agent(vlm=vlm, tools={"localizer": "vlm_grounding"}).run(Image.new("RGB", (1000, 1000)), "What is there?")
    assert [(f.target.name, f.status) for f in answer.findings] == [("red car", "found"), ("dog", "found")]
    assert sum("bbox" in call["text"] for call in vlm.calls) == 1 and answer.stats.tool_calls == 1
