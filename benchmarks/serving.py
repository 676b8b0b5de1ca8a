"""Serving overhead on a 12-Mpx photo: the same question through `langgraph dev` (LangGraph SDK, one run at
a time) and in-process (`graph.invoke` on the same graph and context), side by side; what one question
leaves in the thread's checkpoint history; the server's memory after many questions on distinct photos.

Workload: the served graph (langgraph.json) with the operator's VLM a scripted OpenAI-compatible stub
in this process (tests/openai_stub.py). `--workload show` (default): SHOW answers at once, so the run is
reading the input, decoding the photo, one VLM request with the photo, and (served) the HTTP, checkpoint
and stream plumbing around it. `--workload search`: SHOW names a text target, the default V* search
reads the photo, TELL answers (a question as users ask them). The photo is examples/vending_machine.jpg upscaled to 4032x3024 with mild
sensor-like noise, JPEG quality 92 (a smooth upscale would compress unrealistically well); each
`--distinct` photo has its own noise.

    .venv/bin/python benchmarks/serving.py --runs 10 --distinct 50

Prints one table: ms/run served and in-process (mean, median), their ratio, checkpoint history bytes
per question, and the server's RSS before and after the distinct photos.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="questions per mode, interleaved (default 10)")
    parser.add_argument("--distinct", type=int, default=50, help="questions on distinct photos for RSS (default 50)")
    parser.add_argument("--concurrent", type=int, default=20, help="runs sent at once on one photo (default 20)")
    parser.add_argument("--workload", choices=("show", "search"), default="show",
                        help="show: SHOW answers at once (plumbing only, the default); search: SHOW names a text target "
                             "and the default V* search reads the photo before TELL")
    parser.add_argument("--size", type=int, nargs=2, default=(4032, 3024), metavar=("W", "H"),
                        help="photo size (default 4032 3024)")
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

        process, url = start_server(env, Path(scratch))
        client = get_sync_client(url=url)
        try:
            photo = photo_data_url(0, tuple(args.size))
            question = {"image": photo, "question": QUESTION}

            def served() -> str:
                thread = client.threads.create()
                client.runs.wait(thread["thread_id"], "lookcloser", input=question)
                return thread["thread_id"]

            def in_process() -> None:
                graph.invoke(question, context=operator.context)

            served(), in_process()  # warm both (imports, first decode)
            times: dict[str, list[float]] = {"served": [], "in-process": []}
            for _ in range(args.runs):
                for mode, call in (("served", served), ("in-process", in_process)):
                    started = time.perf_counter()
                    call()
                    times[mode].append(time.perf_counter() - started)
            concurrent_s, answered = 0.0, 0
            if args.concurrent:
                from concurrent.futures import ThreadPoolExecutor

                def one(_: int) -> bool:
                    thread = get_sync_client(url=url).threads.create()
                    out = get_sync_client(url=url).runs.wait(thread["thread_id"], "lookcloser", input=question)
                    return out.get("answer") == "EXIT"

                started = time.perf_counter()
                with ThreadPoolExecutor(max_workers=args.concurrent) as pool:
                    answered = sum(pool.map(one, range(args.concurrent)))
                concurrent_s = time.perf_counter() - started
            thread_id = served()
            history = client.threads.get_history(thread_id, limit=100)
            history_bytes = len(json.dumps(history))
            rss_before = _tree_rss_mb(process.pid)
            started = time.perf_counter()
            for seed in range(1, args.distinct + 1):
                thread = client.threads.create()
                client.runs.wait(thread["thread_id"], "lookcloser", input={"image": photo_data_url(seed, tuple(args.size)),
                                                                         "question": QUESTION})
            distinct_s = time.perf_counter() - started
            rss_after = _tree_rss_mb(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)

    served_ms = [t * 1000 for t in times["served"]]
    local_ms = [t * 1000 for t in times["in-process"]]
    print(f"{args.size[0]}x{args.size[1]} photo ({len(photo) / 1e6:.1f} MB as a data URL), workload {args.workload}, "
          f"{args.runs} runs per mode, interleaved\n")
    print("| mode | mean ms | median ms | vs in-process |")
    print("|---|---|---|---|")
    for name, values in (("in-process graph.invoke", local_ms), ("served (SDK, langgraph dev)", served_ms)):
        ratio = statistics.median(values) / statistics.median(local_ms)
        print(f"| {name} | {statistics.mean(values):.0f} | {statistics.median(values):.0f} | {ratio:.2f}x |")
    if args.concurrent:
        print(f"\n{args.concurrent} runs at once: {answered}/{args.concurrent} answered in {concurrent_s:.1f} s")
    print(f"checkpoint history of one question as the API returns it (images put back): {history_bytes / 1e3:.0f} KB "
          f"({len(history)} checkpoints); what the checkpointer stores: tests/test_checkpoints.py")
    print(f"server RSS: {rss_before:.0f} MB before, {rss_after:.0f} MB after {args.distinct} more questions on "
          f"distinct photos ({distinct_s / max(args.distinct, 1):.2f} s each)")


if __name__ == "__main__":
    main()
