import socket
import time

import pytest

from lookcloser.core import hub


class NeverCached:
    calls = []

    @classmethod
    def from_pretrained(cls, source, **kwargs):
        cls.calls.append(kwargs.get("local_files_only", False))
        if kwargs.get("local_files_only"):
            raise OSError("not in cache")
        return "downloaded"


@pytest.fixture(autouse=True)
def fresh_probe(monkeypatch):
    monkeypatch.setattr(hub, "_probe_result", {})
    NeverCached.calls = []


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_hub_fails_fast_with_the_model_name(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    started = time.perf_counter()
    with pytest.raises(hub.HubUnreachable, match="'org/model' is not in the local Hugging Face cache"):
        hub.from_pretrained(NeverCached, "org/model")
    assert time.perf_counter() - started < 5
    assert NeverCached.calls == [True]  # cache tried, hub never called


def test_offline_env_means_unreachable(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.hub_reachable() is False


def test_reachable_hub_downloads(monkeypatch):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        assert hub.from_pretrained(NeverCached, "org/model") == "downloaded"
        assert NeverCached.calls == [True, False]
    finally:
        server.close()


def test_local_directory_is_loaded_directly(tmp_path):
    class Local:
        @classmethod
        def from_pretrained(cls, source, **kwargs):
            return source, kwargs

    assert hub.from_pretrained(Local, str(tmp_path)) == (str(tmp_path), {})


# --- model source, device and dtype -----------------------------------------------------------------


def test_model_source_local_directory_hub_id_and_bad_paths(tmp_path, monkeypatch):
    from lookcloser.core.errors import ModelLoadError

    assert hub.model_source(tmp_path, "OWLv2", "fix it") == (str(tmp_path), True)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    assert hub.model_source("~/models", "VLM", "fix it") == (str(tmp_path / "models"), True)
    assert hub.model_source("Qwen/Qwen2.5-VL-3B-Instruct", "VLM", "fix it") == ("Qwen/Qwen2.5-VL-3B-Instruct", False)
    assert hub.model_source("gpt2", "VLM", "fix it") == ("gpt2", False)
    with pytest.raises(ModelLoadError, match=r"^VLM model directory not found: /no/such/dir; fix it$"):
        hub.model_source("/no/such/dir", "VLM", "fix it")
    for path_like in ("./rel", "~/nothing-here", "a/b/c", "C:\\models", "..\\up"):
        with pytest.raises(ModelLoadError, match="not found"):
            hub.model_source(path_like, "VLM", "fix it")
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"")
    with pytest.raises(ModelLoadError, match="OWLv2 model path .*model.safetensors is a file"):
        hub.model_source(weights, "OWLv2", "fix it")


def fake_torch(cuda: bool = False, gpus: int = 1, bf16: bool = True, mps: bool = False):
    """The parts of torch the resolvers use, with CUDA/MPS availability chosen by the test."""
    from types import SimpleNamespace

    import torch

    return SimpleNamespace(
        device=torch.device, dtype=torch.dtype, float32=torch.float32, float16=torch.float16,
        bfloat16=torch.bfloat16,
        cuda=SimpleNamespace(is_available=lambda: cuda, device_count=lambda: gpus if cuda else 0,
                             is_bf16_supported=lambda: bf16),
        backends=SimpleNamespace(mps=SimpleNamespace(is_available=lambda: mps)),
    )


def test_resolve_device_auto_and_explicit():
    from lookcloser.core.errors import ModelLoadError

    assert hub.resolve_device("auto", fake_torch(cuda=True)) == "cuda"
    assert hub.resolve_device("auto", fake_torch()) == "cpu"
    assert hub.resolve_device(None, fake_torch()) == "cpu"
    assert hub.resolve_device("auto", fake_torch(mps=True)) == "mps"
    assert hub.resolve_device("auto", fake_torch(mps=True), mps=False) == "cpu"  # an adapter that avoids MPS
    assert hub.resolve_device("cuda:1", fake_torch(cuda=True, gpus=2)) == "cuda:1"
    assert hub.resolve_device("cpu", fake_torch(cuda=True)) == "cpu"
    with pytest.raises(ModelLoadError, match="OWLv2 cue device 'cuda' was asked for but CUDA is not available"):
        hub.resolve_device("cuda", fake_torch(), "OWLv2 cue")
    with pytest.raises(ModelLoadError, match="only 1 CUDA device"):
        hub.resolve_device("cuda:1", fake_torch(cuda=True))
    with pytest.raises(ModelLoadError, match="MPS is not available"):
        hub.resolve_device("mps", fake_torch())
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        hub.resolve_device("gpu", fake_torch())


def test_resolve_dtype_auto_names_and_errors():
    import torch

    cpu, gpu, old_gpu = fake_torch(), fake_torch(cuda=True), fake_torch(cuda=True, bf16=False)
    assert hub.resolve_dtype("auto", "cpu", cpu) is torch.float32
    assert hub.resolve_dtype(None, "cuda", gpu) is torch.bfloat16
    assert hub.resolve_dtype("auto", "cuda:0", old_gpu) is torch.float16  # no bf16 on this GPU
    assert hub.resolve_dtype("auto", "cuda", gpu, cuda_default="float16") is torch.float16
    assert hub.resolve_dtype("auto", "mps", cpu) is torch.float16
    assert hub.resolve_dtype("bf16", "cpu", cpu) is torch.bfloat16
    assert hub.resolve_dtype("Half", "cpu", cpu) is torch.float16
    assert hub.resolve_dtype(torch.float64, "cpu", cpu) is torch.float64  # a torch dtype is used as given
    with pytest.raises(ValueError, match="unknown dtype 'float8' for the VLM"):
        hub.resolve_dtype("float8", "cpu", cpu, "VLM")
    with pytest.raises(ValueError, match="unknown dtype"):
        hub.resolve_dtype(16, "cpu", cpu)
    hub.check_dtype("auto")
    hub.check_dtype("fp16")
    with pytest.raises(ValueError, match="unknown dtype 'int4'"):
        hub.check_dtype("int4")
