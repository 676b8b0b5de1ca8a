"""`langgraph dev` serving langgraph.json's graph on a free local port, for the tests that drive it as a client
would (the SDK, Agent Chat UI in a browser)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, log: Path, seconds: float, what: str) -> None:
    """Poll `url` until it answers 200; a RuntimeError with the end of `log` if the process exits or time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start: {log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.5)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def langgraph_dev(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """Start `langgraph dev` from the repository root with `env` added to this process's environment; yield its
    URL; stop it. Threads are kept in memory only: ./.langgraph_api would be shared with any other server started
    from the repository (a developer's, a benchmark's)."""
    cli = shutil.which("langgraph", path=str(Path(sys.executable).parent)) or shutil.which("langgraph")
    if cli is None:
        pytest.skip("langgraph-cli is not installed (pip install 'langgraph-cli[inmem]')")
    port = free_port()
    env = {**os.environ, "LANGSMITH_TRACING": "false", "LANGGRAPH_CLI_NO_ANALYTICS": "1",
           "LANGGRAPH_DISABLE_FILE_PERSISTENCE": "true", **env}
    with log_path.open("w") as log:
        process = subprocess.Popen([cli, "dev", "--port", str(port), "--no-browser", "--no-reload"],
                                   cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(f"{url}/ok", process, log_path, 90, "langgraph dev")
            yield url
        finally:
            stop(process)
