"""One model cache per process (lookcloser.core.hub.shared): an Agent loads each model once however many
tool instances use it, and two Agents with the same settings share the loaded weights."""

from __future__ import annotations

import shutil
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from lookcloser import Agent
from lookcloser.core.types import Target

from tiny_owlv2 import build_tiny_owlv2


@pytest.fixture
def loads(monkeypatch):
    """(class name, source) of every from_pretrained of the four model classes involved, counted."""
    import transformers

    counted: Counter = Counter()
    for name in ("Owlv2ForObjectDetection", "Owlv2Processor", "AutoModelForImageTextToText", "AutoProcessor"):
        cls = getattr(transformers, name)
        original = cls.from_pretrained.__func__

        def counting(klass, source, *args, _name=name, _original=original, **kwargs):
            counted[(_name, str(source))] += 1
            return _original(klass, source, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(counting))
    return counted


def test_an_agent_loads_each_model_once_and_agents_with_the_same_settings_share_them(tmp_path, tiny_qwen_path,
                                                                                    loads):
    owlv2 = build_tiny_owlv2(tmp_path / "owlv2")
    qwen = shutil.copytree(tiny_qwen_path, tmp_path / "qwen")  # paths no other test has loaded
    photo = Image.fromarray((np.random.RandomState(3).rand(300, 400, 3) * 255).astype("uint8"))
    settings = {"vlm": f"transformers:{qwen}",
                "tools": {"localizer": {"name": "vstar", "model": str(owlv2), "device": "cpu", "max_steps": 3,
                                        "use_context": False}}}
    first, second = Agent(**settings), Agent(**settings)
    for agent in (first, second):
        agent.vlm.backend.load()
        # two localizer instances per agent (with and without the VLM), each searching with the OWLv2 cue
        for with_vlm in (True, False):
            agent.tool("localizer", with_vlm=with_vlm).locate(photo, Target(name="a dog", kind="object"))
    assert first.tool("localizer") is not first.tool("localizer", with_vlm=False)  # really two tool instances
    assert loads[("Owlv2ForObjectDetection", str(owlv2))] == 1
    assert loads[("Owlv2Processor", str(owlv2))] == 1
    assert loads[("AutoModelForImageTextToText", str(qwen))] == 1
    assert loads[("AutoProcessor", str(qwen))] == 1
    def owlv2_weights(agent):
        tool = agent.tool("localizer")
        return getattr(tool, "inner", tool).object_cue()._model

    assert owlv2_weights(first) is owlv2_weights(second)
