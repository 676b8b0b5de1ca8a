"""The PaddleOCR reader's worker subprocess: reuse, recycling after N calls or a memory limit, one
clear error when loading fails; and, when PaddleOCR is installed, its real offline load failure.

The worker machinery is tested with a stand-in engine (this module's `fake_engine`, imported by the
worker through PYTHONPATH), since PaddleOCR itself is an optional extra (`[paddle]`).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from PIL import Image

from lookcloser.core.errors import ModelLoadError
from lookcloser.tools.paddleocr import PaddleOCRTool

HERE = Path(__file__).resolve().parent
PADDLE = importlib.util.find_spec("paddleocr") is not None

_BALLAST: list[bytes] = []


def fake_engine(mode: str = "ok", grow_mb: int = 0, **_: object):
    """Stand-in engine built in the worker: reads one line per image (its size), optionally growing
    by `grow_mb` MB per call (a leak); mode "broken" fails like a model download offline."""
    if mode == "broken":
        raise ConnectionError("Failed to download model files from https://paddle-model-ecology.bj.bcebos.com\n"
                              "second line of a long traceback-ish message")

    def read(rgb):
        if rgb.shape[0] == 13:
            raise ValueError("cannot read a 13-px-tall image")
        if grow_mb:
            _BALLAST.append(os.urandom(grow_mb * 1024 * 1024))
        h, w = rgb.shape[:2]
        return [(2.0, 3.0, w - 2.0, h - 3.0, f"{w}x{h} pid{os.getpid()}", 0.9),
                (0.0, 0.0, 1.0, 1.0, "low", 0.1)]

    return read


def tool(**options) -> PaddleOCRTool:
    env = {"PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    return PaddleOCRTool(factory="test_paddleocr:fake_engine", env=env, **options)


def test_the_worker_is_reused_and_recycled_after_max_calls():
    ocr = tool(max_calls=3)
    try:
        pids = set()
        for i in range(5):
            [line] = ocr.read(Image.new("RGB", (40 + i, 20), "white"))  # the 0.1 line is below min_score
            text, pid = line.text.split(" pid")
            assert text == f"{40 + i}x20" and line.box.x1 == 2 and line.box.y2 == 17 and line.score == 0.9
            pids.add(int(pid))
        assert pid != str(os.getpid())  # read in another process
        assert ocr.worker_starts == 2 and len(pids) == 2 and ocr.calls == 5  # 3 reads, recycled, 2 more
    finally:
        ocr.close()
    assert ocr.worker_pid is None


def test_the_worker_is_recycled_above_its_memory_limit():
    ocr = tool(grow_mb=40, max_rss_mb=0)  # any worker is over 0 MB: recycled after every read
    try:
        first = ocr.read(Image.new("RGB", (30, 20)))[0].text
        assert ocr.last_rss_mb > 40 and ocr.worker_pid is None
        second = ocr.read(Image.new("RGB", (30, 20)))[0].text
        assert first.split(" pid")[1] != second.split(" pid")[1] and ocr.worker_starts == 2
    finally:
        ocr.close()


def test_a_failed_read_is_reported_and_the_worker_lives_on():
    ocr = tool()
    try:
        with pytest.raises(RuntimeError, match="PaddleOCR failed to read the image: ValueError: cannot read"):
            ocr.read(Image.new("RGB", (30, 13)))
        assert ocr.read(Image.new("RGB", (30, 20))) and ocr.worker_starts == 1
    finally:
        ocr.close()


def test_a_load_failure_is_one_clear_error_raised_again_without_a_new_worker():
    ocr = tool(mode="broken")
    with pytest.raises(ModelLoadError) as first:
        ocr.read(Image.new("RGB", (30, 20)))
    message = str(first.value)
    assert "PaddleOCR could not load its models: ConnectionError: Failed to download" in message
    assert "text_detection_model_dir" in message and "\n" not in message
    with pytest.raises(ModelLoadError):
        ocr.read(Image.new("RGB", (30, 20)))
    assert ocr.worker_starts == 1 and ocr.worker_pid is None


def test_a_worker_that_cannot_start_is_a_clear_error():
    ocr = PaddleOCRTool(factory="no_such_module_here:engine", env={})
    with pytest.raises(ModelLoadError, match="ModuleNotFoundError: No module named 'no_such_module_here'"):
        ocr.read(Image.new("RGB", (30, 20)))


@pytest.mark.skipif(PADDLE, reason="paddleocr is installed here")
def test_without_paddleocr_the_registry_names_the_extra():
    from lookcloser.tools import registry

    with pytest.raises(ModelLoadError, match=r"pip install 'lookcloser\[paddle\]'"):
        registry.create("ocr", "paddleocr")


@pytest.mark.skipif(not PADDLE, reason="paddleocr is not installed (optional extra [paddle] plus paddlepaddle)")
def test_real_paddleocr_offline_download_failure_is_one_clear_error(tmp_path):
    """No network and an empty model cache: the real PaddleOCR fails inside the worker, and the
    parent raises one ModelLoadError saying how to point it at local models."""
    ocr = PaddleOCRTool(env={"HOME": str(tmp_path), "PADDLE_PDX_CACHE_HOME": str(tmp_path / "paddlex"),
                             "HF_HUB_OFFLINE": "1", "NO_PROXY": "", "HTTPS_PROXY": "http://127.0.0.1:9",
                             "HTTP_PROXY": "http://127.0.0.1:9"}, start_timeout=300)
    with pytest.raises(ModelLoadError) as error:
        ocr.read(Image.new("RGB", (64, 32), "white"))
    message = str(error.value)
    assert message.startswith("PaddleOCR could not load its models:") and "\n" not in message
    assert "text_recognition_model_dir" in message and ocr.worker_starts == 1
