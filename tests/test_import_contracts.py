"""The import contracts of .importlinter hold (layers point one way; no cycles), checked by
import-linter on the real source, and they do catch a break: an upward import or a cycle planted in a
copy of the source fails them. The folders map onto one package through pyproject's package-dir,
which import-linter cannot follow, so the tests lay them out as `lookcloser/...` first."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: import name -> folder, as pyproject.toml maps them (subpackages of agent/ come along with it).
LAYOUT = {"lookcloser": "agent", "lookcloser/tools": "tools", "lookcloser/graphs": "graphs",
          "lookcloser/prompts": "prompts"}


def _stage_links(root: Path) -> None:
    package = root / "lookcloser"
    package.mkdir()
    for entry in (ROOT / "agent").iterdir():
        (package / entry.name).symlink_to(entry)
    for name, folder in LAYOUT.items():
        if name != "lookcloser":
            (root / name).symlink_to(ROOT / folder)


def _stage_copy(root: Path) -> None:
    """A copy of the source that a test may change (the links above would change the repository)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.html", "*.txt")
    shutil.copytree(ROOT / "agent", root / "lookcloser", ignore=ignore)
    for name, folder in LAYOUT.items():
        if name != "lookcloser":
            shutil.copytree(ROOT / folder, root / name, ignore=ignore)


def _lint(root: Path) -> subprocess.CompletedProcess:
    executable = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if executable is None:
        pytest.fail("lint-imports is missing: import-linter is in the dev extra (pip install -e '.[dev]')")
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([executable, str(ROOT / ".importlinter"), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def _plant(root: Path, module: str, line: str) -> None:
    """Add `line` inside a new function at the end of `module` (imports inside functions count)."""
    path = root / (module.replace(".", "/") + ".py")
    assert path.is_file(), path
    path.write_text(path.read_text() + f"\n\ndef _planted_by_a_test():\n    {line}\n")


def test_layers_point_one_way_and_nothing_imports_in_a_cycle(tmp_path):
    _stage_links(tmp_path)
    result = _lint(tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Contracts: 2 kept, 0 broken." in result.stdout, result.stdout[-2000:]


@pytest.mark.parametrize(("module", "line", "verdict", "chain"), [
    ("lookcloser.core.geometry", "import lookcloser.entrypoints.cli",
     "lookcloser.core is not allowed to import lookcloser.entrypoints", "lookcloser.core.geometry -> lookcloser.entrypoints.cli"),
    ("lookcloser.tools.whole_image", "from lookcloser.runtime.context import Context",
     "lookcloser.tools is not allowed to import lookcloser.runtime", "lookcloser.tools.whole_image -> lookcloser.runtime.context"),
    ("lookcloser.vlm.factory", "from lookcloser.tracing.store import load_trace",
     "lookcloser.vlm is not allowed to import lookcloser.tracing", "lookcloser.vlm.factory -> lookcloser.tracing.store"),
])
def test_an_upward_import_breaks_the_layers_contract(tmp_path, module, line, verdict, chain):
    """Two layers up, one layer up, and across the two independent packages of one layer."""
    _stage_copy(tmp_path)
    _plant(tmp_path, module, line)
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "Layers point one way" in result.stdout and "BROKEN" in result.stdout, result.stdout[-3000:]
    assert verdict in result.stdout and chain in result.stdout, result.stdout[-3000:]


def test_a_cycle_between_siblings_breaks_the_no_cycles_contract(tmp_path):
    """imaging.load imports imaging.files; the planted import back closes a cycle inside one package."""
    _stage_copy(tmp_path)
    _plant(tmp_path, "lookcloser.imaging.files", "from lookcloser.imaging.load import load_image")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "No import cycles between sibling modules or packages BROKEN" in result.stdout, result.stdout[-3000:]
    assert "No cycles are allowed in lookcloser.imaging." in result.stdout, result.stdout[-3000:]
    assert "Contracts: 1 kept, 1 broken." in result.stdout  # the layers contract holds: no layer was crossed
