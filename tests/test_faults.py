"""Fault injection (issue 11): every failure is one line, bounded in time, and loses nothing.

A misbehaving OpenAI-compatible endpoint (tests/fault_stub.py: slow, invalid JSON, HTML, empty
choices, HTTP 500, a 10 MB reply, failing only at TELL) against the real `lookcloser` executable and
the Python API; plus the file-option, empty-argument, multi-frame and `trace` rows of the issue.
A case that hangs fails through the subprocess (or future) time bound; no other timing is asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from doubles import FixedLocalizer, ScriptedVLM
from fault_stub import FaultServer
from lookcloser.vlm import OpenAIVLM

pytest.importorskip("openai")

#: No failing case may take longer than this (a hang would be the slow endpoint's 30 s, or 6 minutes).
BOUND_S = 60
SIGN_BOX = (13, 45, 280, 116)


def _lookcloser() -> list[str]:
    script = Path(sys.executable).parent / "lookcloser"
    return [str(script)] if script.exists() else [sys.executable, "-m", "lookcloser.entrypoints.cli"]


def _run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([*_lookcloser(), *map(str, args)], capture_output=True, text=True, timeout=BOUND_S)


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout[-500:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    return lines[0]


@pytest.fixture
def sign(tmp_path) -> Path:
    image = Image.new("RGB", (480, 160), "white")
    ImageDraw.Draw(image).text((20, 40), "GATE 42", fill="black", font=ImageFont.load_default(size=64))
    path = tmp_path / "sign.png"
    image.save(path)
    return path


def _ask(stub: FaultServer, image: Path, tmp_path: Path, *extra) -> subprocess.CompletedProcess:
    return _run("ask", image, "What does the sign say?", "--vlm", stub.spec, "--tool", "localizer=whole_image",
                "--trace-dir", tmp_path / "traces", *extra)


# ------------------------------------------------------------------------ the endpoint, on the CLI

ENDPOINT_FAULTS = [
    ("invalid_json", ["answered with invalid JSON", "HTTP 200", "content type application/json",
                      'received: \'{"id": "chatcmpl-1"']),
    ("html", ["did not answer with JSON", "HTTP 200", "content type text/html", "received: '<!DOCTYPE html>"]),
    ("empty_choices", ["returned no choices", "HTTP 200", "content type application/json"]),
    ("http500", ["returned HTTP 500", "model crashed"]),
]


@pytest.mark.parametrize("fault, words", ENDPOINT_FAULTS, ids=[f[0] for f in ENDPOINT_FAULTS])
def test_endpoint_faults_are_one_line_naming_the_endpoint(fault, words, sign, tmp_path):
    with FaultServer(show=fault) as stub:
        result = _ask(stub, sign, tmp_path, "--json")
    line = _one_error_line(result)
    assert f"VLM endpoint {stub.url} (model 'stub')" in line
    for word in words:
        assert word in line, line
    assert len(line) < 400 and result.stdout == ""


@pytest.mark.parametrize("fault", ["slow", "trickle"])
def test_a_slow_endpoint_is_cut_at_the_timeout(fault, sign, tmp_path):
    with FaultServer(show=fault, slow_seconds=30) as stub:
        result = _ask(stub, sign, tmp_path, "--timeout", "6")  # ends well before the 30 s reply (or BOUND_S)
    line = _one_error_line(result)
    assert f"VLM endpoint {stub.url} (model 'stub') did not answer within the question's time limit of 6 s" in line
    assert result.stdout == ""


def test_bad_timeouts_are_refused_before_any_work(sign):
    for value in ("0", "-3", "inf"):
        line = _one_error_line(_run("ask", sign, "q", "--timeout", value))
        assert "--timeout must be a positive number of seconds" in line
    result = _run("ask", sign, "q", "--timeout", "soon")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_a_huge_reply_is_cut_and_the_trace_stays_small(sign, tmp_path):
    with FaultServer(show="huge", huge_chars=10_000_000) as stub:
        result = _ask(stub, sign, tmp_path, "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout)["answer"]
    assert len(answer) <= 4000 and answer.endswith("…[cut]") and answer.startswith("word word")
    trace_bytes = sum(p.stat().st_size for p in (tmp_path / "traces").rglob("*") if p.is_file())
    assert trace_bytes < 200_000  # the 10 MB reply was stored three times before (32 MB)


def test_tell_failing_after_the_search_keeps_the_findings(sign, tmp_path):
    with FaultServer(tell="invalid_json") as stub:
        result = _ask(stub, sign, tmp_path, "--json")
        assert stub.steps[0] == "show" and stub.steps[-1] == "tell"
    line = _one_error_line(result)
    assert f"VLM endpoint {stub.url}" in line and "the search's findings are kept" in line
    payload = json.loads(result.stdout)  # printed before the error line
    assert payload["answer"] is None and payload["error"] in line
    [finding] = payload["findings"]
    assert finding["status"] == "found" and finding["text"] == "GATE 42"
    assert payload["stats"]["tool_calls"] >= 1


def test_tell_failing_in_text_mode_prints_the_findings_then_one_error_line(sign, tmp_path):
    with FaultServer(tell="html") as stub:
        result = subprocess.run([*_lookcloser(), "ask", str(sign), "What does the sign say?", "--vlm", stub.spec,
                                 "--tool", "localizer=whole_image", "--trace-dir", str(tmp_path / "t")],
                                capture_output=True, text=True, timeout=BOUND_S, env={**_env(), "COLUMNS": "300"})
    line = _one_error_line(result)
    assert "did not answer with JSON" in line
    assert "GATE 42" in result.stdout


def _env() -> dict:
    import os

    return dict(os.environ)


# ------------------------------------------------------------------------ the other rows of the issue

def test_file_options_fail_before_any_work(sign, tmp_path):
    (tmp_path / "a_file").write_text("x")
    with FaultServer(show="slow") as stub:  # would hang for 30 s if the run started
        for args, words in [
            (["--trace-dir", tmp_path / "a_file"], "exists and is not a directory"),
            (["--trace-dir", "/proc/lookcloser"], "is under /proc, a virtual file system"),
            (["--save-vis", tmp_path / "out.xyz"], "unknown image extension '.xyz'"),
            (["--save-vis", "/proc/out.png"], "/proc is a virtual file system"),
        ]:
            line = _one_error_line(_run("ask", sign, "q", "--vlm", stub.spec, *args))
            assert words in line
        assert stub.steps == []
    line = _one_error_line(_run("find", sign, "x", "--trace-dir", tmp_path / "a_file"))
    assert "cannot hold traces" in line


@pytest.mark.parametrize("target", ["", "   "])
def test_empty_target_is_one_line(sign, target):
    assert "TARGET must not be empty" in _one_error_line(_run("find", sign, target))


def test_animated_gif_uses_the_first_frame_and_says_so(tmp_path):
    frames = [Image.new("RGB", (32, 32), color) for color in ("red", "green", "blue")]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100)
    with FaultServer(show_reply=json.dumps({"answer": "red", "missing": []})) as stub:
        result = _run("ask", gif, "What colour?", "--vlm", stub.spec, "--json", "--trace-dir", tmp_path / "t")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["answer"] == "red"
    assert "the image has 3 frames or pages; the first one was used" in payload["notes"]


def test_trace_subcommand_errors_exit_2(tmp_path):
    line = _one_error_line(_run("trace", "show", tmp_path / "no_such_trace"))
    assert "no_such_trace" in line


# ------------------------------------------------------------------------ the Python API

def _agent(vlm, **config):
    from lookcloser.agent import Agent
    from lookcloser.core.config import AgentConfig

    return Agent(vlm=vlm, tools={"localizer": FixedLocalizer({"the sign": SIGN_BOX})}, config=AgentConfig(**config))


def _bounded(func):
    """Call func with a hang bound (a future's time-out), returning its result or raising its error."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(func).result(timeout=BOUND_S)


@pytest.mark.parametrize("fault", ["invalid_json", "html", "empty_choices"])
def test_python_api_raises_vlm_error_not_json_errors(fault, sign):
    from lookcloser.core.errors import VLMError

    with FaultServer(show=fault) as stub:
        with pytest.raises(VLMError) as info:
            _bounded(lambda: _agent(stub.spec).run(sign, "What does the sign say?"))
    assert not isinstance(info.value, json.JSONDecodeError) and not isinstance(info.value.__cause__, ValueError)
    assert stub.url in str(info.value) and "\n" not in str(info.value)


def test_python_api_tell_failure_raises_answer_error_with_the_findings(sign):
    from lookcloser.core.errors import AnswerError, LookCloserError, VLMError

    with FaultServer(tell="invalid_json") as stub:
        with pytest.raises(AnswerError) as info:
            _bounded(lambda: _agent(stub.spec).run(sign, "What does the sign say?"))
    error = info.value
    assert isinstance(error, LookCloserError) and isinstance(error.__cause__, VLMError)
    [finding] = error.findings
    assert finding.status == "found" and finding.box.to_list() == list(map(float, SIGN_BOX))
    assert error.partial.text is None and error.partial.findings == error.findings
    assert error.partial.error and error.partial.error in str(error)
    assert error.partial.to_json()["error"] == error.partial.error


@pytest.mark.parametrize("fault", ["http500", "slow"])
def test_python_api_tell_failure_or_timeout_keeps_the_findings(fault, sign):
    from lookcloser.core.errors import AnswerError, VLMError

    with FaultServer(tell=fault, slow_seconds=30) as stub:
        agent = _agent(OpenAIVLM("stub", base_url=stub.url, max_retries=1), timeout=3)
        with pytest.raises(AnswerError) as info:
            _bounded(lambda: agent.run(sign, "What does the sign say?"))
    assert isinstance(info.value.__cause__, VLMError) and stub.url in str(info.value)
    assert ("HTTP 500" if fault == "http500" else "time limit of 3 s") in str(info.value)
    assert [f.status for f in info.value.findings] == ["found"]


def test_python_api_timeout_names_the_endpoint(sign):
    from lookcloser.core.errors import TimeLimitError, VLMError, VLMTimeoutError

    with FaultServer(show="slow", slow_seconds=30) as stub:
        with pytest.raises(VLMTimeoutError) as info:
            _bounded(lambda: _agent(stub.spec, timeout=1).run(sign, "What does the sign say?"))
    assert isinstance(info.value, TimeLimitError) and isinstance(info.value, VLMError)
    assert stub.url in str(info.value) and "time limit of 1 s" in str(info.value)


def test_the_time_limit_also_bounds_the_search(sign):
    from lookcloser.agent import Agent
    from lookcloser.core.config import AgentConfig
    from lookcloser.core.errors import AnswerError, TimeLimitError

    vlm = ScriptedVLM([json.dumps({"answer": None, "missing": [{"name": "the sign"}]}), "never asked"])
    agent = Agent(vlm=vlm, tools={"localizer": FixedLocalizer({"the sign": SIGN_BOX}, delay=20)},
                  config=AgentConfig(timeout=1))
    with pytest.raises(AnswerError) as info:
        _bounded(lambda: agent.run(sign, "What does the sign say?"))
    assert isinstance(info.value.__cause__, TimeLimitError)
    assert "before TELL's VLM call" in str(info.value)
    [finding] = info.value.findings
    assert finding.status == "failed" and "the question's time limit of 1 s ran out" in finding.error
    assert len(vlm.calls) == 1


def test_served_graph_context_config_takes_the_timeout(sign):
    from lookcloser.core.errors import VLMTimeoutError
    from lookcloser.graphs.agent_graph import graph
    from lookcloser.imaging.refs import to_ref
    from lookcloser.imaging.load import load_image
    from lookcloser.runtime.context import Context

    with FaultServer(show="slow", slow_seconds=30) as stub:
        context = Context(vlm=stub.spec, tools={"localizer": "whole_image"}, config={"timeout": 1})
        inputs = {"image": to_ref(load_image(sign)), "question": "What does the sign say?"}
        with pytest.raises(VLMTimeoutError, match="time limit of 1 s"):
            _bounded(lambda: graph.invoke(inputs, context=context))


def test_a_search_past_its_time_stops_itself_instead_of_running_on(sign):
    """The search node passes its limit down (lookcloser.core.deadline): the V* search checks it between
    steps, so the worker ends soon after the time-out rather than looking at every patch in the background."""
    import threading

    from lookcloser.agent import Agent
    from lookcloser.core.config import AgentConfig
    from lookcloser.tools.vstar.localizer import VStarLocalizer
    from vstar_fakes import Blob, SyntheticCue

    workers = set()

    class SlowCue(SyntheticCue):
        def __call__(self, patch, phrase):
            workers.add(threading.current_thread())
            time.sleep(0.2)
            return super().__call__(patch, phrase)

    cue = SlowCue(blobs=[Blob(x=50, y=50, sigma=30)])
    localizer = VStarLocalizer(cue=cue, use_context=False, config=None)
    agent = Agent(vlm=ScriptedVLM([]), tools={"localizer": localizer}, config=AgentConfig(max_search_seconds=1))
    photo = Image.new("RGB", (4000, 3000), "white")
    started = time.monotonic()
    [finding] = _bounded(lambda: agent.find(photo, "a cup"))
    assert finding.status == "failed" and "timed out after 1 s (max_search_seconds)" in finding.error
    assert time.monotonic() - started < 5
    deadline = time.monotonic() + 2  # one more look (0.2 s) at most, then the worker is gone
    while any(worker.is_alive() for worker in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert workers and not any(worker.is_alive() for worker in workers)
    looks = len(cue.seen)
    time.sleep(0.5)
    assert len(cue.seen) == looks and looks <= 8  # ~1 s of 0.2-s looks, then nothing more
