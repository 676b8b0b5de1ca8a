"""OCR role backed by PaddleOCR 3.x (the `[paddle]` extra: `paddleocr` plus a `paddlepaddle` build),
run in a reused worker subprocess (`lookcloser.tools.paddleocr_worker`).

Why a subprocess: PaddleOCR grows in memory over calls and its Paddle runtime clashes with torch in
one process. The worker starts on the first `read`, is reused, and is recycled (stopped; the next
read starts a fresh one) after `max_calls` reads or once its resident memory passes `max_rss_mb`.
If PaddleOCR cannot load (not installed, or its model download fails offline), the first read
raises ONE ModelLoadError naming the fix, and later reads raise it again at once, without
starting another worker.
"""

from __future__ import annotations

import importlib.util
import os
import select
import subprocess
import sys
import tempfile
import threading
from typing import Any

import numpy as np
from PIL import Image

from lookcloser.core.errors import ModelLoadError
from lookcloser.tools.paddleocr_worker import read_message, write_message
from lookcloser.core.types import Box, Detection

__all__ = ["PaddleOCRTool"]

DEFAULT_FACTORY = "lookcloser.tools.paddleocr_worker:make_paddleocr"
OFFLINE_HINT = ("PaddleOCR downloads its models on first use; offline, download them elsewhere and pass "
                "text_detection_model_dir=... and text_recognition_model_dir=... (tool options of 'paddleocr')")


class PaddleOCRTool:
    """Reads all text lines: `read(image) -> list[Detection]` (text, confidence 0-1, box in pixels of
    the image given), with PaddleOCR in a worker process.

    lang: PaddleOCR language ("en", "ch", ...). min_score: lines below this confidence are dropped.
    max_calls / max_rss_mb: recycle the worker after this many reads / above this resident memory.
    timeout: seconds one read may take; start_timeout: seconds to start the worker and load models.
    factory: "module:function" building the engine in the worker (tests use a stand-in);
    env: extra environment variables for the worker. Other options go to `paddleocr.PaddleOCR`.
    """

    def __init__(self, lang: str = "en", min_score: float = 0.5, max_calls: int = 500, max_rss_mb: float = 4096,
                 timeout: float = 120.0, start_timeout: float = 900.0, factory: str = DEFAULT_FACTORY,
                 env: dict[str, str] | None = None, **paddle_options: Any) -> None:
        if max_calls < 1:
            raise ValueError(f"max_calls must be >= 1, got {max_calls}")
        self.name = "paddleocr"
        self.min_score = float(min_score)
        self.max_calls = int(max_calls)
        self.max_rss_mb = float(max_rss_mb)
        self.timeout = float(timeout)
        self.start_timeout = float(start_timeout)
        self.factory = factory
        self.env = dict(env or {})
        self.options = {"lang": lang, **paddle_options} if factory == DEFAULT_FACTORY else dict(paddle_options)
        if factory == DEFAULT_FACTORY and importlib.util.find_spec("paddleocr") is None:
            raise ModelLoadError("PaddleOCR is not installed: pip install 'lookcloser[paddle]' plus a paddlepaddle "
                                 "build (pip install paddlepaddle, or paddlepaddle-gpu)")
        #: counters for tests and benchmarks
        self.worker_starts = 0
        self.calls = 0
        self.last_rss_mb = 0.0
        self._proc: subprocess.Popen | None = None
        self._stderr: Any = None
        self._worker_calls = 0
        self._load_error: ModelLoadError | None = None
        self._lock = threading.Lock()

    def describe(self) -> dict[str, Any]:
        return {"tool": self.name, "backend": "paddleocr (worker subprocess)", "lang": self.options.get("lang"),
                "max_calls": self.max_calls, "max_rss_mb": self.max_rss_mb}

    # ----------------------------------------------------------------- worker
    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0)
            text = self._stderr.read().decode("utf-8", "replace")
            lines = [line.strip() for line in text.splitlines() if line.strip()]
        except (OSError, ValueError):
            return ""
        return lines[-1][:300] if lines else ""

    def _receive(self, timeout: float) -> Any:
        assert self._proc is not None and self._proc.stdout is not None
        ready, _, _ = select.select([self._proc.stdout], [], [], timeout)
        if not ready:
            self._stop()
            raise TimeoutError(f"the PaddleOCR worker did not answer within {timeout:g} s")
        try:
            return read_message(self._proc.stdout)
        except EOFError:
            tail = self._stderr_tail()
            code = self._proc.poll()
            self._stop()
            raise RuntimeError(f"the PaddleOCR worker exited (code {code})" + (f": {tail}" if tail else "")) from None

    def _start(self) -> None:
        self._stderr = tempfile.TemporaryFile()
        env = dict(os.environ, PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK="True", **self.env)
        self._proc = subprocess.Popen([sys.executable, "-m", "lookcloser.tools.paddleocr_worker"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=env)
        self.worker_starts += 1
        self._worker_calls = 0
        write_message(self._proc.stdin, {"factory": self.factory, "options": self.options})
        try:
            reply = self._receive(self.start_timeout)
        except (RuntimeError, TimeoutError) as exc:
            self._load_error = ModelLoadError(f"PaddleOCR could not start: {exc}")
            raise self._load_error from None
        if reply[0] != "ready":
            self._stop()
            reason = str(reply[1]).rstrip(". ")
            self._load_error = ModelLoadError(f"PaddleOCR could not load its models: {reason}. {OFFLINE_HINT}")
            raise self._load_error
        self.last_rss_mb = float(reply[1].get("rss_mb", 0.0))

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def close(self) -> None:
        """Stop the worker (the next read starts a new one)."""
        with self._lock:
            self._stop()

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter exit
        try:
            self._stop()
        except Exception:  # noqa: BLE001
            pass

    @property
    def worker_pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    # ------------------------------------------------------------------- read
    def read(self, image: Image.Image) -> list[Detection]:
        rgb = np.ascontiguousarray(np.asarray(image.convert("RGB")))
        with self._lock:
            if self._load_error is not None:
                raise self._load_error
            if self._proc is None:
                self._start()
            write_message(self._proc.stdin, ("read", rgb))
            reply = self._receive(self.timeout)
            self.calls += 1
            self._worker_calls += 1
            if reply[0] == "ok":
                self.last_rss_mb = float(reply[2])
            if self._worker_calls >= self.max_calls or self.last_rss_mb > self.max_rss_mb:
                self._stop()  # recycled: the next read starts a fresh worker
        if reply[0] != "ok":
            raise RuntimeError(f"PaddleOCR failed to read the image: {reply[1]}")
        lines = []
        for x1, y1, x2, y2, text, score in reply[1]:
            if float(score) >= self.min_score and str(text).strip():
                box = Box(x1=min(x1, x2), y1=min(y1, y2), x2=max(x1, x2), y2=max(y1, y2))
                box = box.clip(image.width, image.height)
                lines.append(Detection(box=box, score=float(score), text=str(text).strip()))
        return lines
