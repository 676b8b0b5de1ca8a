"""Each photo stored once: with `ImageRefSerde`, a thread's checkpoints hold references to a
content-addressed blob store, not the photo at every step; reading them back gives the graph (and any
client) exactly what was sent, in any process that shares the database and the blob store."""

from __future__ import annotations

import base64
import io
import json
import sqlite3

import numpy as np
import pytest
from langgraph.checkpoint.sqlite import SqliteSaver
from PIL import Image

from doubles import FixedLocalizer, ScriptedVLM
from lookcloser.imaging.checkpoints import DirectoryBlobs, ImageRefSerde
from lookcloser.graphs import build_graph
from lookcloser.runtime.context import Context


@pytest.fixture(scope="module")
def photo_url() -> str:
    """A 12-Mpx JPEG (4032x3024, noise so it does not compress away) as a data URL, ~5 MB."""
    pixels = np.random.default_rng(0).integers(90, 160, (3024, 4032, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _context() -> Context:
    vlm = ScriptedVLM([json.dumps({"answer": None, "missing": [{"name": "the sign"}]}), "It says EXIT."])
    return Context(vlm=vlm, tools={"localizer": FixedLocalizer({"the sign": (10, 10, 200, 100)})})


def _stored_bytes(path) -> int:
    with sqlite3.connect(path) as db:
        checkpoints = db.execute("SELECT sum(length(checkpoint) + length(metadata)) FROM checkpoints").fetchone()[0]
        writes = db.execute("SELECT sum(length(value)) FROM writes").fetchone()[0]
    return int(checkpoints or 0) + int(writes or 0)


def _saver(path, blobs) -> SqliteSaver:
    return SqliteSaver(sqlite3.connect(path, check_same_thread=False), serde=ImageRefSerde(DirectoryBlobs(blobs)))


def test_a_question_on_a_12_mpx_photo_stores_the_photo_once(tmp_path, photo_url):
    chat = {"messages": [{"role": "user", "content": [{"type": "text", "text": "What does the sign say?"},
                                                      {"type": "image_url", "image_url": {"url": photo_url}}]}]}
    ask = {"image": photo_url, "question": "What does the sign say?"}
    for name, question in (("ask", ask), ("chat", chat)):
        database = tmp_path / f"{name}.sqlite"
        graph = build_graph(checkpointer=_saver(database, tmp_path / "blobs"))
        out = graph.invoke(question, {"configurable": {"thread_id": name}}, context=_context())
        assert out["answer"] == "It says EXIT."
        assert _stored_bytes(database) < 300_000, f"{name}: {_stored_bytes(database)} bytes"  # the photo: ~5 MB
    assert len(list((tmp_path / "blobs").rglob("*"))) == 2  # one folder, one file: the photo, once for both threads
    plain = tmp_path / "plain.sqlite"  # the same question without the serializer, for scale
    build_graph(checkpointer=SqliteSaver(sqlite3.connect(plain, check_same_thread=False))).invoke(
        ask, {"configurable": {"thread_id": "plain"}}, context=_context())
    assert _stored_bytes(plain) > 2 * len(photo_url)


def test_a_thread_reads_back_and_resumes_with_a_new_connection(tmp_path, photo_url):
    database, blobs = tmp_path / "threads.sqlite", tmp_path / "blobs"
    config = {"configurable": {"thread_id": "t"}}
    chat = {"messages": [{"role": "user", "content": [{"type": "text", "text": "What does the sign say?"},
                                                      {"type": "image_url", "image_url": {"url": photo_url}}]}]}
    context = _context()
    build_graph(checkpointer=_saver(database, blobs), interrupt_before=["tell"]).invoke(chat, config, context=context)
    reopened = build_graph(checkpointer=_saver(database, blobs))  # nothing shared in memory with the first
    state = reopened.get_state(config)
    assert state.next == ("tell",)
    assert state.values["messages"][0].content[1]["image_url"]["url"] == photo_url  # what the client sent
    out = reopened.invoke(None, config, context=context)
    assert out["messages"][-1].content == "It says EXIT."


def test_a_missing_blob_store_is_a_clear_error(tmp_path, photo_url):
    database = tmp_path / "threads.sqlite"
    config = {"configurable": {"thread_id": "t"}}
    build_graph(checkpointer=_saver(database, tmp_path / "blobs")).invoke(
        {"image": photo_url, "question": "q?"}, config, context=_context())
    with pytest.raises(LookupError, match="open the checkpointer with the blob store its threads were written with"):
        build_graph(checkpointer=_saver(database, tmp_path / "elsewhere")).get_state(config)


def test_small_strings_and_text_stay_in_the_checkpoint(tmp_path):
    serde = ImageRefSerde(DirectoryBlobs(tmp_path))
    value = {"question": "x" * 100_000, "thumb": "data:image/png;base64,AAAA", "spoof": "lookcloser-blob:zz"}
    assert serde.loads_typed(serde.dumps_typed(value)) == value
    assert list(tmp_path.iterdir()) == []  # long plain text is not an image; nothing was moved out
