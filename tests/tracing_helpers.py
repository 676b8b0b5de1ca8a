"""Shared pieces for the tracing tests: a LangSmith stub server and real agent traces.

`LangSmithStub` is a tiny LangSmith API on 127.0.0.1 (port 0, own thread) that answers /info and
records every ingest request the real `langsmith` client makes; `received_runs()` decodes them
(JSON batch, multipart, zstd-compressed multipart). `agent_trace` runs the real Agent graph with
test doubles (scripted VLM, a localizer that opens V* step runs, a box-filling segmenter) and
returns the trace it wrote.
"""

from __future__ import annotations

import email
import email.policy
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import zstandard
from langchain_core.runnables import RunnableLambda
from PIL import Image, ImageDraw

from doubles import BoxMaskSegmenter, ScriptedVLM
from lookcloser import Agent, Answer
from lookcloser.core.types import SEARCH_STEP, Box, Finding, Target

# A colour that nothing else on the report page uses: the tests look for it in the screenshot.
SCENE_COLOR = (23, 167, 141)
SIGN_BOX = (420, 260, 500, 310)
CUP_BOX = (100, 80, 160, 140)
QUESTION = "What does the sign say?"
ANSWER = "The sign says OPEN"


class LangSmithStub:
    """A tiny LangSmith API: answers /info, records every POST/PATCH, can be told to refuse ingestion."""

    def __init__(self, *, zstd: bool = True, ingest_status: int = 200) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.ingest_status = ingest_status
        stub = self
        info = {
            "version": "0.0-stub",
            "instance_flags": {"zstd_compression_enabled": zstd},
            "batch_ingest_config": {"use_multipart_endpoint": True, "size_limit": 100, "size_limit_bytes": None,
                                    "scale_up_qsize_trigger": 1000, "scale_up_nthreads_limit": 1,
                                    "scale_down_nempty_trigger": 4},
        }

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def _reply(self, status: int, payload: dict) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                stub.requests.append(("GET", self.path, {k.lower(): v for k, v in self.headers.items()}, b""))
                if self.path.rstrip("/").endswith("/info"):
                    self._reply(200, info)
                else:
                    self._reply(404, {"detail": "not in stub"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                stub.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                if stub.ingest_status != 200:
                    self._reply(stub.ingest_status, {"detail": "stub refuses"})
                else:
                    self._reply(200, {})

            do_PATCH = do_POST

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def ingest_requests(self):
        return [r for r in self.requests if r[0] in ("POST", "PATCH") and "/runs" in r[1]]

    def received_runs(self) -> dict[str, dict]:
        """Every run the client sent, post and patch merged per id, decoded from whatever format it used."""
        runs: dict[str, dict] = {}

        def merge(run_id: str, fields: dict) -> None:
            # like the server: a null in a later patch does not erase what the post set
            current = runs.setdefault(run_id, {})
            current.update({k: v for k, v in fields.items() if v is not None or k not in current})

        for method, path, headers, body in self.ingest_requests():
            if headers.get("content-encoding") == "zstd":
                body = zstandard.ZstdDecompressor().decompressobj().decompress(body)
            if path.endswith("/runs/batch"):
                payload = json.loads(body)
                for op in ("post", "patch"):
                    for run in payload.get(op, []):
                        merge(str(run["id"]), run)
            elif path.endswith("/runs/multipart"):
                message = email.message_from_bytes(
                    b"Content-Type: " + headers["content-type"].encode() + b"\r\n\r\n" + body, policy=email.policy.HTTP
                )
                assert message.is_multipart(), "multipart request did not parse"
                for part in message.iter_parts():
                    name = part.get_param("name", header="content-disposition")
                    data = json.loads(part.get_payload(decode=True))
                    pieces = name.split(".")
                    if pieces[0] in ("post", "patch") and len(pieces) == 2:
                        merge(pieces[1], data)
                    elif pieces[0] in ("post", "patch") and len(pieces) == 3:
                        merge(pieces[1], {pieces[2]: data})
            elif method == "POST" and path.endswith("/runs"):
                run = json.loads(body)
                merge(str(run["id"]), run)
            elif method == "PATCH" and "/runs/" in path:
                merge(path.rsplit("/", 1)[1], json.loads(body))
        return runs


def missing(*names: str, kind: str = "object") -> str:
    """A SHOW reply that asks to search for `names`."""
    return json.dumps({"answer": None, "missing": [{"name": n, "kind": kind} for n in names]})


def scene() -> Image.Image:
    """640x400, one flat colour (SCENE_COLOR) with a white sign reading OPEN and a dark cup."""
    image = Image.new("RGB", (640, 400), SCENE_COLOR)
    draw = ImageDraw.Draw(image)
    draw.rectangle(SIGN_BOX, fill=(250, 250, 250))
    draw.text((SIGN_BOX[0] + 10, SIGN_BOX[1] + 15), "OPEN", fill=(200, 0, 0))
    draw.ellipse(CUP_BOX, fill=(90, 20, 20))
    return image


class SteppingLocalizer:
    """A localizer double that searches like V*: one "vstar.step" chain run per visited patch (a runnable
    marked as a search step, as the real search opens them), then a finding carrying the same steps."""

    name = "stepping"

    def __init__(self, boxes: dict[str, tuple[float, float, float, float]]) -> None:
        self.boxes = boxes

    def locate(self, image: Image.Image, target: Target) -> list[Finding]:
        width, height = image.size
        goal = self.boxes.get(target.name)
        patches = [[0, 0, width, height], [width // 2, height // 2, width, height]]
        if goal is not None:
            patches.append([max(goal[0] - 20, 0), max(goal[1] - 20, 0), min(goal[2] + 20, width), min(goal[3] + 20, height)])
        steps = []
        for level, box in enumerate(patches):
            inputs = {"box": box, "level": level, "priority": round(1.0 - level / 4, 6), "phrase": target.name,
                      "cue": "synthetic", "mode": "find"}
            detections = [{"box": list(goal), "score": 0.9, "label": target.name}] if goal and level == 2 else []
            step = {"order": level + 1, "level": level, "box": box, "priority": inputs["priority"],
                    "peak": 0.2 + 0.3 * level, "strong": level == 2, "detections": detections,
                    "context": "not_needed", "leaf": level == 2, "children": 0}
            run_id = uuid.uuid4()
            look = RunnableLambda(lambda _, step=step: {k: step[k] for k in ("peak", "strong", "detections", "context")},
                                  name="vstar.step")
            look.invoke(inputs, {"run_id": run_id, "metadata": {SEARCH_STEP: str(run_id)}})
            steps.append(step)
        record = {"phrase": target.name, "mode": "find", "cue": "synthetic", "found": goal is not None,
                  "stop_reason": "confident" if goal else "exhausted", "steps": steps}
        if goal is None:
            return [Finding(target=target, status="not_found", tool=self.name, search=record)]
        return [Finding(target=target, status="found", box=Box.from_list(goal), score=0.9, tool=self.name, search=record)]


def agent_trace(root: Path, *, tools: dict[str, Any] | None = None, vlm: Any = None,
                image: Image.Image | None = None, question: str = QUESTION,
                options: list[str] | None = None) -> tuple[Answer, Path]:
    """Run the real Agent graph (scripted VLM; by default the stepping localizer that finds the sign
    and a segmenter) with `trace_dir=root`; returns the answer and its trace directory."""
    vlm = vlm or ScriptedVLM([missing("sign", "cup", "dog"), ANSWER])
    tools = tools or {"localizer": SteppingLocalizer({"sign": SIGN_BOX, "cup": CUP_BOX}), "segmenter": BoxMaskSegmenter()}
    answer = Agent(vlm=vlm, tools=tools, trace_dir=root).run(image or scene(), question, options)
    return answer, Path(answer.trace_dir)
