"""make_vlm spec parsing, and that importing the VLM package stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

from lookcloser.vlm import LangChainVLM, OpenAIVLM, TransformersVLM, VLMReply, make_vlm
from lookcloser.vlm.transformers_vlm import DEFAULT_MODEL


def test_default_is_lazy_transformers():
    vlm = make_vlm(None)
    assert isinstance(vlm, TransformersVLM)
    assert vlm.model_id == DEFAULT_MODEL and vlm.model is None
    assert make_vlm("transformers").model_id == DEFAULT_MODEL


def test_transformers_specs():
    assert make_vlm("transformers:/models/qwen").model_id == "/models/qwen"
    vlm = make_vlm("transformers:Qwen/Qwen2.5-VL-7B-Instruct", device="cpu", dtype="float32")
    assert vlm.model_id == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert vlm.describe()["device"] == "cpu" and vlm.describe()["dtype"] == "float32"
    assert vlm.name == "transformers:Qwen/Qwen2.5-VL-7B-Instruct"


def test_openai_specs(monkeypatch):
    vlm = make_vlm("openai:Qwen/Qwen2.5-VL-7B-Instruct@http://gpu-box:8000/v1")
    assert isinstance(vlm, OpenAIVLM)
    assert (vlm.model_id, vlm.base_url) == ("Qwen/Qwen2.5-VL-7B-Instruct", "http://gpu-box:8000/v1")
    ollama = make_vlm("openai:qwen2.5vl:7b@http://localhost:11434/v1")
    assert (ollama.model_id, ollama.base_url) == ("qwen2.5vl:7b", "http://localhost:11434/v1")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env-host:9000/v1")
    assert make_vlm("openai:gpt-4o").base_url == "http://env-host:9000/v1"
    monkeypatch.delenv("OPENAI_BASE_URL")
    assert make_vlm("openai:gpt-4o").base_url == "https://api.openai.com/v1"


def test_instances():
    class Mine:
        name = "mine"

        def generate(self, messages, *, max_new_tokens=256):
            return VLMReply("x")

    mine = Mine()
    assert make_vlm(mine) is mine
    chat = GenericFakeChatModel(messages=iter([]))
    wrapped = make_vlm(chat)
    assert isinstance(wrapped, LangChainVLM) and wrapped.chat_model is chat


@pytest.mark.parametrize(
    "spec",
    ["", "transformers:", "openai:", "openai:m@gpu-box:8000", "llava:foo", "openai:m@ftp://x", 42, object()],
)
def test_bad_specs_name_the_spec_and_forms(spec):
    with pytest.raises(ValueError) as info:
        make_vlm(spec)
    message = str(info.value)
    assert repr(spec) in message
    assert "transformers:MODEL_ID_OR_PATH" in message and "openai:MODEL@" in message


def test_a_spec_table_passes_its_options_to_the_backend():
    # a --config file's [vlm] table: spec plus backend options (box_format for the VLM's own boxes)
    vlm = make_vlm({"spec": "openai:served@http://127.0.0.1:1/v1", "box_format": "qwen3_vl", "timeout": 5})
    assert isinstance(vlm, OpenAIVLM) and vlm.box_format == "qwen3_vl" and vlm.timeout == 5
    with pytest.raises(ValueError, match="needs a 'spec' string"):
        make_vlm({"box_format": "glm"})
    with pytest.raises(ValueError, match=r"does not take one of the options given \(colour\)"):
        make_vlm({"spec": "openai:m@http://127.0.0.1:1/v1", "colour": "red"})


def test_import_does_not_load_heavy_libraries():
    code = (
        "import sys, lookcloser.vlm\n"
        "heavy = [m for m in ('torch', 'transformers', 'openai') if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
