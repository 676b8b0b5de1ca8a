"""The `lookcloser` command: typer's runner (same code path as the installed script) and, for the
errors that must come before any model loads, the real executable in a subprocess."""

import json
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from lookcloser.entrypoints.cli import app

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
runner = CliRunner()


def test_find_missing_file_is_one_clear_line(tmp_path):
    result = runner.invoke(app, ["find", str(tmp_path / "nope.jpg"), "text", "--kind", "text"])
    assert result.exit_code == 2
    assert "image file not found" in result.output and "Traceback" not in result.output


def test_find_unreadable_image(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    result = runner.invoke(app, ["find", str(bad), "x", "--trace-dir", str(tmp_path / "t")])
    assert result.exit_code == 2 and "not a readable image" in result.output


def test_unknown_tool_and_bad_kind(tmp_path):
    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(image)
    result = runner.invoke(app, ["find", str(image), "x", "--tool", "localizer=nope"])
    assert result.exit_code == 2 and "unknown localizer 'nope'; known localizers:" in result.output
    result = runner.invoke(app, ["find", str(image), "x", "--kind", "thing"])
    assert result.exit_code == 2 and "--kind must be" in result.output


def test_ask_with_unloadable_model_is_one_clear_line(tmp_path):
    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(image)
    result = runner.invoke(app, ["ask", str(image), "What?", "--vlm", f"transformers:{tmp_path / 'no_model'}",
                                 "--trace-dir", str(tmp_path / "t")])
    assert result.exit_code == 2
    assert "no_model" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_find_text_json_on_real_photo_with_whole_image_pass(tmp_path):
    result = runner.invoke(app, ["find", str(EXAMPLES / "instrument.webp"), "text", "--kind", "text",
                                 "--tool", "localizer=whole_image", "--json", "--trace-dir", str(tmp_path / "t"),
                                 "--save-vis", str(tmp_path / "vis.png")])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["findings"] and {"name", "kind", "status", "box", "score", "text", "tool", "error"} <= set(payload["findings"][0])
    assert all(f["kind"] == "text" for f in payload["findings"])
    assert Image.open(tmp_path / "vis.png").size[0] > 0


@pytest.mark.slow
def test_find_text_on_real_photo_reads_the_small_web_address(tmp_path):
    """The README's promise: `lookcloser find examples/vending_machine.jpg text --json` reads small text."""
    result = runner.invoke(app, ["find", str(EXAMPLES / "vending_machine.jpg"), "text", "--json",
                                 "--trace-dir", str(tmp_path / "t")])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    texts = [f["text"] for f in payload["findings"]]
    assert "WWW.TVR.BY" in texts, texts  # 10 px high in a 2250x1500 photo
    assert all(f["kind"] == "text" and f["tool"] == "vstar" for f in payload["findings"])


# ---------------------------------------------------------------- the real executable, fast failures

def _lookcloser() -> list[str]:
    script = Path(sys.executable).parent / "lookcloser"
    return [str(script)] if script.exists() else [sys.executable, "-m", "lookcloser.entrypoints.cli"]


def _run(*args, cwd=None):
    return subprocess.run([*_lookcloser(), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.fixture
def files(tmp_path):
    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(image)
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "a_file").write_text("not a directory")
    return tmp_path


FAST_FAILURES = [
    (["ask", "{tmp}/nope.jpg", "q"], "image file not found: {tmp}/nope.jpg"),
    (["find", "{tmp}/nope.jpg", "text"], "image file not found: {tmp}/nope.jpg"),
    (["ask", "{tmp}", "q"], "image path is a directory, not a file"),
    (["find", "{tmp}/empty.jpg", "x"], "image file is empty (0 bytes)"),
    (["ask", "https://example.com/a.jpg", "q"], "image URLs are not fetched"),
    (["find", "{tmp}/a.png", ""], "TARGET must not be empty"),
    (["find", "{tmp}/a.png", "   "], "TARGET must not be empty"),
    (["ask", "{tmp}/a.png", " "], "QUESTION must not be empty"),
    (["find", "{tmp}/a.png", "x", "--kind", "thing"], "--kind must be 'object' or 'text', got 'thing'"),
    (["ask", "{tmp}/a.png", "q", "--tool", "localizer"], "--tool expects ROLE=NAME"),
    (["ask", "{tmp}/a.png", "q", "--save-vis", "{tmp}/out.gif"], "unknown image extension '.gif'"),
    (["find", "{tmp}/a.png", "x", "--save-vis", "{tmp}/out"], "unknown image extension '(none)'"),
    (["ask", "{tmp}/a.png", "q", "--save-vis", "{tmp}/a_file/out.png"], "a_file exists and is not a directory"),
    (["ask", "{tmp}/a.png", "q", "--save-vis", "{tmp}/a_file/deeper/out.png"], "a_file is not a directory"),
    (["ask", "{tmp}/a.png", "q", "--save-vis", "/proc/out.png"], "/proc is a virtual file system"),
    (["ask", "{tmp}/a.png", "q", "--save-vis", "{tmp}/sub.png/"], "names a directory"),
    (["ask", "{tmp}/a.png", "q", "--save-vis", ""], "--save-vis must not be empty"),
    (["ask", "{tmp}/a.png", "q", "--trace-dir", "{tmp}/a_file"], "--trace-dir {tmp}/a_file cannot hold traces"),
    (["find", "{tmp}/a.png", "x", "--trace-dir", "{tmp}/a_file/traces"], "a_file is not a directory"),
    (["find", "{tmp}/a.png", "x", "--trace-dir", "/proc/lookcloser"], "is under /proc, a virtual file system"),
]


@pytest.mark.parametrize("args, message", FAST_FAILURES)
def test_fast_failures_are_one_line_and_exit_2(files, args, message):
    result = _run(*[a.replace("{tmp}", str(files)) for a in args])
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message.replace("{tmp}", str(files)) in lines[0]
    assert "Traceback" not in result.stderr


def test_save_vis_in_a_directory_that_is_a_file_name(files):
    (files / "dir.png").mkdir()
    result = _run("ask", files / "a.png", "q", "--save-vis", files / "dir.png")
    assert result.returncode == 2 and result.stderr.startswith("error: --save-vis") and "is a directory" in result.stderr


HEAVY = ("lookcloser.agent", "lookcloser.tracing", "lookcloser.imaging.load", "langgraph", "transformers", "torch",
         "PIL", "numpy")


@pytest.mark.parametrize("args", [
    ["--help"],
    ["ask", "{tmp}/nope.jpg", "q"],
    ["find", "{tmp}/a.png", ""],
    ["ask", "{tmp}/a.png", "q", "--save-vis", "{tmp}/v.gif"],
    ["find", "{tmp}/a.png", "x", "--trace-dir", "{tmp}/a_file"],
])
def test_help_and_fast_failures_import_nothing_heavy(files, args):
    """The behaviour behind a quick start: no model, tracing or image library is imported."""
    argv = ["lookcloser", *[a.replace("{tmp}", str(files)) for a in args]]
    code = (
        "import sys\n"
        f"sys.argv = {argv!r}\n"
        "from lookcloser.entrypoints.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"loaded = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
        "sys.__stdout__.write('LOADED=' + ','.join(loaded) + '\\n')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "LOADED=\n" in result.stdout, result.stdout[-500:] + result.stderr[-2000:]


def test_help_lists_trace_and_trace_help_lists_its_commands():
    top = _run("--help")
    assert top.returncode == 0
    for command in ("ask", "find", "trace"):
        assert f" {command} " in top.stdout
    sub = _run("trace", "--help")
    assert sub.returncode == 0
    for command in ("show", "validate", "report", "upload"):
        assert command in sub.stdout


# ---------------------------------------------------------------- result printing, with a stand-in Agent

class _FakeAgent:
    made: list = []

    def __init__(self, vlm=None, tools=None, trace_dir=None, **kwargs):
        self.kwargs = {"vlm": vlm, "tools": tools, "trace_dir": trace_dir, **kwargs}
        _FakeAgent.made.append(self)

    def run(self, image, question, options=None):
        from lookcloser.core.types import Answer, Box, Finding, Target

        self.call = ("run", image, question, options)
        finding = Finding(target=Target(name="sign"), status="found", box=Box.from_list([1, 1, 5, 5]), score=0.8,
                          tool="fake")
        trace = None if self.kwargs["trace_dir"] is None else str(Path(self.kwargs["trace_dir"]) / "run-1")
        return Answer(text="a blue car", choice=1 if options else None, findings=[finding], trace_id="run-1",
                      trace_dir=trace)

    def find(self, image, target):
        from lookcloser.core.types import Box, Finding

        self.call = ("find", image, target)
        return [Finding(target=target, status="found", box=Box.from_list([0, 0, 4, 4]), score=0.5, text="EXIT",
                        tool="fake")]


@pytest.fixture
def fake_agent(monkeypatch):
    module = types.ModuleType("lookcloser.agent")
    module.Agent = _FakeAgent
    _FakeAgent.made = []
    monkeypatch.setitem(sys.modules, "lookcloser.agent", module)
    return _FakeAgent


def test_ask_json_reports_the_trace_and_passes_the_arguments(files, fake_agent, monkeypatch):
    monkeypatch.chdir(files)
    result = runner.invoke(app, ["ask", str(files / "a.png"), "Which one?", "-o", "a red truck", "-o", "a blue car",
                                 "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["choice"] == 1 and payload["trace_dir"] == str(Path("traces") / "run-1")
    assert "trace: " + str(Path("traces") / "run-1") in result.stderr
    agent = fake_agent.made[0]
    assert agent.kwargs["trace_dir"] == Path("traces")  # the CLI keeps writing ./traces by default
    assert agent.call == ("run", files / "a.png", "Which one?", ["a red truck", "a blue car"])


def test_ask_text_output_says_where_the_trace_went(files, fake_agent):
    result = runner.invoke(app, ["ask", str(files / "a.png"), "q?", "--trace-dir", str(files / "t")],
                           env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "answer: a blue car" in result.stdout
    assert f"trace: {files / 't' / 'run-1'}" in result.stdout


def test_find_strips_the_target_and_reads_text_for_text(files, fake_agent):
    result = runner.invoke(app, ["find", str(files / "a.png"), "  text ", "--json", "--trace-dir", str(files / "t")])
    assert result.exit_code == 0, result.output
    _, image, target = fake_agent.made[0].call
    assert (image, target.name, target.kind) == (files / "a.png", "text", "text")
    assert json.loads(result.stdout)["findings"][0]["text"] == "EXIT"


def test_save_vis_is_written_before_the_result_is_printed(files, fake_agent):
    vis = files / "new" / "dir" / "vis.jpg"
    result = runner.invoke(app, ["find", str(files / "a.png"), "sign", "--json", "--save-vis", str(vis),
                                 "--trace-dir", str(files / "t")])
    assert result.exit_code == 0, result.output
    assert Image.open(vis).format == "JPEG"
    assert result.output.index("visualisation written to") < result.output.index('{"findings"')


def test_save_vis_failure_prints_the_json_result_first_then_one_error_line(files, fake_agent, monkeypatch):
    import lookcloser.imaging.draw

    class Unsaveable:
        def save(self, path):
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(lookcloser.imaging.draw, "draw_findings", lambda image, findings: Unsaveable())
    vis = files / "vis.png"
    result = runner.invoke(app, ["ask", str(files / "a.png"), "q?", "--json", "--save-vis", str(vis),
                                 "--trace-dir", str(files / "t")])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["answer"] == "a blue car"
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: could not write the visualisation to {vis}: [Errno 28] No space left on device"]
    assert result.output.index('{"answer"') < result.output.index("error:")


def test_unwritable_directories_are_refused_before_any_work(files, monkeypatch):
    """Permission checks through os.access (as root every directory looks writable, so it is faked)."""
    import lookcloser.entrypoints.cli.params as params

    monkeypatch.setattr(params, "_writable", lambda path: False)
    result = runner.invoke(app, ["ask", str(files / "a.png"), "q", "--trace-dir", str(files)])
    assert result.exit_code == 2
    assert f"--trace-dir {files} cannot hold traces: directory {files} is not writable (permission denied)" in result.stderr
    result = runner.invoke(app, ["find", str(files / "a.png"), "x", "--save-vis", str(files / "new" / "v.png")])
    assert result.exit_code == 2
    assert f"cannot be created: {files} is not writable (permission denied)" in result.stderr


def test_ask_timeout_becomes_the_agent_config(files, fake_agent):
    result = runner.invoke(app, ["ask", str(files / "a.png"), "q?", "--json", "--timeout", "2.5",
                                 "--trace-dir", str(files / "t")])
    assert result.exit_code == 0, result.output
    assert fake_agent.made[0].kwargs["config"].timeout == 2.5


def test_ask_on_a_terminal_shows_the_search_as_it_runs(tmp_path):
    """On a terminal, `ask` shows a live line from the search's progress events, then the answer as the endpoint
    streams it (quiet when piped: the other CLI tests read stderr from a pipe and see none of it)."""
    import os
    import pty
    import select
    import subprocess
    import sys
    import time

    from PIL import Image, ImageDraw, ImageFont

    from openai_stub import StubServer, prompt_text

    sign = tmp_path / "sign.png"
    image = Image.new("RGB", (480, 160), "white")
    ImageDraw.Draw(image).text((20, 40), "GATE 42", fill="black", font=ImageFont.load_default(size=64))
    image.save(sign)

    def script(request):
        if "Additional visual information" not in prompt_text(request):
            return json.dumps({"answer": None, "missing": [{"name": "the sign", "kind": "text"}]})
        time.sleep(2.0)  # TELL waits: the line shows what the search found meanwhile
        return "It says GATE 42 in red"

    executable = Path(sys.executable).parent / "lookcloser"
    with StubServer() as stub:
        stub.script = script
        stub.chunk_delay = 0.4  # a word every 0.4 s: the line shows the answer as it grows
        parent, child = pty.openpty()
        process = subprocess.Popen([str(executable), "ask", str(sign), "What does the sign say?", "--vlm", stub.spec,
                                    "--trace-dir", str(tmp_path / "traces")], stdout=subprocess.PIPE, stderr=child,
                                   env={**os.environ, "COLUMNS": "200"})
        os.close(child)
        shown = b""
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            if select.select([parent], [], [], 0.2)[0]:
                try:
                    shown += os.read(parent, 65536)
                except OSError:  # the terminal's other end closed
                    time.sleep(0.1)
        stdout = process.communicate(timeout=60)[0].decode()
        os.close(parent)
    screen = shown.decode(errors="replace")
    assert process.returncode == 0 and "GATE 42" in stdout
    assert "'the sign': found" in screen, screen[-2000:]
    assert re.search(r"answering: It says(?! GATE 42 in red)", screen), screen[-2000:]  # part of it, then more
    assert "It says GATE 42 in red" in stdout
