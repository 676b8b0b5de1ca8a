"""Exactly one llm run per VLM call with every backend (an OpenAI-compatible endpoint, a local transformers
model, a LangChain chat model), in the local trace and in what LangSmith receives (a local stub of its API);
each run sits under the graph node that made the call, never under another llm run."""

from __future__ import annotations

from pathlib import Path

import langsmith
import pytest
from langchain_core.messages import AIMessage
from langchain_core.tracers.context import tracing_v2_enabled
from langchain_core.tracers.langchain import wait_for_all_tracers

from doubles import FixedLocalizer, RecordingChatModel
from lookcloser import Agent, AgentConfig
from lookcloser.tracing import load_trace, validate_trace
from lookcloser.vlm.transformers_vlm import TransformersVLM
from openai_stub import StubServer, prompt_text
from tracing_helpers import QUESTION, SIGN_BOX, LangSmithStub, missing, scene


@pytest.fixture()
def stub():
    server = LangSmithStub()
    yield server
    server.close()


def _traced_run(stub: LangSmithStub, root: Path, vlm, **kwargs):
    """One Agent question with the local trace and LangSmith tracing (to the stub) both on."""
    client = langsmith.Client(api_url=stub.url, api_key="dummy", auto_batch_tracing=False)
    agent = Agent(vlm=vlm, tools={"localizer": FixedLocalizer({"sign": SIGN_BOX})}, trace_dir=root,
                  config=kwargs.pop("config", None))
    with tracing_v2_enabled(project_name="vlm-runs", client=client):
        answer = agent.run(scene(), QUESTION, **kwargs)
    wait_for_all_tracers()
    local = load_trace(answer.trace_dir)
    validate_trace(local)
    sent = {i: r for i, r in stub.received_runs().items() if r.get("trace_id") == answer.trace_id}
    return answer, local, sent


def _llm_runs(answer, local, sent) -> list[dict]:
    """The llm runs, after checking the file and LangSmith hold the same ones, each under a graph node."""
    by_id = {r["id"]: r for r in local}
    llm = [r for r in local if r["run_type"] == "llm"]
    assert {r["id"] for r in llm} == {i for i, r in sent.items() if r["run_type"] == "llm"}
    for run in llm:
        parent = by_id[run["parent_run_id"]]
        assert parent["run_type"] == "chain" and parent["name"] in ("show", "tell")
        assert sent[run["id"]]["parent_run_id"] == parent["id"]
    return llm


def test_openai_compatible_backend(stub, tmp_path):
    with StubServer() as server:
        server.script = lambda request: "OPEN" if "Additional visual information" in prompt_text(request) else missing("sign")
        answer, local, sent = _traced_run(stub, tmp_path, server.spec)
        requests = len(server.requests)
    llm = _llm_runs(answer, local, sent)
    assert answer.text == "OPEN"
    assert len(llm) == requests == answer.stats.vlm_calls == 2
    assert [r["extra"]["metadata"]["usage_metadata"]["input_tokens"] for r in llm] == [42, 42]  # the stub's counts


def test_transformers_backend(stub, tmp_path, tiny_qwen_path, monkeypatch):
    encoded = []  # one processor pass per generate / score_options call of the model
    encode = TransformersVLM._encode
    monkeypatch.setattr(TransformersVLM, "_encode", lambda self, *a, **k: encoded.append(1) or encode(self, *a, **k))
    vlm = TransformersVLM(str(tiny_qwen_path), device="cpu", dtype="float32")
    answer, local, sent = _traced_run(stub, tmp_path, vlm, options=["red", "blue"],
                                      config=AgentConfig(choice="likelihood", max_new_tokens=8))
    llm = _llm_runs(answer, local, sent)
    assert len(llm) == len(encoded) == answer.stats.vlm_calls >= 2
    assert {"vlm.generate", "vlm.score_options"} <= {r["name"] for r in llm}  # likelihood calls are llm runs too
    scored = next(r for r in llm if r["name"] == "vlm.score_options")
    assert len(scored["outputs"]["generations"][0][0]["generation_info"]["scores"]) == 2


def test_langchain_chat_model_backend(stub, tmp_path):
    model = RecordingChatModel(messages=iter([AIMessage(missing("sign")), AIMessage("OPEN")]), received=[])
    answer, local, sent = _traced_run(stub, tmp_path, model)
    llm = _llm_runs(answer, local, sent)
    assert answer.text == "OPEN"
    assert len(llm) == len(model.received) == answer.stats.vlm_calls == 2
    assert all(r["name"] == "vlm.generate" for r in llm)
    assert ["nostream" in r["tags"] for r in llm] == [True, False]  # SHOW's JSON stays out of LangGraph's messages
    # stream; TELL's reply is the answer
    # the model got data URLs: LangSmith keeps them inline, the local trace writes each picture once as a file
    tell = llm[-1]
    blocks = [b["image_url"]["url"] for b in tell["inputs"]["messages"][0][0]["kwargs"]["content"] if b["type"] == "image_url"]
    assert len(blocks) == 2 and all((Path(answer.trace_dir) / path).is_file() for path in blocks)
    assert blocks[0] in [b["image_url"]["url"] for b in llm[0]["inputs"]["messages"][0][0]["kwargs"]["content"]
                         if b["type"] == "image_url"]  # SHOW's image is TELL's first: one file
    sent_blocks = sent[tell["id"]]["inputs"]["messages"][0][0]["kwargs"]["content"]
    assert all(b["image_url"]["url"].startswith("data:image/jpeg;base64,") for b in sent_blocks if b["type"] == "image_url")
