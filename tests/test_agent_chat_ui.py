"""Agent Chat UI (clients/agent-chat-ui: LangChain's Next.js chat front end for LangGraph servers) against
`langgraph dev` and against the production server (`lookcloser serve`: PostgreSQL + Redis), each serving
langgraph.json's graph with the operator's default VLM (a scripted OpenAI-compatible stub), in headless Chromium,
as a user would: connect through the setup form, upload a photo, ask, read the answer; ask a follow-up about the
same photo, read its answer.

Needs node, the system Chromium and the UI's production build (`make chat-ui`), and for the production server
langhost, postgres and redis-server (`make install system-deps`); skipped without them, except under CI=true,
where `make test` installs them and their absence fails the test.
SCREENSHOT=docs/images/agent-chat-ui.png saves the final page there (the picture in docs/clients.md).
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from langgraph_dev import ROOT, free_port, langgraph_dev, start_lookcloser_serve, stop, wait_until_up
from openai_stub import StubServer, prompt_text

pytest.importorskip("langgraph_api")
langgraph_sdk = pytest.importorskip("langgraph_sdk")

UI = ROOT / "clients" / "agent-chat-ui"
DRIVER = ROOT / "tests" / "chat_ui"
PHOTO = ROOT / "examples" / "vending_machine.jpg"  # SEAL demo photo (MIT), 2250 x 1500
NODE = shutil.which("node")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

#: (question, what the scripted VLM answers); the second is a follow-up in the same chat, without a photo
TURNS = [("What colour is the vending machine?", "The vending machine is red."),
         ("What colour is the car in front of the building?", "The car is blue.")]


def _require(present: bool, missing: str) -> None:
    """Skip when a tool this test needs is absent; under CI=true fail instead (make test installs them)."""
    if present:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{missing}: under CI `make test` must install it")
    pytest.skip(missing)


def vlm_script(request: dict) -> str:
    """SHOW answers the question it was asked (no detail is missing), as a VLM that sees the photo would."""
    question = prompt_text(request).split("Question: ", 1)[-1].split("\n", 1)[0].strip()
    answer = dict(TURNS).get(question, f"no scripted answer for {question!r}")
    return json.dumps({"answer": answer, "missing": []})


@pytest.fixture(scope="module")
def vlm():
    with StubServer() as stub:
        stub.script = vlm_script
        yield stub


@contextmanager
def lookcloser_serve(env: dict[str, str]):
    """`lookcloser serve` with PostgreSQL and Redis of its own (their data in a folder the postgres user can enter)."""
    from lookcloser.entrypoints.production import _binary  # noqa: PLC0415

    for name in ("postgres", "redis-server"):
        _require(_binary(name) is not None, f"{name} is not installed (make system-deps)")
    _require(shutil.which("langhost", path=str(Path(sys.executable).parent)) is not None,
             "langhost is not installed (make install)")
    root = Path(tempfile.mkdtemp(prefix="chat-ui-serve-"))
    root.chmod(0o755)
    port = free_port()
    try:
        process = start_lookcloser_serve(port, {**os.environ, **env, "LANGGRAPH_NO_VERSION_CHECK": "true",
                                                "LANGSMITH_TRACING": "false"}, root / "data", root / "serve.out")
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(60)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module", params=["langgraph-dev", "lookcloser-serve"])
def api(request, tmp_path_factory, vlm):
    """The graph served with nothing but the operator's default VLM set (no LOOKCLOSER_CONFIG), by `langgraph dev`
    or by the production server."""
    folder = tmp_path_factory.mktemp("chat_ui_server")
    env = {"LOOKCLOSER_VLM": vlm.spec, "LOOKCLOSER_CONFIG": "", "LOOKCLOSER_BLOB_DIR": str(folder / "blobs")}
    server = langgraph_dev(env, folder / "server.log") if request.param == "langgraph-dev" else lookcloser_serve(env)
    with server as url:
        yield url


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """The UI's production build (`make chat-ui`), served by `next start` on a free local port."""
    _require(NODE is not None, "node is not installed (Debian: apt-get install nodejs npm)")
    _require((UI / ".next" / "BUILD_ID").is_file(), "Agent Chat UI is not built (make chat-ui)")
    port = free_port()
    log = tmp_path_factory.mktemp("chat_ui") / "next.log"
    with log.open("w") as out:
        process = subprocess.Popen([NODE, "node_modules/next/dist/bin/next", "start", "-H", "127.0.0.1", "-p", str(port)],
                                   cwd=UI, stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, "NEXT_TELEMETRY_DISABLED": "1"})
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(url, process, log, 60, "next start")
            yield url
        finally:
            stop(process)


def _chat_in_browser(ui: str, api: str, screenshot: Path, report: Path) -> dict:
    """Run tests/chat_ui/chat.mjs: what the page showed after each turn (its JSON report)."""
    _require(CHROMIUM is not None, "Debian package 'chromium' is not installed (make system-deps)")
    _require((DRIVER / "node_modules" / "playwright-core").is_dir(), "the browser driver is not installed (make chat-ui)")
    settings = {"ui": ui, "api": api, "assistant": "lookcloser", "photo": str(PHOTO), "chromium": CHROMIUM,
                "screenshot": str(screenshot), "report": str(report), "timeout_ms": 120_000,
                "turns": [{"question": q, "answer": a} for q, a in TURNS]}
    done = subprocess.run([NODE, "chat.mjs", json.dumps(settings)], cwd=DRIVER, capture_output=True, text=True,
                          timeout=400)
    shown = json.loads(report.read_text()) if report.is_file() else {}
    assert done.returncode == 0 and "error" not in shown, (
        f"the chat in the browser failed: {str(shown)[:3000]}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return shown


def _images_sent(request: dict) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(part["image_url"]["url"].split(",", 1)[1])))
            for message in request["messages"] if isinstance(message["content"], list)
            for part in message["content"] if part.get("type") == "image_url"]


def _same_picture(sent: Image.Image, photo: Image.Image) -> bool:
    """The VLM may get the photo re-encoded or shrunk: the same picture, not the same bytes."""
    small = (96, 64)
    diff = ImageChops.difference(sent.convert("L").resize(small), photo.convert("L").resize(small))
    same_shape = abs(sent.width / sent.height - photo.width / photo.height) < 0.01
    return same_shape and diff.getextrema()[1] < 40


def test_a_user_uploads_a_photo_asks_and_asks_a_follow_up(ui, api, vlm, tmp_path):
    screenshot = Path(os.environ.get("SCREENSHOT") or tmp_path / "agent-chat-ui.png").resolve()
    report = _chat_in_browser(ui, api, screenshot, tmp_path / "report.json")
    (q1, a1), (q2, a2) = TURNS

    first, second = (turn["transcript"] for turn in report["turns"])
    # the page shows the photo from the server's image route: the server kept it once and put its URL in the thread
    [[photo_url]] = [first[0]["images"]]
    assert photo_url.startswith(f"{api}/lookcloser/images/")
    with urllib.request.urlopen(photo_url, timeout=30) as reply:
        assert reply.read() == PHOTO.read_bytes() and reply.headers["content-type"] == "image/jpeg"
    assert first == [{"role": "human", "text": q1, "images": [photo_url]}, {"role": "ai", "text": a1, "images": []}]
    assert second == first + [{"role": "human", "text": q2, "images": []}, {"role": "ai", "text": a2, "images": []}]
    assert report["turns"][0]["toasts"] == report["turns"][1]["toasts"] == []  # no error notice popped up

    # the VLM saw the uploaded photo in both turns, though the follow-up message carried none
    photo = Image.open(PHOTO)
    asked = {q: [r for r in vlm.requests if f"Question: {q}\n" in prompt_text(r)] for q, _ in TURNS}
    assert all(asked.values()), {q: len(r) for q, r in asked.items()}
    for requests in asked.values():
        for request in requests:
            [sent] = _images_sent(request)
            assert _same_picture(sent, photo)
            assert "an image of 2250 x 1500 pixels" in prompt_text(request)

    # both turns went to one thread on the server (the one in the page's address)
    thread_id = report["url"].split("threadId=", 1)[1].split("&", 1)[0]
    state = langgraph_sdk.get_sync_client(url=api).threads.get_state(thread_id)
    assert [m["type"] for m in state["values"]["messages"]] == ["human", "ai", "human", "ai"]

    shot = Image.open(screenshot)
    assert shot.format == "PNG" and shot.size == (1100, 760)
