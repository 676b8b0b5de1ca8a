"""`langgraph dev` serving langgraph.json's graph on a free local port, and `lookcloser serve` (the production
server), for the tests that drive them as a client would (the SDK, Agent Chat UI in a browser)."""

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


def start_lookcloser_serve(port: int, env: dict[str, str], data_dir: Path, log_path: Path, workers: int = 1,
                           seconds: float = 120) -> subprocess.Popen:
    """Start `lookcloser serve` on `port` with `env` as its whole environment (its own PostgreSQL and Redis under
    `data_dir` unless `env` names DATABASE_URI / REDIS_URI) and wait until it says it serves; a RuntimeError with the
    end of `log_path` if it exits or time runs out. It runs in a process group of its own."""
    process = subprocess.Popen([sys.executable, "-m", "lookcloser.entrypoints.cli", "serve", "--port", str(port),
                                "--data-dir", str(data_dir), "--workers", str(workers)],
                               env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + seconds
    while "serving on" not in log_path.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"lookcloser serve did not start: {log_path.read_text(errors='replace')[-1500:]}")
        time.sleep(0.3)
    return process
