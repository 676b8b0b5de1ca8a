"""The HTML report: self-contained, safe with hostile paths, and rendered by a real headless
chromium into a PNG that shows the image and the answer."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookcloser.tracing import load_trace, start_trace, trace_run
from lookcloser.tracing.report import render_report, write_report
from tracing_helpers import ANSWER, SCENE_COLOR, build_demo_trace

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian package 'chromium' is not installed (apt-get install -y chromium)"
)


def _chromium(args: list[str], profile: Path, timeout: float = 90) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", f"--user-data-dir={profile}"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=timeout)


def test_report_is_self_contained_and_names_everything(tmp_path):
    trace_dir = build_demo_trace(tmp_path / "traces")
    page = render_report(trace_dir)
    # no reference to a file: every image is a data URL, no external scripts or styles
    assert not re.search(r'(src|href)="(?!data:|#)', page)
    assert page.count("data:image/") >= 4  # main image, mask overlay, two VLM crops (input reused)
    assert f'<div id="final-answer">{ANSWER}</div>' in page
    assert "What does the sign say?" in page and "Crop 1 shows the sign" in page
    assert page.count('class="search-step"') == 3  # three numbered V* patches
    assert page.count('class="finding-box"') == 1 and page.count('class="mask-overlay"') == 1
    assert "tokens in 321 / out 12" in page and "parse path: json" in page
    names = [r["name"] for r in load_trace(trace_dir)]
    assert all(name in page for name in names)


def test_report_escapes_trace_text_and_reads_no_file_outside_the_trace(tmp_path):
    secret = tmp_path / "secret.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(secret)
    with start_trace(tmp_path / "traces", "lookcloser.run", {"question": "<script>alert(1)</script>",
                                                           "image": "../../secret.png"}, live=False) as root:
        with trace_run("vlm.generate", "llm", {"messages": [{"role": "user", "content": [
                {"type": "image", "path": str(secret)}, {"type": "text", "text": "hi"}]}]}) as call:
            call.outputs = {"text": "<b>bold</b>"}
        root.outputs = {"answer": "<img src=x onerror=alert(1)>"}
    page = render_report(tmp_path / "traces" / root.id)
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "data:image" not in page  # neither the relative escape nor the absolute path was embedded
    assert "not in this trace" in page


def test_report_of_a_crashed_trace_still_renders(tmp_path):
    trace_dir = build_demo_trace(tmp_path / "traces")
    runs_file = trace_dir / "runs.jsonl"
    lines = runs_file.read_text().splitlines()
    runs_file.write_text("\n".join(line for line in lines if json.loads(line)["parent_run_id"]) + "\n")  # no root
    page = render_report(trace_dir)
    assert "no answer" in page and "Timings" in page


@needs_chromium
def test_report_renders_in_headless_chromium_with_image_and_answer(tmp_path):
    trace_dir = build_demo_trace(tmp_path / "traces")
    report = write_report(trace_dir, tmp_path / "out" / "report.html")
    url = report.resolve().as_uri()

    dom = _chromium(["--dump-dom", url], tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert re.search(r'<div id="final-answer">\s*' + re.escape(ANSWER) + r"\s*</div>", dom.stdout)
    assert "What does the sign say?" in dom.stdout

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
