"""`lookcloser serve`, the production server (stock langgraph-api on langgraph-runtime-pg: PostgreSQL + Redis),
driven through the LangGraph SDK as a client would: answers, chat, streaming, the operator's limits, a server
killed mid-run and restarted, two server processes on one database. PostgreSQL and Redis are the Debian
packages, started by the test (`make system-deps` installs them); the VLM is the scripted OpenAI stub."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.openai_stub import StubServer, prompt_text
from tests.served_photos import big_sign_data_url, fetch, sign_data_url, history_bytes
from tests.langgraph_dev import start_lookcloser_serve

langgraph_sdk = pytest.importorskip("langgraph_sdk")
pytest.importorskip("langhost", reason="`make install` installs langhost and langgraph-runtime-pg (--no-deps)")

from lookcloser.entrypoints.production import LocalServices, free_port, server_env  # noqa: E402

START = 120  # seconds a server gets to answer


def _required(name: str) -> None:
    from lookcloser.entrypoints.production import _binary  # noqa: PLC0415

    if _binary(name) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed: `make system-deps` installs it")
        pytest.skip(f"{name} is not installed (make system-deps)")


def _services():
    """PostgreSQL and Redis of their own (the way `lookcloser serve` starts them)."""
    _required("postgres")
    _required("redis-server")
    root = Path(tempfile.mkdtemp(prefix="lookcloser-serve-"))
    root.chmod(0o755)  # the postgres user must reach its folder
    local = LocalServices(root)
    try:
        local.start_postgres()
        local.start_redis()
        yield local
    finally:
        local.stop()
        shutil.rmtree(root, ignore_errors=True)


#: One database for the module's server; the kill and two-server tests get their own, so that no other server's
#: workers take their runs from the shared queue.
services = pytest.fixture(scope="module")(_services)
own_services = pytest.fixture(scope="function")(_services)


class Sign(StubServer):
    """SHOW asks for the sign's text, TELL answers what the search read. TELL can be held (`hold`) until
    `release` is set: the run is then mid-way when the test kills the server."""

    def __init__(self):
        super().__init__()
        self.hold = threading.Event()
        self.release = threading.Event()
        self.tells = 0
        self.script = self._answer

    def _answer(self, request):
        prompt = prompt_text(request)
        if "Turn " in prompt and "Additional visual information" not in prompt:  # a chat's follow-up: SHOW answers
            return json.dumps({"answer": "Still GATE 42.", "missing": []})
        if "Additional visual information" not in prompt:
            return json.dumps({"answer": None, "missing": [{"name": "the sign", "kind": "text"}]})
        self.tells += 1
        if self.hold.is_set():
            self.release.wait(START)
        return "It says GATE 42." if "GATE 42" in prompt else "I cannot read it."


@pytest.fixture(scope="module")
def vlm():
    with Sign() as stub:
        yield stub


class Server:
    """One `lookcloser serve` process on the shared database; `kill()` is kill -9 of it and its workers."""

    def __init__(self, services: LocalServices, vlm: Sign, data_dir: Path, workers: int = 1):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir / f"serve-{self.port}.out"
        config = data_dir / "operator.toml"  # the operator's setup: the whole-image localizer; clients may pick vstar
        config.write_text('[tools]\nlocalizer = "whole_image"\n\n[serve.tools]\nlocalizer = ["vstar"]\n')
        env = {**os.environ, "LOOKCLOSER_VLM": vlm.spec, "LOOKCLOSER_CONFIG": str(config),
               "DATABASE_URI": services.database_uri,
               "REDIS_URI": services.redis_uri, "LANGGRAPH_NO_VERSION_CHECK": "true", "LANGSMITH_TRACING": "false",
               "LG_BG_JOB_HEARTBEAT": "2"}  # a dead worker's run is taken up after ~2 heartbeats, not minutes
        self.data_dir = data_dir / str(self.port)
        self.process = start_lookcloser_serve(self.port, env, self.data_dir, self.log, workers=workers, seconds=START)
        self.client = langgraph_sdk.get_sync_client(url=self.url)

    def server_log(self) -> str:
        return (self.data_dir / "server.log").read_text(errors="replace")

    def succeeded(self) -> list[str]:
        """The run ids this server's workers finished ("Background run succeeded" lines of its log)."""
        import re  # noqa: PLC0415

        lines = [line for line in self.server_log().splitlines() if "Background run succeeded" in line]
        return [m.group(1) for line in lines if (m := re.search(r"run_id\x1b\[0m=\x1b\[35m([0-9a-f-]{36})", line))]

    def kill(self) -> None:
        """kill -9 of the server (langhost and its workers: one process group) and of the command, no clean-up."""
        os.killpg(int((self.data_dir / "server.pid").read_text()), signal.SIGKILL)
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)


@pytest.fixture(scope="module")
def server(services, vlm, tmp_path_factory):
    running = Server(services, vlm, tmp_path_factory.mktemp("serve"))
    yield running
    running.stop()


QUESTION = {"image": sign_data_url(), "question": "What does the sign say?"}
CONTEXT = None  # the operator's setup


def test_a_question_and_a_chat_thread_are_answered(server):
    client = server.client
    thread = client.threads.create()
    out = client.runs.wait(thread["thread_id"], "lookcloser", input=QUESTION, context=CONTEXT)
    assert out["answer"] == "It says GATE 42." and "GATE" in out["findings"][0]["text"]
    chat = client.threads.create()
    message = {"role": "user", "content": [{"type": "text", "text": "What does the sign say?"},
                                           {"type": "image_url", "image_url": {"url": QUESTION["image"]}}]}
    client.runs.wait(chat["thread_id"], "lookcloser", input={"messages": [message]}, context=CONTEXT)
    messages = client.threads.get_state(chat["thread_id"])["values"]["messages"]
    assert [m["type"] for m in messages] == ["human", "ai"] and messages[-1]["content"] == "It says GATE 42."


def test_the_server_runs_with_two_malloc_arenas_unless_the_operator_says_otherwise(server):
    """glibc's default arenas let the server's RSS grow with every distinct photo (docs/serving.md); the server's
    processes (langhost and its workers, one process group) run with MALLOC_ARENA_MAX=2, and an operator's own
    setting is kept."""
    group = int((server.data_dir / "server.pid").read_text())
    members = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _process_group(p) == group]
    assert members, "the server's process group is gone"
    for process in members:
        assert b"MALLOC_ARENA_MAX=2" in (process / "environ").read_bytes().split(b"\0"), process
    assert server_env({"MALLOC_ARENA_MAX": "4"}, "postgresql://x")["MALLOC_ARENA_MAX"] == "4"


def _process_group(proc: Path) -> int | None:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[2])
    except (OSError, IndexError, ValueError):
        return None


def test_progress_events_and_tokens_stream(server):
    client = server.client
    thread = client.threads.create()
    chunks = list(client.runs.stream(thread["thread_id"], "lookcloser", input=QUESTION,
                                     stream_mode=["custom", "messages-tuple"], context={"tools": {"localizer": "vstar"}}))
    events = [c.data for c in chunks if c.event == "custom"]
    assert any(e["event"] == "search_step" for e in events) and any(e["event"] == "finding" for e in events)
    pieces = [message["content"] for message, metadata in (c.data for c in chunks if c.event == "messages")
              if metadata.get("langgraph_node") == "tell"]
    assert len(pieces) > 1 and "".join(pieces) == "It says GATE 42."


def test_a_clients_forbidden_settings_are_refused(server, vlm):
    before = len(vlm.requests)
    thread = server.client.threads.create()
    with pytest.raises(Exception, match="names a VLM this server's operator does not allow"):
        server.client.runs.wait(thread["thread_id"], "lookcloser", input=QUESTION,
                                context={"vlm": "openai:evil@http://127.0.0.1:9/v1"})
    assert len(vlm.requests) == before


def test_a_misspelt_context_key_is_refused_not_dropped(server, vlm):
    before = len(vlm.requests)
    thread = server.client.threads.create()
    with pytest.raises(Exception) as refused:
        server.client.runs.wait(thread["thread_id"], "lookcloser", input=QUESTION, context={"tool": {"ocr": None}})
    assert refused.value.response.status_code == 422
    assert "unknown context key 'tool'; did you mean 'tools'?" in refused.value.response.json()["detail"]
    assert len(vlm.requests) == before


def test_thread_history_carries_the_photo_by_url_not_inline(server):
    """The photo is kept once, in the database, and the history a client reads refers to it by URL: one question and
    a 10-turn chat each read back under 2x the photo (one question was ~4x: every checkpoint carried the data URL);
    the answer is read from the stored photo; its URL answers with the same bytes."""
    client = server.client
    url, jpeg = big_sign_data_url()
    thread = client.threads.create()
    out = client.runs.wait(thread["thread_id"], "lookcloser", input={"image": url, "question": "What does the sign say?"})
    assert out["answer"] == "It says GATE 42."
    size = history_bytes(client, thread["thread_id"])
    print(f"history of one question: {size / 1e3:.0f} KB for a {len(url) / 1e3:.0f} KB data URL")
    assert size < 2 * len(url)
    stored = client.threads.get_state(thread["thread_id"])["values"]["image"]
    body, headers = fetch(stored)
    assert stored.startswith(server.url + "/lookcloser/images/") and body == jpeg
    assert headers["content-type"] == "image/jpeg"
    chat = client.threads.create()
    client.runs.wait(chat["thread_id"], "lookcloser", input={"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What does the sign say?"}, {"type": "image", "mimeType": "image/jpeg",
                                                              "data": url.split(",", 1)[1]}]}]})
    for turn in range(2, 11):
        client.runs.wait(chat["thread_id"], "lookcloser", input={"messages": [
            {"role": "user", "content": f"Turn {turn}: and now?"}]})
    messages = client.threads.get_state(chat["thread_id"])["values"]["messages"]
    assert len(messages) == 20 and messages[1]["content"] == "It says GATE 42." and messages[-1]["content"] == \
        "Still GATE 42."
    assert fetch(messages[0]["content"][1]["url"])[0] == jpeg  # Agent Chat UI's block, by URL now
    size = history_bytes(client, chat["thread_id"])
    print(f"history of a 10-turn chat: {size / 1e3:.0f} KB for a {len(url) / 1e3:.0f} KB data URL")
    assert size < 2 * len(url)


def test_a_forged_image_reference_is_refused_in_one_line(server, vlm):
    before = len(vlm.requests)
    thread = server.client.threads.create()
    forged = f"{server.url}/lookcloser/images/{'f' * 32}"
    with pytest.raises(Exception, match=r"image reference http://\S+/lookcloser/images/f{32} names no image in this "
                                         r"server's image store \(PostgreSQL at 127\.0\.0\.1:\d+/postgres, table "
                                         r"lookcloser_images\): send the photo as a data URL"):
        server.client.runs.wait(thread["thread_id"], "lookcloser", input={"image": forged, "question": "What?"})
    assert len(vlm.requests) == before
    import urllib.error  # noqa: PLC0415

    with pytest.raises(urllib.error.HTTPError) as missing:
        fetch(forged)
    assert missing.value.code == 404 and missing.value.read() == f"no image {'f' * 32} in this server's image store\n".encode()


def test_a_server_killed_mid_run_comes_back_to_the_same_thread(own_services, vlm, tmp_path):
    """kill -9 while TELL waits on the VLM; a new server on the same database finds the thread and the run, and
    the queue runs it again: the thread ends with one answer."""
    services = own_services
    first = Server(services, vlm, tmp_path)
    client = first.client
    thread = client.threads.create()
    vlm.hold.set()
    vlm.release.clear()
    tells = vlm.tells
    run = client.runs.create(thread["thread_id"], "lookcloser", input={"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What does the sign say?"}, {"type": "image_url", "image_url": {"url": QUESTION["image"]}}]}]},
        context=CONTEXT)
    deadline = time.monotonic() + START
    while vlm.tells == tells and time.monotonic() < deadline:
        time.sleep(0.2)
    assert vlm.tells > tells, "the run never reached TELL"
    first.kill()
    vlm.hold.clear()
    vlm.release.set()
    asked = len(vlm.requests)
    second = Server(services, vlm, tmp_path)
    try:
        deadline = time.monotonic() + START
        while time.monotonic() < deadline:
            status = second.client.runs.get(thread["thread_id"], run["run_id"])["status"]
            if status in ("success", "error", "timeout", "interrupted"):
                break
            time.sleep(0.5)
        assert status == "success", status
        messages = second.client.threads.get_state(thread["thread_id"])["values"]["messages"]
        assert [m["type"] for m in messages] == ["human", "ai"]  # answered once, not twice
        assert messages[-1]["content"] == "It says GATE 42."
        again = [prompt_text(r) for r in vlm.requests[asked:]]
        shows = sum("Additional visual information" not in p for p in again)
        print(f"after the restart: {len(again)} VLM calls, {shows} of them SHOW")
        assert shows == 0 and len(again) == 1  # resumed from the last checkpoint: only the unfinished TELL again
        # the photo was kept in the database the servers share, not in the first server: the second one serves it
        stored = messages[0]["content"][1]["image_url"]["url"]
        assert stored.startswith(first.url + "/lookcloser/images/")
        assert fetch(second.url + stored[len(first.url):])[0] == base64.b64decode(QUESTION["image"].split(",", 1)[1])
    finally:
        second.stop()


def test_two_server_processes_share_the_queue_and_run_each_run_once(own_services, vlm, tmp_path):
    servers = [Server(own_services, vlm, tmp_path), Server(own_services, vlm, tmp_path)]
    try:
        before = len(vlm.requests)
        client = servers[0].client
        runs = []
        for i in range(6):
            thread = servers[i % 2].client.threads.create()
            runs.append((thread["thread_id"], servers[i % 2].client.runs.create(
                thread["thread_id"], "lookcloser", input=QUESTION, context=CONTEXT)["run_id"]))
        for thread_id, run_id in runs:
            client.runs.join(thread_id, run_id)
        assert all(client.runs.get(t, r)["status"] == "success" for t, r in runs)
        assert len(vlm.requests) - before == 2 * len(runs)  # SHOW + TELL per run: none ran twice
        done = [s.succeeded() for s in servers]  # the runs each process's worker finished, from its own log
        assert sorted(done[0] + done[1]) == sorted(run_id for _, run_id in runs)  # each run once, by one of them
        assert done[0] and done[1], done  # both processes worked
    finally:
        for running in servers:
            running.stop()


def test_bad_setups_stop_at_start_in_one_line(services, tmp_path):
    from typer.testing import CliRunner  # noqa: PLC0415

    from lookcloser.entrypoints.cli import app  # noqa: PLC0415

    runner = CliRunner()
    busy = free_port()
    import socket  # noqa: PLC0415

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", busy))
        holder.listen()
        taken = runner.invoke(app, ["serve", "--port", str(busy), "--data-dir", str(tmp_path / "a")])
    assert taken.exit_code == 2 and f"cannot listen on 127.0.0.1:{busy}" in taken.output
    env = {"DATABASE_URI": "postgresql://nobody@127.0.0.1:1/none", "REDIS_URI": services.redis_uri}
    down = runner.invoke(app, ["serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "b")], env=env)
    assert down.exit_code == 2 and "PostgreSQL at DATABASE_URI=postgresql://nobody@127.0.0.1:1/none does not answer" \
        in down.output
    env = {"DATABASE_URI": services.database_uri, "REDIS_URI": "redis://127.0.0.1:1"}
    no_redis = runner.invoke(app, ["serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "c")], env=env)
    assert no_redis.exit_code == 2 and "Redis at REDIS_URI=redis://127.0.0.1:1 does not answer" in no_redis.output
    bad = tmp_path / "bad.toml"
    bad.write_text("[config]\nmax_targets = 0\n")
    env = {"LOOKCLOSER_CONFIG": str(bad), "DATABASE_URI": services.database_uri, "REDIS_URI": services.redis_uri}
    wrong = runner.invoke(app, ["serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "d")], env=env)
    assert wrong.exit_code == 2 and "max_targets" in wrong.output and "\n" not in wrong.output.strip()
    env = {"LOOKCLOSER_IMAGE_CACHE_MB": "lots", "DATABASE_URI": services.database_uri, "REDIS_URI": services.redis_uri}
    cache = runner.invoke(app, ["serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "e")], env=env)
    assert cache.exit_code == 2 and "LOOKCLOSER_IMAGE_CACHE_MB must be a number of megabytes, got 'lots'" in \
        cache.output and "\n" not in cache.output.strip()
    env = {"LOOKCLOSER_PUBLIC_URL": "vision.example.com", "DATABASE_URI": services.database_uri,
           "REDIS_URI": services.redis_uri}
    public = runner.invoke(app, ["serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "f")], env=env)
    assert public.exit_code == 2 and "LOOKCLOSER_PUBLIC_URL must be the server's http(s) address" in public.output
