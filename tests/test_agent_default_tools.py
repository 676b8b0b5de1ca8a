"""The path users hit: `Agent.run` with the DEFAULT tools inside the real graph.

- object target: the V* searcher with a tiny random-weight OWLv2 cue (loaded through the real
  transformers path) and the contextual cue asked through the agent's traced VLM;
- text target: the V* read-all search with the real PP-OCRv6 text cue on a real photo;
and the local trace of those runs, read back as one tree.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from doubles import ScriptedVLM
from lookcloser import Agent
from lookcloser.tools.vstar.text_match import edit_distance, normalise
from lookcloser.tracing import load_trace, validate_trace

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def tiny_owlv2_dir(tmp_path_factory):
    from tiny_owlv2 import build_tiny_owlv2

    # seed 2: on the test photo its random weights detect nothing at the root and give a weak map, so the
    # search must zoom and ask the contextual cue (other seeds happen to "detect" a car at once)
    return build_tiny_owlv2(tmp_path_factory.mktemp("owlv2"), seed=2)


def scripted(show_reply: str, final: str):
    """SHOW names a target; the contextual cue gets a context object and a position; TELL repeats what the
    memory holds."""
    def reply(text: str, images: list) -> str:
        if "most likely to be" in text:
            return "On the road, bottom-right."
        if "Additional visual information" in text:
            return final(text) if callable(final) else final
        return show_reply
    return ScriptedVLM(reply)


def test_object_target_with_owlv2_cue_and_contextual_cue(tiny_owlv2_dir, tmp_path):
    rng = np.random.default_rng(3)
    photo = Image.fromarray(rng.integers(0, 255, (900, 1200, 3), dtype=np.uint8))
    vlm = scripted(json.dumps({"answer": None, "missing": [{"name": "red car", "kind": "object"}]}), "no car")
    agent = Agent(vlm=vlm, tool_options={"localizer": {"model": str(tiny_owlv2_dir)}}, trace_dir=tmp_path)
    answer = agent.run(photo, "What colour is the car?")

    assert answer.text == "no car"
    [finding] = answer.findings
    assert finding.tool == "vstar" and finding.status in ("found", "not_found")
    steps = finding.search["steps"]
    assert len(steps) == answer.stats.search_steps > 1  # it zoomed in, patch by patch
    asked = [c for c in vlm.calls if "most likely to be" in c["text"]]
    # weak random-weight map -> asked the VLM, whose context object ("road") the OWLv2 cue mapped (official V*)
    assert asked and any(s["context"] == "object: road" for s in steps)
    assert answer.stats.vlm_calls == 2 + len(asked) and answer.stats.tool_calls == 1

    runs = load_trace(answer.trace_dir)
    validate_trace(answer.trace_dir)
    by_id = {r["id"]: r for r in runs}
    assert {r["trace_id"] for r in runs} == {answer.trace_id}

    def ancestors(run):
        names = []
        while run.get("parent_run_id"):
            run = by_id[run["parent_run_id"]]
            names.append(run["name"])
        return names

    context_calls = [r for r in runs if r["run_type"] == "llm" and "search" in ancestors(r)]
    assert len(context_calls) == len(asked)  # the contextual cue's VLM calls sit inside the search node
    assert all("tool.localizer.vstar" in ancestors(r) for r in context_calls)
    step_runs = [r for r in runs if r["name"] == "vstar.step"]
    assert len(step_runs) == len(steps) and all(ancestors(r)[:2] == ["tool.localizer.vstar", "search"]
                                                for r in step_runs)


@pytest.mark.slow
def test_text_target_with_the_real_text_cue(tmp_path):
    vlm = scripted(json.dumps({"answer": None, "missing": [{"name": "the website address", "kind": "text"}]}),
                   lambda text: "WWW.TVR.BY" if _mentions(text, "wwwtvrby") else "unreadable")
    agent = Agent(vlm=vlm, trace_dir=tmp_path)
    answer = agent.run(EXAMPLES / "vending_machine.jpg", "What website is printed on the machine?")

    assert answer.text == "WWW.TVR.BY"  # the 10-px line reached TELL, read by the search
    read = [f for f in answer.findings if f.text and _mentions(f.text, "wwwtvrby")]
    assert read and read[0].box.height < 30 and read[0].tool == "vstar"
    tell_prompt = vlm.calls[-1]["text"]
    assert 'text read in the image while searching for "the website address"' in tell_prompt
    assert answer.stats.search_steps > 1 and answer.stats.vlm_calls == 2
    validate_trace(answer.trace_dir)
    image_files = list((Path(answer.trace_dir) / "images").iterdir())
    assert any(p.suffix == ".jpg" for p in image_files)  # the 3.4-Mpx input, once, as JPEG

    # the HTML report of this very trace, rendered by a real browser
    from test_tracing_report import CHROMIUM, _chromium
    from lookcloser.tracing.report import write_report

    if CHROMIUM is None:
        pytest.skip("Debian package 'chromium' is not installed: report not rendered")
    report = write_report(answer.trace_dir, tmp_path / "report.html")
    dom = _chromium(["--dump-dom", report.resolve().as_uri()], tmp_path / "profile")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert re.search(r'<div id="final-answer">\s*WWW\.TVR\.BY\s*</div>', dom.stdout)
    assert dom.stdout.count('class="search-step"') == answer.stats.search_steps
    assert dom.stdout.count('class="finding-box"') == len([f for f in answer.findings if f.box is not None])


def _mentions(text: str, wanted: str) -> bool:
    """A word of `text` is `wanted` within one edit (normalised): OCR on another CPU may differ by a character."""
    return any(edit_distance(normalise(word), wanted) <= 1 for word in text.split())
