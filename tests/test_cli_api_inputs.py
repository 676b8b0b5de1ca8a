"""Python API argument errors are the project's error type (InputError: a LookCloserError and a ValueError),
raised before any model is called; and `Agent.batch_as_completed`, the pool the eval and many-image `find`
run on: results as they finish, items read lazily (at most max_workers in flight), SEARCH-only items."""

import threading

import pytest
from doubles import FixedLocalizer, ScriptedVLM
from PIL import Image

from lookcloser import Agent, InputError, LookCloserError, Target


@pytest.fixture
def image():
    return Image.new("RGB", (64, 48), "white")


def _agent(vlm=None, **kwargs):
    return Agent(vlm=vlm or ScriptedVLM(lambda text, images: '{"answer": "yes", "missing": []}'),
                 tools={"localizer": FixedLocalizer({"cup": (1, 1, 9, 9)})}, trace_dir=None, **kwargs)


@pytest.mark.parametrize("call, message", [
    (lambda agent, image: agent.run(image, ""), "question must be a non-empty string"),
    (lambda agent, image: agent.run(image, None), "question must be a non-empty string"),
    (lambda agent, image: agent.run(image, "q?", options="AB"), "options must be a list of strings"),
    (lambda agent, image: agent.run(image, "q?", options=["only one"]), "at least two non-empty"),
    (lambda agent, image: agent.find(image, "  "), "target must be a non-empty name"),
    (lambda agent, image: agent.find(image, "cup", kind="thing"), "kind must be 'object' or 'text'"),
    (lambda agent, image: agent.batch([(image, "q?"), "not an item"]), "batch item 1 must be"),
    (lambda agent, image: agent.batch([{"image": image}]), "batch item 0 needs 'image' and 'question'"),
    (lambda agent, image: agent.batch([(image, "q?")], max_workers=0), "max_workers must be a positive integer"),
    (lambda agent, image: list(agent.batch_as_completed([{"image": image, "target": ""}])), "batch item 0: target"),
])
def test_argument_errors_are_input_errors_raised_before_any_vlm_call(image, call, message):
    vlm = ScriptedVLM(lambda text, images: '{"answer": "yes", "missing": []}')
    with pytest.raises(InputError, match=message) as info:
        call(_agent(vlm), image)
    assert isinstance(info.value, LookCloserError) and isinstance(info.value, ValueError)
    assert vlm.calls == []


def test_batch_as_completed_reads_lazily_and_yields_as_items_finish(image):
    release = threading.Event()

    class GatedVLM(ScriptedVLM):  # waits outside ScriptedVLM's lock, so the other worker's call goes on
        def generate(self, messages, **kwargs):
            if any("slow" in m.text for m in messages):
                release.wait(10)
            return super().generate(messages, **kwargs)

    pulled = []

    def items():
        for question in ("slow?", "a?", "b?", "c?"):
            pulled.append(question)
            yield image, question

    results = _agent(GatedVLM(lambda text, images: '{"answer": "ok", "missing": []}')).batch_as_completed(
        items(), max_workers=2)
    first = next(results)
    assert first[0] == 1 and first[1].text == "ok"  # the second item finished while the first still waits
    assert len(pulled) <= 3  # at most max_workers in flight: no item read ahead of a free worker
    release.set()
    rest = dict(results)
    assert sorted(rest) == [0, 2, 3] and pulled == ["slow?", "a?", "b?", "c?"]


def test_batch_mixes_questions_and_search_only_items_in_input_order(image):
    results = _agent().batch([(image, "q?"), {"image": image, "target": "cup"},
                              {"image": image, "target": Target(name="cup")}, {"image": "/no/such.png", "target": "cup"}],
                             return_exceptions=True)
    assert results[0].text == "yes"
    assert [f.box.to_list() for f in results[1]] == [[1.0, 1.0, 9.0, 9.0]] and results[2][0].status == "found"
    assert "image file not found" in str(results[3])
