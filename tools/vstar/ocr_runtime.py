"""Which library runs the PP-OCR ONNX models of the text cue: onnxruntime or OpenVINO.

Both run the same float ONNX files from the rapidocr wheel and give the same maps and reads
(measured with PP-OCRv6 small: detector max abs difference 2.4e-5 on an 800x500 photo patch, the
same reads; OpenVINO is held to float32, see `_openvino`).
onnxruntime is the default: it is what the wheel runs, and with its per-shape memory patterns
turned off (a search feeds many input shapes; the cached patterns cost ~130 MB of peak RSS over
six photos for ~5 % time) it stays below tiling OCR's peak memory. OpenVINO (`[ocr-openvino]`
extra, `runtime="openvino"`) runs the detector ~1.65x and the recognizer ~1.45x faster on this
project's 2-core x86 machine but peaks ~2x higher: benchmarks/text_search.py shows both.

A loaded model is a callable: NCHW float32 array in, first output out. Models are cached per
process (path, runtime, threads): every TextCue with the same settings shares them.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable, Literal

import numpy as np

from lookcloser.core.errors import ModelLoadError
from lookcloser.core.hub import shared

__all__ = ["RUNTIMES", "Runtime", "load_model"]

Runtime = Literal["onnxruntime", "openvino"]
RUNTIMES: tuple[str, ...] = ("onnxruntime", "openvino")

Model = Callable[[np.ndarray], np.ndarray]


def check_runtime(runtime: str) -> str:
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    return runtime


def load_model(path: str, runtime: str, threads: int) -> Model:
    """The ONNX model at `path` compiled for the CPU by `runtime`, using `threads` threads: loaded once per
    process for each (file, runtime, threads) through the one model cache (`hub.shared`, kind "onnx")."""
    check_runtime(runtime)
    if not Path(path).exists():
        raise ModelLoadError(f"ONNX model not found at {path}; reinstall rapidocr==3.10.0 (the [ocr] extra)")
    build = (lambda: _openvino(path, threads)) if runtime == "openvino" else (lambda: _onnxruntime(path, threads))
    return shared(("onnx", str(path), runtime, str(threads)), build)


def _onnxruntime(path: str, threads: int) -> Model:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_mem_pattern = False  # one cached memory plan per input shape: a search has many
    session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(batch: np.ndarray) -> np.ndarray:
        return session.run(None, {name: batch})[0]

    return run


def _openvino(path: str, threads: int) -> Model:
    try:
        import openvino
    except ImportError as exc:
        raise ModelLoadError(
            "the text cue's runtime=openvino needs OpenVINO: pip install 'lookcloser[ocr-openvino]' "
            "(or set the text cue option runtime=onnxruntime, the default)"
        ) from exc
    # LATENCY: one request uses all `threads` (THROUGHPUT splits them into streams: slower per call).
    # f32: on CPUs with bf16 units OpenVINO would otherwise run the float model in bf16 (measured with
    # PP-OCRv6 on an avx512_bf16 CPU: a line read "JNTPAHCHY" there and "TPAHCY" on onnxruntime).
    compiled = openvino.Core().compile_model(
        path, "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": int(threads),
                      "INFERENCE_PRECISION_HINT": "f32"})
    output = compiled.output(0)
    local = threading.local()  # an infer request serves one call at a time: one per thread

    def run(batch: np.ndarray) -> np.ndarray:
        request = getattr(local, "request", None)
        if request is None:
            request = local.request = compiled.create_infer_request()
        return request.infer({0: batch})[output]

    return run
