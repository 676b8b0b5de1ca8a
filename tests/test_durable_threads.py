"""Durable threads: a run killed with SIGKILL mid-question loses nothing that was checkpointed. The graph
runs in a child process on a real PostgreSQL server (started by the test) or on SQLite; the child is
killed while TELL waits for the VLM; a fresh process reads the thread (SHOW's targets, the search's
findings, TELL next) and resumes it: TELL runs, SHOW and the search are not repeated."""

from __future__ import annotations

import base64
import glob
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from lookcloser.graphs import build_graph
from lookcloser.runtime.context import Context
from openai_stub import StubServer, prompt_text

HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _postgres_binary(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL server of its own in a temporary folder, on a free local port (as the postgres user when root)."""
    initdb, server = _postgres_binary("initdb"), _postgres_binary("postgres")
    if initdb is None or server is None:
        pytest.skip("PostgreSQL server is not installed (make system-deps installs Debian's postgresql when root)")
    pytest.importorskip("langgraph.checkpoint.postgres", reason="pip install langgraph-checkpoint-postgres")
    # not under pytest's own temporary folder: it is private to this user, and the server runs as postgres
    root = Path(tempfile.mkdtemp(prefix="lookcloser-postgres-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    as_owner: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_owner, initdb, "-D", str(data), "-A", "trust", "-U", "lookcloser", "--no-sync"],
                   check=True, capture_output=True)
    port = _free_port()
    log = (root / "server.log").open("w")
    process = subprocess.Popen([*as_owner, server, "-D", str(data), "-p", str(port), "-k", str(sockets),
                                "-h", "127.0.0.1", "-c", "fsync=off"], stdout=log, stderr=subprocess.STDOUT)
    uri = f"postgresql://lookcloser@127.0.0.1:{port}/postgres"
    import psycopg

    deadline = time.monotonic() + 60
    while True:
        try:
            psycopg.connect(uri).close()
            break
        except psycopg.OperationalError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not start: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.3)
    yield uri
    process.terminate()
    process.wait(timeout=30)
    log.close()
    shutil.rmtree(root, ignore_errors=True)


def _sign() -> str:
    image = Image.new("RGB", (480, 160), "white")
    ImageDraw.Draw(image).text((20, 40), "GATE 42", fill="black", font=ImageFont.load_default(size=64))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _kill_during_tell_then_resume(backend: str, uri: str, open_saver) -> None:
    tell_asked, hang = [], {"on": True}

    def script(request):
        prompt = prompt_text(request)
        if "Additional visual information" not in prompt:
            return json.dumps({"answer": None, "missing": [{"name": "the sign", "kind": "text"}]})
        tell_asked.append(prompt)
        while hang["on"]:  # the first TELL never answers: the child is killed while it waits
            time.sleep(0.1)
        return "It says GATE 42." if "GATE 42" in prompt else "I cannot read it."

    thread_id = f"{backend}-thread"
    with StubServer() as stub:
        stub.script = script
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
        child = subprocess.Popen([sys.executable, str(HERE / "durable_child.py"), backend, uri, thread_id, stub.spec,
                                  _sign()], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while not tell_asked:
            assert child.poll() is None, child.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the child never reached TELL"
            time.sleep(0.1)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        hang["on"] = False
        assert child.returncode == -signal.SIGKILL
        asked_before = len(stub.requests)

        with open_saver() as saver:  # a fresh connection in this process: what survived the kill
            graph = build_graph(checkpointer=saver)
            config = {"configurable": {"thread_id": thread_id}}
            state = graph.get_state(config)
            assert state.next == ("tell",)
            assert [t["name"] for t in state.values["targets"]] == ["the sign"]
            [finding] = state.values["findings"]
            assert finding["status"] == "found" and "GATE" in finding["text"]
            out = graph.invoke(None, config, context=Context(vlm=stub.spec, tools={"localizer": "whole_image"}))
            assert out["answer"] == "It says GATE 42."
            assert len(stub.requests) - asked_before == 1  # TELL only: SHOW and the search were not repeated
            assert graph.get_state(config).next == ()


def test_postgres_thread_survives_kill_9_and_resumes(postgres):
    from contextlib import contextmanager

    from langgraph.checkpoint.postgres import PostgresSaver

    @contextmanager
    def open_saver():
        with PostgresSaver.from_conn_string(postgres) as saver:
            yield saver

    _kill_during_tell_then_resume("postgres", postgres, open_saver)


def test_sqlite_thread_survives_kill_9_and_resumes(tmp_path):
    import sqlite3
    from contextlib import contextmanager

    from langgraph.checkpoint.sqlite import SqliteSaver

    path = tmp_path / "threads.sqlite"

    @contextmanager
    def open_saver():
        connection = sqlite3.connect(path, check_same_thread=False)
        try:
            yield SqliteSaver(connection)
        finally:
            connection.close()

    _kill_during_tell_then_resume("sqlite", str(path), open_saver)
