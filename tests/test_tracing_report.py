"""The HTML report of an agent trace: self-contained, shows the answer, the image with search patches,
boxes and masks, every VLM call with its images, prompt and reply; safe with hostile traces; and
rendered by a real headless Chromium into a screenshot that shows the image and the answer."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from typer.testing import CliRunner

from doubles import ExplodingLocalizer, ScriptedVLM
from lookcloser.tools.vstar.localizer import VStarLocalizer
from lookcloser.tracing import RUNS_FILE, load_trace
from lookcloser.entrypoints.cli.trace import trace_app
from lookcloser.tracing.report import render_report, write_report
from lookcloser.core.types import Box
from tracing_helpers import ANSWER, QUESTION, SCENE_COLOR, agent_trace, missing
from vstar_fakes import Blob, SyntheticCue, Thing, coord_image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian package 'chromium' is not installed (apt-get install -y chromium)")


def _chromium(args: list[str], profile: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
             f"--user-data-dir={profile}"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=timeout)


def _edit(trace_dir: Path, change) -> None:
    records = [json.loads(line) for line in (trace_dir / RUNS_FILE).read_text().splitlines()]
    records = [r for r in records if change(r) is not False]
    (trace_dir / RUNS_FILE).write_text("".join(json.dumps(r) + "\n" for r in records))


def test_report_shows_answer_image_search_path_masks_and_every_vlm_call(tmp_path):
    answer, trace_dir = agent_trace(tmp_path)
    page = render_report(trace_dir)
    assert not re.search(r'(src|href)="(?!data:|#)', page)  # self-contained: every image is a data URL
    assert f'<div id="final-answer">{ANSWER}</div>' in page and f"Q: {QUESTION}" in page
    assert page.count('class="search-step"') == 8  # 3 + 3 + 2 V* patches, from the vstar.step runs
    assert page.count('class="finding-box"') == 2  # sign and cup found, the dog has no box
    assert page.count('class="mask-overlay"') == 2  # the segmenter's RLE masks
    assert "VLM calls (2)" in page
    assert page.count("<figure><img") == 1 + 3  # SHOW saw the image; TELL the image and two crops
    tell_prompt = next(r for r in load_trace(trace_dir) if r["name"] == "vlm.generate" and "Additional" in json.dumps(r))
    assert "Additional visual information" in page and "in tell" in page and "in show" in page
    assert f'<pre class="reply">{ANSWER}</pre>' in page
    assert f"tokens in {tell_prompt['extra']['metadata']['usage_metadata']['input_tokens']}" in page
    assert "parse path: json" in page
    for name in ("read_input", "route_after_show", "tool.localizer.stepping", "tool.segmenter.boxfill", "vstar.step"):
        assert f">{name}</td>" in page, name
    assert 'id="errors"' not in page


def test_report_labels_each_search_with_its_target(tmp_path):
    """A real V* search per target (synthetic cue): `lookcloser trace report` names each search and its steps
    by the target the search node was given, not "search"."""
    cue = SyntheticCue(blobs=[Blob(700, 650, 40)], things=[Thing(Box(x1=680, y1=630, x2=720, y2=670), 0.9, 300)])
    vlm = ScriptedVLM([missing("the cat", "the red apple"), "a cat"])
    answer, trace_dir = agent_trace(tmp_path / "traces", vlm=vlm, tools={"localizer": VStarLocalizer(cue=cue)},
                                    image=coord_image(896, 896))
    result = CliRunner().invoke(trace_app, ["report", str(trace_dir), "-o", str(tmp_path / "report.html")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "report.html").read_text()
    for finding in answer.findings:
        steps = len(finding.search["steps"])
        assert steps > 1 and f"&#9633; {finding.target.name}</b> ({steps} steps)" in page  # the image's legend
        assert page.count(f'">{finding.target.name}</td><td class="num">') == steps  # the steps table
    assert sum(len(f.search["steps"]) for f in answer.findings) == answer.stats.search_steps
    assert "&#9633; search</b>" not in page


def test_search_patches_come_from_the_findings_when_no_step_runs_were_traced(tmp_path):
    _, trace_dir = agent_trace(tmp_path)
    _edit(trace_dir, lambda r: r["name"] != "vstar.step")
    page = render_report(trace_dir)
    assert page.count('class="search-step"') == 8 and ">vstar.step</td>" not in page


def test_report_lists_a_failed_tool_call_with_its_error(tmp_path):
    vlm = ScriptedVLM([missing("the logo"), "I could not find the logo."])
    _, trace_dir = agent_trace(tmp_path, vlm=vlm, tools={"localizer": ExplodingLocalizer()})
    page = render_report(trace_dir)
    errors = page[page.index('id="errors"'):]
    assert "tool.localizer.exploding" in errors and "model exploded on purpose" in errors
    assert '<td class="status-error">failed</td>' in page


def test_report_of_a_trace_cut_short_still_shows_the_image_and_says_so(tmp_path):
    _, trace_dir = agent_trace(tmp_path)
    _edit(trace_dir, lambda r: r["name"] not in ("lookcloser", "tell") and r.get("parent_run_id") is not None
          and not (r["name"] == "vlm.generate" and "Additional" in json.dumps(r)))
    page = render_report(trace_dir)
    assert "the trace is incomplete" in page
    assert page.count('class="search-step"') == 8 and 'id="overlay"' in page


def test_report_escapes_trace_text_and_opens_no_file_outside_the_trace(tmp_path):
    secret = tmp_path / "secret.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(secret)
    _, trace_dir = agent_trace(tmp_path / "traces")
    (trace_dir / "images" / "link.png").symlink_to(secret)

    def hostile(record):
        if record["name"] == "lookcloser":
            record["inputs"].update(image="../../secret.png", question="<script>alert(1)</script>")
            record["outputs"]["answer"] = "<img src=x onerror=alert(1)>"
        if record["run_type"] == "llm":
            blocks = record["inputs"]["messages"][0][0]["kwargs"]["content"]
            blocks[0]["url"] = str(secret)
            blocks.insert(1, {"type": "image", "url": "images/link.png"})

    _edit(trace_dir, hostile)
    page = render_report(trace_dir)
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "outside the trace directory: not opened" in page  # ../../secret.png and the symlink
    assert "absolute path: only files inside the trace are opened" in page
    tell = page[page.index("VLM call 2"):]
    assert tell.count("<figure><img") == 2  # only TELL's two crops, which are files of the trace


def test_report_opens_trace_images_with_the_image_loader_guards(tmp_path):
    _, trace_dir = agent_trace(tmp_path)
    input_image = load_trace(trace_dir)[0]["inputs"]["image"]
    crop = next(p for p in (trace_dir / "images").iterdir() if p.name != Path(input_image).name)
    crop.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")  # EPS under a .png name
    page = render_report(trace_dir)
    assert "in EPS format, which lookcloser does not open" in page
    page = render_report(trace_dir, max_pixels=10_000)  # the 640x400 input is over this limit
    assert "more than the limit of 10,000" in page and 'id="overlay"' not in page


@needs_chromium
def test_report_renders_in_headless_chromium_with_image_and_answer(tmp_path):
    _, trace_dir = agent_trace(tmp_path / "traces")
    report = write_report(trace_dir, tmp_path / "out" / "report.html")
    url = report.resolve().as_uri()

    dom = _chromium(["--dump-dom", url], tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert re.search(r'<div id="final-answer">\s*' + re.escape(ANSWER) + r"\s*</div>", dom.stdout)
    assert QUESTION in dom.stdout and dom.stdout.count('class="search-step"') == 8

    shot = tmp_path / "report.png"
    done = _chromium(["--window-size=1280,1400", f"--screenshot={shot}", url], tmp_path / "profile-shot")
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.std() > 10, "screenshot is blank"
    scene = np.all(np.abs(pixels - np.array(SCENE_COLOR)) <= 6, axis=-1)
    # the 640x400 input image is drawn about 1100 px wide: a large block of its colour must be on screen
    assert scene.sum() > 100_000, f"input image not visible: {scene.sum()} pixels of its colour"
    rows, cols = np.nonzero(scene)
    assert cols.max() - cols.min() > 800 and rows.max() - rows.min() > 400
