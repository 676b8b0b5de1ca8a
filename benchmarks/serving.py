"""Serving overhead on a 12-Mpx photo: the same question in-process (`graph.invoke` on the same graph and context),
through `langgraph dev` and through the production server (`lookcloser serve`: the stock LangGraph server on
PostgreSQL + Redis), with the LangGraph SDK, side by side in one run: per-run latency one at a time, the queue wait
per run, 20 runs at once, what one question leaves in the thread's checkpoint history, and the server's memory after
many questions on distinct photos.

Workload: the served graph (langgraph.json) with the operator's VLM a scripted OpenAI-compatible stub
in this process (tests/openai_stub.py). `--workload show` (default): SHOW answers at once, so the run is
reading the input, decoding the photo, one VLM request with the photo, and (served) the HTTP, checkpoint
and stream plumbing around it. `--workload search`: SHOW names a text target, the default V* search
reads the photo, TELL answers (a question as users ask them). The photo is examples/vending_machine.jpg upscaled to 4032x3024 with mild
sensor-like noise, JPEG quality 92 (a smooth upscale would compress unrealistically well); each
`--distinct` photo has its own noise.

    .venv/bin/python benchmarks/serving.py --runs 10 --distinct 200 [--servers dev,production]

Prints one table: ms/run (mean, median) and the ratio to in-process, the median queue wait (a run's creation to
its first checkpoint), N runs at once, the checkpoint history bytes of one question, and the server processes' RSS
before and after the distinct photos (the production server's: the langgraph-api processes, not PostgreSQL/Redis).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the scripted VLM stub lives with the tests

from openai_stub import StubServer  # noqa: E402

QUESTION = "What does the sign say?"


def photo_data_url(seed: int, size: tuple[int, int] = (4032, 3024)) -> str:
    base = Image.open(REPO / "examples" / "vending_machine.jpg").convert("RGB").resize(size, Image.BICUBIC)
    noise = np.random.default_rng(seed).normal(0, 4, (size[1], size[0], 3))
    pixels = np.clip(np.asarray(base, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=92)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tree_rss_mb(pid: int) -> float:
    """RSS of a process and its children (from /proc), in MB."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except (OSError, StopIteration):
            continue
        todo.extend(int(child) for child in children)
    return total / 1024


def start_server(env: dict[str, str], workdir: Path) -> tuple[subprocess.Popen, str]:
    cli = shutil.which("langgraph", path=str(Path(sys.executable).parent)) or shutil.which("langgraph")
    if cli is None:
        sys.exit("langgraph-cli is not installed (pip install 'lookcloser[dev]')")
    port = _free_port()
    log = (workdir / "server.log").open("w")
    process = subprocess.Popen([cli, "dev", "--port", str(port), "--no-browser", "--no-reload"], cwd=REPO,
                               stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/ok", timeout=2):
                return process, url
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"langgraph dev did not start: {(workdir / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)


def start_production(env: dict[str, str], workdir: Path) -> tuple[subprocess.Popen, str, Path]:
    """`lookcloser serve` with its own PostgreSQL and Redis under `workdir`; (process, url, its data folder)."""
    port = _free_port()
    data = workdir / "production"
    data.mkdir(parents=True, exist_ok=True)
    for folder in (workdir, data):
        folder.chmod(0o755)  # PostgreSQL runs as the postgres user when we are root
    log = (workdir / "production.out").open("w")
    process = subprocess.Popen([sys.executable, "-m", "lookcloser.entrypoints.cli", "serve", "--port", str(port),
                                "--data-dir", str(data)], stdout=log, stderr=subprocess.STDOUT, env=env,
                               start_new_session=True)
    deadline = time.monotonic() + 180
    while "serving on" not in (workdir / "production.out").read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"lookcloser serve did not start: {(workdir / 'production.out').read_text()[-2000:]}")
        time.sleep(0.5)
    return process, f"http://127.0.0.1:{port}", data


def _queue_wait_s(client, thread_id: str) -> float | None:
    """A run's wait in the queue: its creation to the first checkpoint it wrote (both server clocks)."""
    from datetime import datetime  # noqa: PLC0415

    runs = client.runs.list(thread_id)
    history = client.threads.get_history(thread_id, limit=100)
    if not runs or not history:
        return None
    first = min(datetime.fromisoformat(c["created_at"]) for c in history if c.get("created_at"))
    return (first - datetime.fromisoformat(runs[0]["created_at"])).total_seconds()


def measure(client, url: str, question: dict, args, rss: Callable[[], float], times: list[float],
            waits: list[float]) -> dict:
    """Concurrency, history, memory of one server (its one-at-a-time times are taken interleaved in main)."""
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    from langgraph_sdk import get_sync_client  # noqa: PLC0415

    def one(_: int) -> bool:
        thread = get_sync_client(url=url).threads.create()
        out = get_sync_client(url=url).runs.wait(thread["thread_id"], "lookcloser", input=question)
        return out.get("answer") == "EXIT"

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, args.concurrent)) as pool:
        answered = sum(pool.map(one, range(args.concurrent)))
    concurrent_s = time.perf_counter() - started
    thread = client.threads.create()
    client.runs.wait(thread["thread_id"], "lookcloser", input=question)
    history_bytes = len(json.dumps(client.threads.get_history(thread["thread_id"], limit=100)))
    rss_before = rss()
    for seed in range(1, args.distinct + 1):
        thread = client.threads.create()
        client.runs.wait(thread["thread_id"], "lookcloser", input={"image": photo_data_url(seed, tuple(args.size)),
                                                                 "question": QUESTION})
    return {"times": times, "waits": waits, "answered": answered, "concurrent_s": concurrent_s,
            "history_kb": history_bytes / 1e3, "rss_before": rss_before, "rss_after": rss()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="questions per mode, interleaved (default 10)")
    parser.add_argument("--distinct", type=int, default=200, help="questions on distinct photos for RSS (default 200)")
    parser.add_argument("--concurrent", type=int, default=20, help="runs sent at once on one photo (default 20)")
    parser.add_argument("--workload", choices=("show", "search"), default="show",
                        help="show: SHOW answers at once (plumbing only, the default); search: SHOW names a text target "
                             "and the default V* search reads the photo before TELL")
    parser.add_argument("--size", type=int, nargs=2, default=(4032, 3024), metavar=("W", "H"),
                        help="photo size (default 4032 3024)")
    parser.add_argument("--servers", default="dev,production",
                        help="which servers, comma-separated: dev (langgraph dev), production (lookcloser serve)")
    args = parser.parse_args()

    from langgraph_sdk import get_sync_client

    with StubServer() as stub, tempfile.TemporaryDirectory() as scratch:
        if args.workload == "show":
            stub.script = lambda request: json.dumps({"answer": "EXIT", "missing": []})
        else:  # SHOW names the website as missing text; V* reads the photo; TELL answers from what was read
            from openai_stub import prompt_text

            stub.script = lambda request: ("EXIT" if "Additional visual information" in prompt_text(request) else
                                           json.dumps({"answer": None, "missing": [{"name": "the website address",
                                                                                    "kind": "text"}]}))
        env = {**os.environ, "LANGSMITH_TRACING": "false", "LANGGRAPH_CLI_NO_ANALYTICS": "1",
               "LOOKCLOSER_VLM": stub.spec, "LANGGRAPH_DISABLE_FILE_PERSISTENCE": "true",
               "LOOKCLOSER_BLOB_DIR": str(Path(scratch) / "blobs")}
        env.pop("LOOKCLOSER_CONFIG", None)
        os.environ.update({"LOOKCLOSER_VLM": stub.spec})
        os.environ.pop("LOOKCLOSER_CONFIG", None)
        from lookcloser.graphs.served import graph, operator  # the same graph and operator setup, in-process

        servers, results = [], {}
        try:
            if "dev" in args.servers:
                process, url = start_server(env, Path(scratch))
                servers.append(("langgraph dev", process, url, lambda p=process: _tree_rss_mb(p.pid)))
            if "production" in args.servers:
                process, url, data = start_production(env, Path(scratch))
                servers.append(("lookcloser serve (Postgres + Redis)", process, url,
                                lambda d=data: _tree_rss_mb(int((d / "server.pid").read_text()))))
            photo = photo_data_url(0, tuple(args.size))
            question = {"image": photo, "question": QUESTION}
            clients = {name: get_sync_client(url=url) for name, _, url, _ in servers}
            times: dict[str, list[float]] = {"in-process": [], **{name: [] for name, *_ in servers}}
            waits: dict[str, list[float]] = {name: [] for name, *_ in servers}

            def served(name: str) -> None:
                thread = clients[name].threads.create()
                clients[name].runs.wait(thread["thread_id"], "lookcloser", input=question)
                wait = _queue_wait_s(clients[name], thread["thread_id"])
                if wait is not None:
                    waits[name].append(wait)

            calls = [("in-process", lambda: graph.invoke(question, context=operator.context))]
            calls += [(name, lambda n=name: served(n)) for name, *_ in servers]
            for _, call in calls:  # warm each (imports, first decode)
                call()
            for name in waits:
                waits[name].clear()
            for _ in range(args.runs):
                for mode, call in calls:
                    started = time.perf_counter()
                    call()
                    times[mode].append(time.perf_counter() - started)
            for name, _, url, rss in servers:
                results[name] = measure(clients[name], url, question, args, rss, times[name], waits[name])
        finally:
            for _, process, _, _ in servers:
                process.terminate()
                process.wait(timeout=60)

    local_ms = [t * 1000 for t in times["in-process"]]
    print(f"{args.size[0]}x{args.size[1]} photo ({len(photo) / 1e6:.1f} MB as a data URL), workload {args.workload}, "
          f"{args.runs} runs per mode, interleaved; {args.concurrent} at once; RSS after {args.distinct} distinct "
          "photos\n")
    print("| mode | mean ms | median ms | vs in-process | queue wait ms (median) | "
          f"{args.concurrent} at once | history of one question | RSS MB before → after |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| in-process graph.invoke | {statistics.mean(local_ms):.0f} | {statistics.median(local_ms):.0f} | 1.00x "
          "| – | – | – | – |")
    for name, result in results.items():
        ms = [t * 1000 for t in result["times"]]
        wait = f"{statistics.median(result['waits']) * 1000:.0f}" if result["waits"] else "–"
        print(f"| {name} | {statistics.mean(ms):.0f} | {statistics.median(ms):.0f} | "
              f"{statistics.median(ms) / statistics.median(local_ms):.2f}x | {wait} | "
              f"{result['answered']}/{args.concurrent} in {result['concurrent_s']:.1f} s | "
              f"{result['history_kb']:.0f} KB | {result['rss_before']:.0f} → {result['rss_after']:.0f} |")


if __name__ == "__main__":
    main()
