"""`lookcloser mcp`, driven as an MCP client drives it: the SDK's own client spawns the real command over
stdio (and one over streamable HTTP), lists the tools with their schemas and calls them. The VLM is the
scripted OpenAI-compatible stub; the search and the OCR (RapidOCR's bundled models) run for real."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from openai_stub import StubServer, prompt_text

mcp = pytest.importorskip("mcp", reason="the MCP SDK is in the mcp extra (pip install -e '.[mcp]')")
anyio = pytest.importorskip("anyio")
from anyio.from_thread import start_blocking_portal  # noqa: E402
from mcp.client.session import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

from lookcloser.core.types import Finding, Target  # noqa: E402

FINDING_KEYS = set(Finding(target=Target(name="x"), status="not_found", tool="t").to_json())
CALL_SECONDS = 90  # a hung server fails the test instead of holding the suite


def _lookcloser() -> list[str]:
    script = Path(sys.executable).parent / "lookcloser"
    return [str(script)] if script.exists() else [sys.executable, "-m", "lookcloser.entrypoints.cli"]


# ------------------------------------------------------------------------------------ the pictures
def _font(size: int):
    return ImageFont.load_default(size=size)


def street_photo() -> Image.Image:
    """A picture with one small sign in it (1200x800): what `ask` must search for."""
    image = Image.new("RGB", (1200, 800), (200, 210, 190))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 530, 1200, 800), fill=(90, 90, 95))  # the road
    draw.rectangle((860, 200, 1120, 280), fill="white", outline="black", width=3)
    draw.text((880, 222), "GATE 42", fill="black", font=_font(34))
    return image


def notice() -> Image.Image:
    """Two lines of text at known places, for read_text and find."""
    image = Image.new("RGB", (900, 500), "white")
    draw = ImageDraw.Draw(image)
    draw.text((40, 40), "GATE 42", fill="black", font=_font(64))
    draw.text((400, 300), "EXIT 7", fill="black", font=_font(48))
    return image


def data_url(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


# -------------------------------------------------------------------------------------- the VLM
class ScriptedVLM(StubServer):
    """SHOW asks for the sign's text (and the exit sign's, when the question says 'both signs'); TELL answers
    with the line the search read. A question with 'WAIT' in it holds its SHOW call until `release` is set
    (a long call the server must not block on)."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()
        self.script = self._answer

    def _answer(self, request: dict) -> str:
        prompt = prompt_text(request)
        if "WAIT" in prompt and "Additional visual information" not in prompt:
            self.release.wait(CALL_SECONDS)
        if "Additional visual information" not in prompt:
            missing = [{"name": "the sign", "kind": "text"}]
            if "both signs" in prompt:
                missing.append({"name": "the exit sign", "kind": "text"})
            return json.dumps({"answer": None, "missing": missing})
        return "The sign says GATE 42." if "GATE 42" in prompt else "I cannot read it."


@pytest.fixture(scope="module")
def vlm():
    with ScriptedVLM() as stub:
        yield stub


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """The folder the operator allows, with a photo, a sign, and ways out of it: a symlink to a file outside,
    one to /dev/zero, and a named pipe."""
    root = tmp_path_factory.mktemp("mcp")
    folder = root / "photos"
    folder.mkdir()
    street_photo().save(folder / "street.png")
    notice().save(folder / "notice.png")
    outside = root / "secret.png"
    notice().save(outside)
    (folder / "escape.png").symlink_to(outside)
    (folder / "zero.png").symlink_to("/dev/zero")
    os.mkfifo(folder / "pipe.png")
    return folder


# ---------------------------------------------------------------------------- the client side
class Connected:
    """An MCP ClientSession open in a background event loop, called from the (synchronous) tests."""

    def __init__(self, portal, session):
        self.portal, self.session = portal, session

    def call(self, name: str, arguments: dict, seconds: float = CALL_SECONDS):
        async def call():
            with anyio.fail_after(seconds):
                return await self.session.call_tool(name, arguments)
        return self.portal.call(call)

    def start(self, name: str, arguments: dict):
        """A call left running; a concurrent.futures.Future of its result."""
        return self.portal.start_task_soon(self.session.call_tool, name, arguments)

    def list_tools(self, seconds: float = CALL_SECONDS):
        async def list_tools():
            with anyio.fail_after(seconds):
                return await self.session.list_tools()
        return self.portal.call(list_tools)


@asynccontextmanager
async def stdio_session(args: list[str], errlog):
    command = _lookcloser()
    params = StdioServerParameters(command=command[0], args=[*command[1:], "mcp", *args],
                                   env={"LANGSMITH_TRACING": "false"})
    async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
        with anyio.fail_after(CALL_SECONDS):
            session.init_result = await session.initialize()  # what the server said of itself
        yield session


@pytest.fixture(scope="module")
def server(vlm, photos, tmp_path_factory):
    """`lookcloser mcp --image-dir PHOTOS --vlm STUB` over stdio, the default tools (V* search, RapidOCR)."""
    errlog = (tmp_path_factory.mktemp("mcp_log") / "server.log").open("w+")
    with start_blocking_portal() as portal:
        with portal.wrap_async_context_manager(
                stdio_session(["--image-dir", str(photos), "--vlm", vlm.spec], errlog)) as session:
            yield Connected(portal, session)
    errlog.close()


def one_error_line(result) -> str:
    assert result.is_error
    [content] = result.content
    assert "\n" not in content.text and "Traceback" not in content.text, content.text
    return content.text


# ------------------------------------------------------------------------------------- the tests
def test_the_three_tools_with_their_input_and_output_schemas(server):
    tools = {tool.name: tool for tool in server.list_tools().tools}
    assert set(tools) == {"ask", "find", "read_text"}
    assert tools["ask"].input_schema["required"] == ["image", "question"]
    assert {"options", "max_targets"} <= set(tools["ask"].input_schema["properties"])
    assert tools["find"].input_schema["properties"]["kind"]["enum"] == ["object", "text"]
    assert tools["read_text"].input_schema["required"] == ["image"]
    ask_out, find_out = tools["ask"].output_schema, tools["find"].output_schema
    assert set(ask_out["properties"]) == {"answer", "choice", "findings"}
    finding = ask_out["$defs"]["FindingJSON"]
    assert set(finding["properties"]) == FINDING_KEYS  # ask --json's finding, key for key
    assert find_out["$defs"]["FindingJSON"] == finding
    assert set(tools["read_text"].output_schema["$defs"]["TextLine"]["properties"]) == {"text", "box", "score"}


def test_ask_searches_the_photo_and_answers_from_what_it_read(server, vlm):
    before = len(vlm.requests)
    result = server.call("ask", {"image": "street.png", "question": "What does the sign say?"})
    assert not result.is_error, result.content
    out = result.structured_content
    assert out["answer"] == "The sign says GATE 42."
    assert out["choice"] is None
    [sign] = [f for f in out["findings"] if f["text"] and "GATE" in f["text"]]
    assert set(sign) == FINDING_KEYS and sign["status"] == "found" and sign["tool"] == "vstar"
    x1, y1, x2, y2 = sign["box"]
    assert 860 < x1 < x2 < 1120 and 200 < y1 < y2 < 280  # on the sign, in the photo's pixels
    assert json.loads(result.content[0].text) == out  # the same JSON as text, for clients that read text only
    assert len(vlm.requests) - before == 2  # SHOW, then TELL with what the search read


def test_ask_with_options_and_a_lower_max_targets(server):
    photo = data_url(notice())
    result = server.call("ask", {"image": photo, "question": "What does the sign say?",
                                 "options": ["GATE 17", "GATE 42"], "max_targets": 1})
    assert not result.is_error, result.content
    assert result.structured_content["choice"] == 1
    names = {}
    for limit in (1, None, 2):  # a call's max_targets applies to that call only
        arguments = {"image": photo, "question": "What do both signs say?"}
        result = server.call("ask", arguments if limit is None else {**arguments, "max_targets": limit})
        names[limit] = {f["name"] for f in result.structured_content["findings"]}
    assert names == {1: {"the sign"}, None: {"the sign", "the exit sign"}, 2: {"the sign", "the exit sign"}}
    refused = server.call("ask", {"image": photo, "question": "What does the sign say?", "max_targets": 9})
    assert "max_targets 9 is over this server's limit of 4" in one_error_line(refused)


def test_read_text_returns_each_line_with_its_box(server):
    result = server.call("read_text", {"image": data_url(notice())})
    assert not result.is_error, result.content
    lines = result.structured_content["lines"]
    assert [line["text"] for line in lines] == ["GATE 42", "EXIT 7"]  # top to bottom
    gate, exit_ = (line["box"] for line in lines)
    assert 25 < gate[0] < 60 and 30 < gate[1] < 60 and 250 < gate[2] < 320  # where they were drawn
    assert 380 < exit_[0] < 420 and 280 < exit_[1] < 320
    assert all(0 < line["score"] <= 1 for line in lines)


def test_find_text_puts_the_quoted_line_first(server):
    result = server.call("find", {"image": "notice.png", "target": '"EXIT 7"', "kind": "text"})
    assert not result.is_error, result.content
    findings = result.structured_content["findings"]
    assert findings[0]["text"] == "EXIT 7" and findings[0]["status"] == "found"
    assert all(set(f) == FINDING_KEYS and f["kind"] == "text" for f in findings)


@pytest.mark.parametrize("image, says", [
    ("/etc/hostname", "is outside the allowed image_dir"),
    ("../secret.png", "is outside the allowed image_dir"),
    ("escape.png", "is outside the allowed image_dir"),  # a symlink out of the folder
    ("zero.png", "is outside the allowed image_dir"),  # a symlink to /dev/zero
    ("pipe.png", "is a named pipe, not a regular file"),  # refused without being opened
    ("missing.png", "image file not found"),
    ("data:image/png;base64,AAAA", "the image bytes are not a readable image"),
    (" ", "the tool argument 'image' must be a non-empty string"),
    ("a\x00b.png", "image path 'a\\x00b.png' contains a NUL byte"),  # was the bare "embedded null byte"
])
def test_bad_images_are_one_line_tool_errors_and_the_server_goes_on(server, image, says):
    refused = server.call("read_text", {"image": image})
    assert says in one_error_line(refused)
    assert not server.call("read_text", {"image": "notice.png"}).is_error  # the next call is answered


def test_a_long_call_does_not_hold_up_the_server(server, vlm):
    """The agent works in a thread: while one ask waits on the VLM, other requests are answered."""
    vlm.release.clear()
    before = len(vlm.requests)
    pending = server.start("ask", {"image": "notice.png", "question": "WAIT: what does the sign say?"})
    try:
        deadline = time.monotonic() + CALL_SECONDS
        while len(vlm.requests) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(vlm.requests) > before, "the ask never reached the VLM"
        # answered at once, not after the ask (which the VLM holds for up to CALL_SECONDS)
        assert {tool.name for tool in server.list_tools(seconds=20).tools} == {"ask", "find", "read_text"}
        assert not server.call("read_text", {"image": "notice.png"}, seconds=20).is_error
        assert not pending.done()  # still waiting on the VLM all along
    finally:
        vlm.release.set()
    assert pending.result(CALL_SECONDS).structured_content["answer"] == "The sign says GATE 42."


def test_without_image_dir_no_file_path_is_read_and_a_model_that_cannot_load_is_a_tool_error(vlm, photos, tmp_path):
    """No --image-dir: base64 only. The object cue's model set to a folder that is not there: `find` is the
    load error in one line, in the operator's words (flags), and reading text (another model) still works."""
    async def scenario():
        with (tmp_path / "server.log").open("w+") as errlog:
            args = ["--vlm", vlm.spec, "--tool", "localizer.model=/nonexistent/owlv2"]
            async with stdio_session(args, errlog) as session:
                with anyio.fail_after(CALL_SECONDS):
                    refused = await session.call_tool("read_text", {"image": str(photos / "notice.png")})
                    unloaded = await session.call_tool("find", {"image": data_url(notice()), "target": "a dog"})
                    served = await session.call_tool("read_text", {"image": data_url(notice())})
        return refused, unloaded, served

    refused, unloaded, served = anyio.run(scenario)
    line = one_error_line(refused)
    assert "looks like a file path" in line and "--image-dir" in line
    line = one_error_line(unloaded)
    assert "OWLv2 model directory not found: /nonexistent/owlv2" in line and "--tool localizer.model=" in line
    assert [line["text"] for line in served.structured_content["lines"]] == ["GATE 42", "EXIT 7"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_streamable_http_transport_with_the_settings_in_a_config_file(vlm, photos, tmp_path):
    """Over HTTP, the operator's settings from --config as `ask` reads them: the VLM, the folder, a limit."""
    port = _free_port()
    settings = tmp_path / "operator.toml"
    settings.write_text(f'vlm = "{vlm.spec}"\n[config]\nimage_dir = "{photos}"\nmax_targets = 2\n')
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen([*_lookcloser(), "mcp", "--port", str(port), "--config", str(settings)],
                               stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "LANGSMITH_TRACING": "false"})
    url = f"http://127.0.0.1:{port}/mcp"

    async def scenario():
        deadline = time.monotonic() + CALL_SECONDS
        while True:  # until the server listens
            try:
                await (await anyio.connect_tcp("127.0.0.1", port)).aclose()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"lookcloser mcp --port did not start: {(tmp_path / 'server.log').read_text()[-3000:]}")
                await anyio.sleep(0.2)
        async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
            with anyio.fail_after(CALL_SECONDS):
                await session.initialize()
                tools = await session.list_tools()
                answer = await session.call_tool("ask", {"image": "notice.png", "question": "What does the sign say?"})
                refused = await session.call_tool("find", {"image": "/etc/passwd", "target": "root", "kind": "text"})
                over = await session.call_tool("ask", {"image": "notice.png", "question": "q?", "max_targets": 3})
        return tools, answer, refused, over

    try:
        tools, answer, refused, over = anyio.run(scenario)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
    assert {tool.name for tool in tools.tools} == {"ask", "find", "read_text"}
    assert answer.structured_content["answer"] == "The sign says GATE 42."
    assert "is outside the allowed image_dir" in one_error_line(refused)
    assert "max_targets 3 is over this server's limit of 2" in one_error_line(over)


# ------------------------------------------------------------------- the command's own checks
def _run(*args, **kwargs):
    return subprocess.run([*_lookcloser(), *map(str, args)], capture_output=True, text=True, timeout=120, **kwargs)


@pytest.mark.parametrize("args, says", [
    (["--image-dir", "/nonexistent-folder"], "--image-dir /nonexistent-folder does not exist"),
    (["--image-dir", "/etc/hostname"], "--image-dir /etc/hostname is not a directory"),
    (["--host", "0.0.0.0"], "--host goes with --port"),
    (["--tool", "localizer=nope"], "nope"),
])
def test_bad_arguments_are_one_line_before_anything_is_served(args, says):
    result = _run("mcp", *args)
    assert result.returncode == 2 and result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and says in line, result.stderr


def test_a_busy_port_is_one_line():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _run("mcp", "--port", port)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: cannot listen on 127.0.0.1:{port}: Address already in use"


def test_without_the_mcp_extra_the_error_says_what_to_install():
    hide = "import sys; sys.modules['mcp'] = None; from lookcloser.entrypoints.cli import main; sys.argv = ['lookcloser', 'mcp']; main()"
    result = subprocess.run([sys.executable, "-c", hide], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: `lookcloser mcp` needs the MCP SDK, which is not installed: "
                                     "pip install 'lookcloser[mcp]'")


@pytest.mark.parametrize("name, arguments, says", [
    ("read_text", {"image": 123}, "read_text: argument 'image': Input should be a valid string (got int 123)"),
    ("ask", {"image": "notice.png", "question": "q?", "options": "ab"},
     "ask: argument 'options': Input should be a valid list (got str 'ab')"),
    ("ask", {"image": "notice.png", "question": "q?", "max_targets": 2.5},
     "ask: argument 'max_targets': Input should be a valid integer, got a number with a fractional part"),
    ("ask", {"image": "notice.png", "question": "q?", "option": ["a", "b"]},
     "ask: unknown argument 'option'; did you mean 'options'?"),
    ("ask", {"image": "notice.png", "question": "q?", "max_target": 1},
     "ask: unknown argument 'max_target'; did you mean 'max_targets'?"),
    ("find", {"image": "notice.png", "target": "x", "kind": "thing"}, "find: argument 'kind': Input should be"),
])
def test_wrong_or_unknown_arguments_are_one_line_naming_the_argument(server, vlm, name, arguments, says):
    before = len(vlm.requests)
    line = one_error_line(server.call(name, arguments))
    assert line.startswith(says), line
    assert "errors.pydantic.dev" not in line
    assert len(vlm.requests) == before  # refused before anything ran


def test_the_tools_say_that_no_other_arguments_exist(server):
    tools = server.list_tools().tools
    assert all(tool.input_schema.get("additionalProperties") is False for tool in tools)


def test_the_server_says_its_version(vlm, photos, tmp_path):
    from lookcloser import __version__  # noqa: PLC0415

    async def scenario():
        with (tmp_path / "server.log").open("w+") as errlog:
            async with stdio_session(["--image-dir", str(photos), "--vlm", vlm.spec], errlog) as session:
                return session.init_result.server_info

    info = anyio.run(scenario)
    assert info.name == "lookcloser" and info.version == __version__


def test_a_call_the_client_cancels_sends_no_more_vlm_calls(server, vlm):
    """The client cancels an ask while SHOW waits on the VLM: once the VLM answers SHOW, no TELL call goes out for
    the abandoned question (the server used to finish it)."""
    vlm.release.clear()
    before = len(vlm.requests)
    pending = server.start("ask", {"image": "notice.png", "question": "WAIT: what does the sign say?"})
    try:
        deadline = time.monotonic() + CALL_SECONDS
        while len(vlm.requests) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(vlm.requests) == before + 1, "the ask never reached the VLM"
        pending.cancel()  # the client's call is cancelled: the session tells the server
        time.sleep(0.5)
    finally:
        vlm.release.set()  # SHOW is answered now; the search and TELL would follow
    time.sleep(8)  # more than the V* text search of notice.png takes here
    later = [prompt_text(r) for r in vlm.requests[before + 1:]]
    assert not any("Additional visual information" in p for p in later), later
    assert not server.call("read_text", {"image": "notice.png"}, seconds=30).is_error  # the server goes on
