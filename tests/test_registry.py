import sys
import textwrap
import types
import warnings
from importlib import metadata

import pytest
from PIL import Image

from doubles import FixedLocalizer, ScriptedVLM
from lookcloser import Agent, ToolNotFoundError
from lookcloser.tools import registry
from lookcloser.tools.registry import ToolContext, ToolRegistry


def test_builtin_names():
    assert {"vstar", "whole_image"} <= set(registry.names("localizer"))
    assert "rapidocr" in registry.names("ocr")


def test_unknown_tool_name_lists_known_ones():
    with pytest.raises(ToolNotFoundError, match=r"unknown localizer 'nope'; known localizers: .*vstar.*whole_image"):
        Agent(vlm=ScriptedVLM([]), tools={"localizer": "nope"}, trace_dir=None)


def test_unknown_role():
    with pytest.raises(ValueError, match="unknown tool role 'painter'"):
        Agent(vlm=ScriptedVLM([]), tools={"painter": "x"}, trace_dir=None)


def test_instance_must_follow_protocol():
    class NotALocalizer:
        name = "bad"

    with pytest.raises(TypeError, match="does not implement the localizer protocol"):
        registry.create("localizer", NotALocalizer())


def test_swap_by_registered_name_with_options_and_context():
    seen = {}

    def factory(context: ToolContext, boxes):
        seen["vlm"] = context.vlm
        return FixedLocalizer(boxes, name="custom")

    registry.register("localizer", "custom_test", factory, replace=True)
    vlm = ScriptedVLM(['{"answer": null, "missing": [{"name": "x"}]}', "ok"])
    agent = Agent(vlm=vlm, tools={"localizer": "custom_test"},
                  tool_options={"localizer": {"boxes": {"x": (0, 0, 4, 4)}}}, trace_dir=None)
    answer = agent.run(Image.new("RGB", (32, 32)), "q?")
    assert answer.findings[0].tool == "custom" and answer.findings[0].status == "found"
    assert seen["vlm"] is agent.vlm  # the shared (traced) VLM reaches the tool


def test_duplicate_registration_needs_replace():
    reg = ToolRegistry()
    reg.register("ocr", "a", lambda: None)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("ocr", "a", lambda: None)


def test_entry_point_plugin_is_discovered(tmp_path, monkeypatch):
    package = tmp_path / "my_plugin_pkg"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent("""
        from lookcloser.core.types import Finding

        class PluginLocalizer:
            name = "plugin"
            def locate(self, image, target):
                return [Finding(target=target, status="not_found", tool=self.name)]

        def make(context=None, **options):
            return PluginLocalizer()
    """))
    dist = tmp_path / "my_plugin_pkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-plugin-pkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[lookcloser.tools]\nlocalizer:plugin = my_plugin_pkg:make\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = ToolRegistry()
    assert "plugin" in reg.names("localizer")
    tool = reg.create("localizer", "plugin", ToolContext())
    assert tool.name == "plugin"


def test_badly_named_entry_point_is_reported_and_skipped(tmp_path, monkeypatch):
    dist = tmp_path / "bad_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: bad-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[lookcloser.tools]\njustaname = os:getcwd\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = ToolRegistry()
    reg.register("ocr", "mine", lambda: "ocr tool")
    with pytest.warns(RuntimeWarning, match=r"entry point 'justaname = os:getcwd from bad-plugin' .* 'ROLE:NAME'"):
        assert reg.names("ocr") == ["mine"]
    assert reg.create("ocr", "mine") == "ocr tool"


# Fake entry points: the registry calls importlib.metadata.entry_points(group=...), patched here.

def _fake_entry_points(monkeypatch, *lines):
    entries = [metadata.EntryPoint(name=name, value=value, group="lookcloser.tools") for name, value in lines]
    calls = []

    def entry_points(**params):
        calls.append(params)
        return [e for e in entries if e.group == params.get("group")]

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    return calls


@pytest.fixture
def plugin_module(monkeypatch):
    module = types.ModuleType("fake_lookcloser_plugin")

    class PluginOCR:
        name = "good_ocr"

        def read(self, image):
            return []

    def make(context=None, **options):
        return PluginOCR()

    module.make = make
    module.not_a_factory = 42
    monkeypatch.setitem(sys.modules, "fake_lookcloser_plugin", module)
    return module


def test_malformed_entry_point_warns_once_and_others_stay_usable(monkeypatch, plugin_module):
    calls = _fake_entry_points(monkeypatch, ("no_role_here", "fake_lookcloser_plugin:make"),
                               ("painter:brush", "fake_lookcloser_plugin:make"),
                               ("ocr:good", "fake_lookcloser_plugin:make"))
    reg = ToolRegistry()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert reg.names("ocr") == ["good"]
        assert reg.names("localizer") == []
        assert reg.create("ocr", "good").name == "good_ocr"
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2 and len(calls) == 1  # read once, each bad entry reported once
    assert "'no_role_here = fake_lookcloser_plugin:make'" in messages[0] and "ROLE:NAME" in messages[0]
    assert "'painter:brush = fake_lookcloser_plugin:make'" in messages[1]
    with pytest.raises(ToolNotFoundError, match="'no_role_here = fake_lookcloser_plugin:make' .* is skipped"):
        reg.factory("ocr", "no_role_here")


def test_entry_point_whose_import_fails_is_skipped_with_its_error(monkeypatch, plugin_module):
    _fake_entry_points(monkeypatch, ("ocr:broken", "no_such_module_for_lookcloser:make"),
                       ("ocr:good", "fake_lookcloser_plugin:make"))
    reg = ToolRegistry()
    assert reg.names("ocr") == ["broken", "good"]  # not imported until asked for
    assert reg.create("ocr", "good").name == "good_ocr"  # the broken one does not get in the way
    with pytest.warns(RuntimeWarning, match=r"skipping ocr 'broken': entry point 'ocr:broken = "
                                            r"no_such_module_for_lookcloser:make' failed to load: ModuleNotFoundError"):
        with pytest.raises(ToolNotFoundError) as caught:
            reg.factory("ocr", "broken")
    message = str(caught.value)
    assert message.startswith("ocr 'broken' is not available: entry point 'ocr:broken = no_such_module_for_lookcloser:make'")
    assert "ModuleNotFoundError" in message and "no_such_module_for_lookcloser" in message
    assert reg.names("ocr") == ["good"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # asking again raises the same error, without a second warning
        with pytest.raises(ToolNotFoundError, match="ocr 'broken' is not available: .*ModuleNotFoundError"):
            reg.create("ocr", "broken")
    assert reg.create("ocr", "good").name == "good_ocr"


def test_entry_point_raising_import_error_or_pointing_at_a_non_factory(monkeypatch, plugin_module):
    class Exploding(metadata.EntryPoint):
        def load(self):
            raise ImportError("libfoo.so: cannot open shared object file")

    entries = [Exploding(name="detector:exploding", value="fake_lookcloser_plugin:make", group="lookcloser.tools"),
               metadata.EntryPoint(name="ocr:number", value="fake_lookcloser_plugin:not_a_factory",
                                   group="lookcloser.tools")]
    monkeypatch.setattr(metadata, "entry_points", lambda **params: entries)
    reg = ToolRegistry()
    with pytest.warns(RuntimeWarning, match="ImportError: libfoo.so"):
        with pytest.raises(ToolNotFoundError, match="detector 'exploding' is not available: .*ImportError: libfoo.so"):
            reg.factory("detector", "exploding")
    with pytest.warns(RuntimeWarning, match="not a factory"):
        with pytest.raises(ToolNotFoundError, match="ocr 'number' is not available: .*points at an object of type int, not a factory"):
            reg.create("ocr", "number")


def test_unreadable_entry_point_metadata_leaves_builtins_usable(monkeypatch):
    def entry_points(**params):
        raise ValueError("corrupt entry_points.txt")

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    reg = ToolRegistry()
    reg.register("localizer", "mine", lambda: "loc")
    with pytest.warns(RuntimeWarning, match="could not read the 'lookcloser.tools' entry points.*corrupt"):
        assert reg.names("localizer") == ["mine"]
    assert reg.create("localizer", "mine") == "loc"


def test_unconfigured_role_is_a_lookup_error():
    agent = Agent(vlm=ScriptedVLM([]), trace_dir=None)
    with pytest.raises(LookupError, match="no 'detector' tool is configured"):
        agent.tool("detector")


def test_routing_knows_which_localizers_batch_without_building_them():
    """The graph sends one search branch for all targets to a localizer with `locate_many`; it reads that
    from the registration (ToolInfo.batches) so routing never builds a tool. The declarations match the tools."""
    from lookcloser.runtime.context import Context, Services

    for name in registry.names("localizer"):
        services = Services(Context(vlm="openai:stub@http://127.0.0.1:9/v1", tools={"localizer": name}))
        declared = services.batches("localizer")
        assert services._tools == {}  # nothing built to answer
        try:
            built = registry.create("localizer", name)
        except Exception:  # noqa: BLE001 - a tool whose extra is not installed here (original GroundingDINO)
            continue
        assert declared == callable(getattr(built, "locate_many", None)), name
