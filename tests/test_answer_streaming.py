"""TELL's answer, token by token, through the real graph: LangGraph's `messages` stream mode gets the pieces as an
OpenAI-compatible endpoint (the scripted stub, answering `stream: true` with server-sent events), a backend with a
`stream` method or a LangChain chat model writes them; SHOW's JSON, likelihood calls and backends that cannot
stream stay one call each, as before."""

from __future__ import annotations

import json
import random

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from PIL import Image

from doubles import FixedLocalizer, RecordingChatModel, ScriptedScoringVLM, StreamingScoringVLM
from lookcloser import Agent, AgentConfig
from lookcloser.core.config import cap_pieces, cap_text
from lookcloser.graphs import build_graph
from lookcloser.imaging.refs import to_ref
from lookcloser.runtime.context import Context
from lookcloser.tracing import load_trace, validate_trace
from lookcloser.vlm.chat import ChatVLM
from lookcloser.core.vlm_protocol import ChatMessage
from openai_stub import StubServer, prompt_text
from tracing_helpers import QUESTION, SIGN_BOX, missing, scene

pytest.importorskip("openai")

ANSWER = "The sign says OPEN until 9 pm."


def _tell(request: dict) -> str:
    return ANSWER if "Additional visual information" in prompt_text(request) else missing("sign")


def _run(vlm, inputs: dict, **config):
    """One graph run with the `messages` and `values` stream modes: (the messages with their metadata, final state)."""
    context = Context(vlm=vlm, tools={"localizer": FixedLocalizer({"sign": SIGN_BOX})}, config=config)
    messages, final = [], {}
    for mode, chunk in build_graph().stream(inputs, context=context, stream_mode=["messages", "values"]):
        if mode == "messages":
            messages.append(chunk)
        else:
            final = chunk
    return messages, final


def _question():
    return {"image": to_ref(scene()), "question": QUESTION}


def test_the_answer_of_an_openai_compatible_endpoint_streams_token_by_token():
    with StubServer() as stub:
        stub.script = _tell
        messages, final = _run(stub.spec, _question())
        streamed = [r.get("stream") for r in stub.requests]
    chunks = [(m, meta) for m, meta in messages if isinstance(m, AIMessageChunk)]
    assert final["answer"] == ANSWER
    assert len([m for m, _ in chunks if m.content]) == len(ANSWER.split()) > 1  # a chunk per word the stub sent
    assert "".join(m.content for m, _ in chunks) == ANSWER
    assert {meta["langgraph_node"] for _, meta in chunks} == {"tell"} and len({m.id for m, _ in chunks}) == 1
    assert sum((m.usage_metadata or {}).get("input_tokens", 0) for m, _ in chunks) == 42  # the stub's count
    assert len(messages) == len(chunks)  # SHOW's JSON never reaches the stream
    assert streamed == [None, True]  # SHOW is one plain request; only TELL's is streamed


@pytest.mark.filterwarnings("ignore::langchain_core._api.beta_decorator.LangChainBetaWarning")
def test_langgraphs_v3_event_protocol_gets_the_answer_as_text_deltas():
    """The content-block protocol (`stream_events(version="v3")`, what a protocol-v2 server run uses) drives the
    same streaming, where a reply's content is a list of blocks."""
    with StubServer() as stub:
        stub.script = _tell
        context = Context(vlm=stub.spec, tools={"localizer": FixedLocalizer({"sign": SIGN_BOX})})
        events = [e["params"] for e in build_graph().stream_events(_question(), context=context, version="v3")]
        streamed = [r.get("stream") for r in stub.requests]
    deltas = [(data["delta"]["text"], meta["langgraph_node"]) for data, meta in
              (e["data"] for e in events if e.get("data") and isinstance(e["data"], tuple))
              if isinstance(data, dict) and data.get("event") == "content-block-delta"]
    assert len(deltas) > 1 and {node for _, node in deltas} == {"tell"}
    assert "".join(text for text, _ in deltas) == ANSWER == [e["data"] for e in events if isinstance(e["data"], dict)
                                                              and "answer" in e["data"]][-1]["answer"]
    assert streamed == [None, True]


def test_without_the_messages_stream_nothing_is_streamed():
    with StubServer() as stub:
        stub.script = _tell
        answer = Agent(vlm=stub.spec, tools={"localizer": FixedLocalizer({"sign": SIGN_BOX})}, trace_dir=None).run(
            scene(), QUESTION)
        assert answer.text == ANSWER and [r.get("stream") for r in stub.requests] == [None, None]


def test_a_chat_thread_gets_the_tokens_as_its_one_answer_message():
    """The streamed chunks and the answer message appended to the thread share one id: a client (Agent Chat UI)
    shows one message that grows, then stays; LangGraph does not send the finished message a second time."""
    photo = "data:image/png;base64," + __import__("base64").b64encode(_png(scene())).decode()
    chat = {"messages": [HumanMessage(content=[{"type": "text", "text": QUESTION},
                                               {"type": "image_url", "image_url": {"url": photo}}])]}
    with StubServer() as stub:
        stub.script = _tell
        messages, final = _run(stub.spec, chat)
    chunks = [m for m, meta in messages if meta["langgraph_node"] == "tell"]
    assert "".join(m.content for m in chunks) == ANSWER and all(isinstance(m, AIMessageChunk) for m in chunks)
    answer = final["messages"][-1]
    assert type(answer) is AIMessage and answer.content == ANSWER
    assert {m.id for m in chunks} == {answer.id}


def _png(image: Image.Image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_likelihood_calls_never_stream_and_keep_their_scores():
    """A backend that streams and scores options: TELL streams, score_options stays one call whose scores decide."""
    vlm = StreamingScoringVLM([missing("sign"), "It is open"], scores=[-3.0, -0.5])
    messages, final = _run(vlm, {**_question(), "options": ["closed", "open"]}, choice="likelihood")
    assert vlm.methods == ["generate", "stream", "score_options"]
    assert (final["choice"], final["choice_path"]) == (1, "likelihood")
    assert [m.content for m, _ in messages if m.content] == ["It ", "is ", "open"]
    chat_model = ChatVLM(vlm).chat_model  # asked to stream, a likelihood call answers whole, its scores kept
    [reply] = chat_model.stream([HumanMessage(content="q")], call="score_options", options=["closed", "open"])
    assert reply.response_metadata["scores"] == [-3.0, -0.5]


def test_a_backend_without_stream_answers_in_one_message():
    vlm = ScriptedScoringVLM([missing("sign"), "It is open"], scores=[0.0])
    messages, final = _run(vlm, _question())
    [(message, metadata)] = messages  # TELL's reply, whole; SHOW's JSON stays out
    assert type(message) is AIMessage and message.content == final["answer"] == "It is open"
    assert metadata["langgraph_node"] == "tell"


def test_a_langchain_chat_model_streams_through_langchainvlm():
    model = RecordingChatModel(messages=iter([missing("sign"), ANSWER]))
    messages, final = _run(model, _question())
    chunks = [m for m, meta in messages if meta["langgraph_node"] == "tell"]
    assert final["answer"] == ANSWER and len(chunks) > 3 and "".join(m.content for m in chunks) == ANSWER
    assert len(messages) == len(chunks)


def test_agent_stream_yields_the_tokens_and_one_llm_run_per_call(tmp_path):
    with StubServer() as stub:
        stub.script = _tell
        agent = Agent(vlm=stub.spec, tools={"localizer": FixedLocalizer({"sign": SIGN_BOX})}, trace_dir=tmp_path)
        events = list(agent.stream(scene(), QUESTION))
        requests = len(stub.requests)
    tokens = [e for e in events if "token" in e]
    answer = events[-1]["answer"]
    assert {e["node"] for e in tokens} == {"tell"} and "".join(e["token"] for e in tokens) == answer.text == ANSWER
    nodes = [e["node"] for e in events if "update" in e]
    assert nodes == ["read_input", "show", "search", "tell"]
    assert events.index(tokens[-1]) < events.index(next(e for e in events if e.get("node") == "tell" and "update" in e))
    runs = load_trace(answer.trace_dir)
    validate_trace(runs)
    llm = [r for r in runs if r["run_type"] == "llm"]
    assert len(llm) == requests == answer.stats.vlm_calls == 2
    tell = next(r for r in llm if "Additional visual information" in json.dumps(r["inputs"]))
    assert tell["outputs"]["generations"][0][0]["text"] == ANSWER
    assert tell["extra"]["metadata"]["usage_metadata"]["input_tokens"] == 42


def test_cut_pieces_join_to_the_cut_whole_reply():
    """cap_pieces is cap_text(reply.strip(), limit) for a reply however it is split."""
    rng = random.Random(0)
    for _ in range(3000):
        text = "".join(rng.choice("ab \n") for _ in range(rng.randint(0, 30)))
        cuts = sorted(rng.sample(range(len(text) + 1), rng.randint(0, min(6, len(text) + 1))))
        pieces = [text[i:j] for i, j in zip([0, *cuts], [*cuts, len(text)])]
        limit = rng.choice([None, 0, 3, 6, 7, 10, 20, 40])
        out = list(cap_pieces(iter(pieces), limit))
        assert "".join(out) == (text.strip() if limit is None else cap_text(text.strip(), limit)), (pieces, limit)
        assert all(out)


def test_the_cut_stops_reading():
    read = []

    def pieces():
        for piece in ["0123456789"] * 100:
            read.append(piece)
            yield piece

    assert "".join(cap_pieces(pieces(), 25)) == cap_text("0123456789" * 100, 25) and len(read) == 3
