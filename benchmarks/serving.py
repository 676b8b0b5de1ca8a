"""Serving overhead on a 12-Mpx photo: the same question in-process (`graph.invoke` on the same graph and context),
through `langgraph dev` and through the production server (`lookcloser serve`: the stock LangGraph server on
PostgreSQL + Redis), with the LangGraph SDK, side by side in one run: per-run latency one at a time, the queue wait
per run, 20 runs at once, what one question leaves in the thread's checkpoint history, and the server's memory after
many questions on distinct photos.

Workload: the served graph (langgraph.json) with the operator's VLM a scripted OpenAI-compatible stub
in this process (tests/openai_stub.py). Two questions, timed one at a time: SHOW-only (SHOW answers at once, so
the run is reading the input, decoding the photo, one VLM request with the photo, and (served) the HTTP,
checkpoint and stream plumbing around it; `show-ref`: the same with the photo sent once and then named by the URL
the server gave it) and V* text search (SHOW names a text target, the default V* search
reads the photo with OCR, TELL answers: a question as users ask them). A served question's time is what a client
waits for its answer: a thread created and its run waited on (`threads.create`, `runs.wait`; the queue wait is read
after, outside it). The rest uses the SHOW-only question. The photo is examples/vending_machine.jpg upscaled to 4032x3024 with mild
sensor-like noise, JPEG quality 92 (a smooth upscale would compress unrealistically well); each
`--distinct` photo has its own noise (its own window of one noise field).

    .venv/bin/python benchmarks/serving.py --runs 10 --distinct 200 [--servers dev,production] [--workloads show]
        [--image-cache-mb 256] [--vlm-seconds 1.5]

Prints one table: ms/run (median) of each question and its ratio to in-process, the median queue wait (a run's creation to
its first checkpoint), N runs at once, the thread history bytes a client reads (`threads.get_history`) of one question
and of a chat, and the server processes' RSS before and after the distinct photos (and every --rss-every photos) (the production server's: the langgraph-api processes, not PostgreSQL/Redis).
"""

from __future__ import annotations

import argparse
import base64
import functools
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
SEARCH_QUESTION = "What is the website address on the machine?"


NOISE_MARGIN = 64  # px: each seed's noise is its own window of one field (64 x 64 = 4096 distinct photos)


@functools.lru_cache(maxsize=2)
def _photo_parts(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The upscaled photo and one noise field NOISE_MARGIN px larger: drawing 36 M normal samples per photo took
    ~4 s of the benchmark's time, a window of one field ~0.5 s."""
    base = Image.open(REPO / "examples" / "vending_machine.jpg").convert("RGB").resize(size, Image.BICUBIC)
    noise = np.random.default_rng(0).normal(0, 4, (size[1] + NOISE_MARGIN, size[0] + NOISE_MARGIN, 3))
    return np.asarray(base, dtype=np.float32), noise.astype(np.float32)


def photo_data_url(seed: int, size: tuple[int, int] = (4032, 3024)) -> str:
    base, noise = _photo_parts(tuple(size))
    dx, dy = seed % NOISE_MARGIN, (seed // NOISE_MARGIN) % NOISE_MARGIN
    pixels = np.clip(base + noise[dy:dy + size[1], dx:dx + size[0]], 0, 255).astype(np.uint8)
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


def measure(client, url: str, question: dict, args, rss: Callable[[], float], waits: list[float]) -> dict:
    """Concurrency, history (one question, a chat of --chat-turns turns), memory of one server (its one-at-a-time
    times are taken interleaved in main)."""
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
    history_bytes = len(json.dumps(client.threads.get_history(thread["thread_id"], limit=1000)))
    chat = client.threads.create()
    first = {"role": "user", "content": [{"type": "text", "text": QUESTION},
                                         {"type": "image_url", "image_url": {"url": question["image"]}}]}
    client.runs.wait(chat["thread_id"], "lookcloser", input={"messages": [first]})
    for turn in range(2, args.chat_turns + 1):  # follow-ups about the same photo, as a chat UI sends them
        client.runs.wait(chat["thread_id"], "lookcloser",
                         input={"messages": [{"role": "user", "content": f"Turn {turn}: {QUESTION}"}]})
    chat_bytes = len(json.dumps(client.threads.get_history(chat["thread_id"], limit=1000)))
    series = [(0, rss())]
    for seed in range(1, args.distinct + 1):
        thread = client.threads.create()
        client.runs.wait(thread["thread_id"], "lookcloser", input={"image": photo_data_url(seed, tuple(args.size)),
                                                                 "question": QUESTION})
        if seed % args.rss_every == 0 or seed == args.distinct:
            series.append((seed, rss()))
    return {"waits": waits, "answered": answered, "concurrent_s": concurrent_s, "history_kb": history_bytes / 1e3,
            "chat_kb": chat_bytes / 1e3, "rss_before": series[0][1], "rss_after": series[-1][1], "rss": series}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="questions per mode, interleaved (default 10)")
    parser.add_argument("--distinct", type=int, default=200, help="questions on distinct photos for RSS (default 200)")
    parser.add_argument("--concurrent", type=int, default=20, help="runs sent at once on one photo (default 20)")
    parser.add_argument("--workloads", default="show,show-ref,search",
                        help="questions timed one at a time, comma-separated: show (SHOW answers at once: plumbing "
                             "only; the photo sent as a data URL each time), show-ref (the same, the photo sent once "
                             "and then named by the URL the server gave it), search (SHOW names a text target, the "
                             "default V* search reads the photo, TELL)")
    parser.add_argument("--chat-turns", type=int, default=30, help="turns of the chat whose history is read (30)")
    parser.add_argument("--rss-every", type=int, default=10, help="read the servers' RSS every N distinct photos")
    parser.add_argument("--image-cache-mb", type=float, default=None,
                        help="LOOKCLOSER_IMAGE_CACHE_MB for the servers and in-process (decoded photos kept per "
                             "process; default: the environment's, else 1024)")
    parser.add_argument("--vlm-seconds", type=float, default=0.0,
                        help="the stub VLM waits this long per call (a stand-in for a real VLM's time; default 0)")
    parser.add_argument("--size", type=int, nargs=2, default=(4032, 3024), metavar=("W", "H"),
                        help="photo size (default 4032 3024)")
    parser.add_argument("--servers", default="dev,production",
                        help="which servers, comma-separated: dev (langgraph dev), production (lookcloser serve)")
    args = parser.parse_args()

    from langgraph_sdk import get_sync_client

    with StubServer() as stub, tempfile.TemporaryDirectory() as scratch:
        from openai_stub import prompt_text

        def script(request: dict) -> str:
            """SHOW answers the sign question at once; for the website it names missing text, V* reads the
            photo, TELL answers from what was read."""
            prompt = prompt_text(request)
            if args.vlm_seconds:
                time.sleep(args.vlm_seconds)
            if "Additional visual information" in prompt:
                return "EXIT"
            if SEARCH_QUESTION in prompt:
                return json.dumps({"answer": None, "missing": [{"name": "the website address", "kind": "text"}]})
            return json.dumps({"answer": "EXIT", "missing": []})

        stub.script = script
        workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
        if not workloads or set(workloads) - {"show", "show-ref", "search"}:
            sys.exit(f"--workloads takes show, show-ref and/or search, got {args.workloads!r}")
        if args.image_cache_mb is not None:
            os.environ["LOOKCLOSER_IMAGE_CACHE_MB"] = f"{args.image_cache_mb:g}"
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
            questions = {"show": question, "search": {"image": photo, "question": SEARCH_QUESTION}}
            clients = {name: get_sync_client(url=url) for name, _, url, _ in servers}
            urls = {name: url for name, _, url, _ in servers}
            modes = ["in-process", *(name for name, *_ in servers)]
            times: dict[tuple[str, str], list[float]] = {(mode, w): [] for mode in modes for w in workloads}
            waits: dict[str, list[float]] = {name: [] for name, *_ in servers}
            refs: dict[str, str] = {}  # each server's URL for the photo, from a first run that sent it inline

            def served(name: str, asked: dict) -> float:
                """One question as a client asks it (a thread, a run waited on): its seconds. The queue wait is
                read afterwards, outside the time."""
                started = time.perf_counter()
                thread = clients[name].threads.create()
                out = clients[name].runs.wait(thread["thread_id"], "lookcloser", input=asked)
                seconds = time.perf_counter() - started
                if out.get("answer") != "EXIT":
                    sys.exit(f"{name} did not answer: {str(out)[:300]}")
                wait = _queue_wait_s(clients[name], thread["thread_id"])
                if wait is not None:
                    waits[name].append(wait)
                if name not in refs:
                    refs[name] = clients[name].threads.get_state(thread["thread_id"])["values"]["image"]
                    if not refs[name].startswith(f"{urls[name]}/lookcloser/images/"):
                        sys.exit(f"{name} kept no URL for the photo: {refs[name][:80]}")
                return seconds

            def local(asked: dict) -> float:
                started = time.perf_counter()
                out = graph.invoke(asked, context=operator.context)
                seconds = time.perf_counter() - started
                if out.get("answer") != "EXIT":
                    sys.exit("the in-process graph did not answer")
                return seconds

            def by_ref(name: str) -> float:  # the photo named by the URL the server gave it
                return served(name, {"image": refs[name], "question": QUESTION})

            calls = [(("in-process", w), lambda a=questions[w]: local(a)) for w in workloads if w != "show-ref"]
            calls += [((name, w), (lambda n=name: by_ref(n)) if w == "show-ref" else
                       (lambda n=name, a=questions[w]: served(n, a))) for name, *_ in servers for w in workloads]
            if "show-ref" in workloads and "show" not in workloads:
                sys.exit("--workloads show-ref needs show (its first run sends the photo)")
            for _, call in calls:  # warm each (imports, first decode, OCR models)
                call()
            for name in waits:
                waits[name].clear()
            for _ in range(args.runs):
                for key, call in calls:
                    times[key].append(call())
            for name, _, url, rss in servers:
                results[name] = measure(clients[name], url, question, args, rss, waits[name])
        finally:
            for _, process, _, _ in servers:
                process.terminate()
                process.wait(timeout=60)

    label = {"show": "SHOW-only, data URL", "show-ref": "SHOW-only, by URL", "search": "V* text search"}
    median_ms = {key: statistics.median(values) * 1000 for key, values in times.items() if values}
    baseline = {w: median_ms["in-process", "show" if w == "show-ref" else w] for w in workloads}
    cache = os.environ.get("LOOKCLOSER_IMAGE_CACHE_MB") or "1024 (default)"
    print(f"{args.size[0]}x{args.size[1]} photo ({len(photo) / 1e6:.1f} MB as a data URL); stub VLM "
          f"{args.vlm_seconds:g} s per call; {args.runs} runs of each question per mode, interleaved, one at a time "
          f"(by URL: vs in-process with the data URL); {args.concurrent} SHOW-only at once; history: one question, "
          f"a {args.chat_turns}-turn chat; RSS after {args.distinct} distinct photos, LOOKCLOSER_IMAGE_CACHE_MB="
          f"{cache}\n")
    print("| mode | " + " | ".join(f"{label[w]} median ms | vs in-process" for w in workloads) +
          f" | queue wait ms (median) | {args.concurrent} at once | history of one question | history of a "
          f"{args.chat_turns}-turn chat | RSS MB before → after |")
    print("|---|" + "---|---|" * len(workloads) + "---|---|---|---|---|")
    for mode in modes:
        cells = [f"{median_ms[mode, w]:.0f} | {median_ms[mode, w] / baseline[w]:.2f}x" if (mode, w) in median_ms
                 else "– | –" for w in workloads]
        result = results.get(mode)
        if result is None:
            rest = "– | – | – | – | –"
        else:
            wait = f"{statistics.median(result['waits']) * 1000:.0f}" if result["waits"] else "–"
            rest = (f"{wait} | {result['answered']}/{args.concurrent} in {result['concurrent_s']:.1f} s | "
                    f"{result['history_kb']:.0f} KB | {result['chat_kb']:.0f} KB | "
                    f"{result['rss_before']:.0f} → {result['rss_after']:.0f}")
        name = "in-process graph.invoke" if mode == "in-process" else mode
        print(f"| {name} | " + " | ".join(cells) + f" | {rest} |")
    print()
    for mode, result in results.items():
        print(f"{mode}: RSS MB after N distinct photos: " + ", ".join(f"{n}: {mb:.0f}" for n, mb in result["rss"]))


if __name__ == "__main__":
    main()
