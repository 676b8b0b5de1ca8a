"""Shared pieces for the tracing tests: a LangSmith stub server and a demo trace.

`LangSmithStub` is a tiny LangSmith API on 127.0.0.1 (port 0, own thread) that answers /info and
records every ingest request the real `langsmith` client makes; `received_runs()` decodes them
(JSON batch, multipart, zstd-compressed multipart). `build_demo_trace` writes a trace shaped like
an agent run (show -> search with V* steps and a mask -> tell) without needing the agent.
"""

from __future__ import annotations

import email
import email.policy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import zstandard
from PIL import Image, ImageDraw

from lookcloser.tracing import start_trace, trace_run

# A colour that nothing else on the report page uses: the tests look for it in the screenshot.
SCENE_COLOR = (23, 167, 141)
TARGET_BOX = [420, 260, 500, 310]
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




def build_demo_trace(root: Path) -> Path:
    """An agent-shaped trace with an input image, crops, V* steps, a mask and a final answer."""
    scene = Image.new("RGB", (640, 400), SCENE_COLOR)
    draw = ImageDraw.Draw(scene)
    draw.rectangle(TARGET_BOX, fill=(250, 250, 250))
    draw.text((TARGET_BOX[0] + 10, TARGET_BOX[1] + 15), "OPEN", fill=(200, 0, 0))
    with start_trace(root, "lookcloser.run", {"question": "What does the sign say?", "options": None},
                     live=False) as run:
        run.inputs["image"] = image = run.save_image(scene, "input")
        with trace_run("show", "chain", {"question": "What does the sign say?"}) as show:
            with trace_run("vlm.generate", "llm", {"messages": [{"role": "user", "content": [
                    {"type": "image", "path": image}, {"type": "text", "text": "What does the sign say?"}]}]},
                    metadata={"ls_model_name": "scripted"}) as call:
                call.outputs = {"text": '{"missing": [{"name": "sign", "kind": "text"}]}',
                                "usage_metadata": {"input_tokens": 321, "output_tokens": 12, "total_tokens": 333}}
            show.outputs = {"targets": [{"name": "sign"}], "parse_path": "json"}
        with trace_run("search", "chain", {"target": {"name": "sign", "kind": "text"}}) as search:
            boxes = [[0, 0, 640, 400], [320, 200, 640, 400], [400, 240, 520, 330]]
            for level, box in enumerate(boxes):
                with trace_run("vstar.step", "tool", {"box": box, "level": level, "priority": 1.0 - level / 4,
                                                      "phrase": "sign"}) as step:
                    step.outputs = {"peak": 0.2 + 0.3 * level, "detections": [] if level < 2 else [{"box": TARGET_BOX}]}
            with trace_run("tool.segmenter.sam", "tool", {"boxes": [TARGET_BOX]}) as seg:
                mask = np.zeros((TARGET_BOX[3] - TARGET_BOX[1], TARGET_BOX[2] - TARGET_BOX[0]), dtype=bool)
                mask[5:-5, 5:-5] = True
                seg.outputs = {"masks": [seg.save_image(mask, "mask")], "boxes": [TARGET_BOX]}
            search.outputs = {"findings": [{"name": "sign", "status": "found", "box": TARGET_BOX}]}
        with trace_run("tell", "chain") as tell:
            crop = run.save_image(scene.crop((400, 240, 520, 330)), "crop_sign")
            with trace_run("vlm.generate", "llm", {"messages": [{"role": "user", "content": [
                    {"type": "image", "path": image}, {"type": "image", "path": crop},
                    {"type": "text", "text": "Crop 1 shows the sign. What does it say?"}]}]}) as call:
                call.outputs = {"text": ANSWER}
            tell.outputs = {"answer": ANSWER}
        run.outputs = {"answer": ANSWER, "choice": None,
                       "findings": [{"name": "sign", "kind": "text", "status": "found", "box": TARGET_BOX,
                                     "score": 0.91, "text": "OPEN", "tool": "rapidocr", "error": None}],
                       "stats": {"vlm_calls": 2, "tool_calls": 4, "search_steps": 3, "seconds": 0.05}}
    return root / run.id
