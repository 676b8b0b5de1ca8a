"""The process that runs PaddleOCR for `PaddleOCRTool` (`python -m lookcloser.tools.paddleocr_worker`).

PaddleOCR runs in its own process because it leaks memory across calls and its Paddle runtime
clashes with torch in one process. Protocol on the worker's stdin / stdout: messages are a 4-byte
big-endian length and a pickle. The parent sends {"factory": "module:function", "options": {...}}
first; the worker answers ("ready", info) or ("error", one line) and exits. Then each request
("read", H x W x 3 uint8 RGB array) is answered ("ok", lines, rss_mb) with lines as
(x1, y1, x2, y2, text, score), or ("fail", one line). Anything the engine prints goes to stderr
(fd 1 is pointed at stderr, so stray prints cannot corrupt the protocol).
"""

from __future__ import annotations

import importlib
import os
import pickle
import struct
import sys
from typing import Any, BinaryIO, Callable

__all__ = ["make_paddleocr", "read_message", "write_message"]


def write_message(stream: BinaryIO, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack(">I", len(data)) + data)
    stream.flush()


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise EOFError("the other side closed the pipe")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_message(stream: BinaryIO) -> Any:
    (size,) = struct.unpack(">I", _read_exact(stream, 4))
    return pickle.loads(_read_exact(stream, size))


def rss_mb() -> float:
    """This process's resident memory (MB), from /proc (0 where there is none)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0
    except (ImportError, OSError):
        return 0.0


def one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0].strip() if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def make_paddleocr(lang: str = "en", **options: Any) -> Callable[[Any], list[tuple]]:
    """The default engine: PaddleOCR 3.x's pipeline with the document-preprocessing models off
    (photos, not scanned pages). Options go to `paddleocr.PaddleOCR` (e.g. text_detection_model_dir,
    text_recognition_model_dir for local models, device). Returns read(rgb array) -> lines."""
    os.environ.setdefault("PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK", "True")  # no network probe at import
    from paddleocr import PaddleOCR

    settings = {"use_doc_orientation_classify": False, "use_doc_unwarping": False,
                "use_textline_orientation": False, **options}
    engine = PaddleOCR(lang=lang, **settings)

    def read(rgb: Any) -> list[tuple]:
        bgr = rgb[:, :, ::-1].copy()
        lines = []
        for result in engine.predict(bgr) or []:
            texts, scores, polys = result["rec_texts"], result["rec_scores"], result["rec_polys"]
            for text, score, poly in zip(texts, scores, polys):
                xs = [float(p[0]) for p in poly]
                ys = [float(p[1]) for p in poly]
                lines.append((min(xs), min(ys), max(xs), max(ys), str(text), float(score)))
        return lines

    return read


def _factory(spec: str) -> Callable[..., Any]:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def main() -> None:
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints (PaddleX logs) go to stderr, never into the protocol
    sys.stdout = sys.stderr
    protocol_in = sys.stdin.buffer
    try:
        init = read_message(protocol_in)
    except EOFError:
        return
    try:
        engine = _factory(init["factory"])(**init.get("options", {}))
    except BaseException as exc:  # noqa: BLE001 - every load failure goes back as one line
        write_message(protocol_out, ("error", one_line(exc)))
        return
    write_message(protocol_out, ("ready", {"pid": os.getpid(), "rss_mb": rss_mb()}))
    while True:
        try:
            kind, payload = read_message(protocol_in)
        except EOFError:
            return
        if kind != "read":
            write_message(protocol_out, ("fail", f"unknown request {kind!r}"))
            continue
        try:
            lines = engine(payload)
        except Exception as exc:  # noqa: BLE001 - a failed read is reported, the worker lives on
            write_message(protocol_out, ("fail", one_line(exc)))
            continue
        write_message(protocol_out, ("ok", lines, rss_mb()))


if __name__ == "__main__":
    main()
