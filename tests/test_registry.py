import textwrap

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
        from lookcloser.types import Finding

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


def test_badly_named_entry_point_is_a_clear_error(tmp_path, monkeypatch):
    dist = tmp_path / "bad_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: bad-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[lookcloser.tools]\njustaname = os:getcwd\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match="must be named 'ROLE:NAME'"):
        ToolRegistry().names("ocr")


def test_unconfigured_role_is_a_lookup_error():
    agent = Agent(vlm=ScriptedVLM([]), trace_dir=None)
    with pytest.raises(LookupError, match="no 'detector' tool is configured"):
        agent.tool("detector")
