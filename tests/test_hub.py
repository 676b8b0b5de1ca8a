import socket
import time

import pytest

from lookcloser import hub


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
