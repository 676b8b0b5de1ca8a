"""The import contracts of .importlinter hold (layers point one way; no cycles), checked by
import-linter on the real source. The folders map onto one package through pyproject's package-dir,
which import-linter cannot follow, so the test lays them out as `lookcloser/...` (symlinks) first."""

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


def _stage(root: Path) -> None:
    package = root / "lookcloser"
    package.mkdir()
    for entry in (ROOT / "agent").iterdir():
        (package / entry.name).symlink_to(entry)
    for name, folder in LAYOUT.items():
        if name != "lookcloser":
            (root / name).symlink_to(ROOT / folder)


def _lint(tmp_path: Path) -> subprocess.CompletedProcess:
    executable = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if executable is None:
        pytest.fail("lint-imports is missing: import-linter is in the dev extra (pip install -e '.[dev]')")
    _stage(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    return subprocess.run([executable, str(ROOT / ".importlinter"), "--no-cache"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


def test_layers_point_one_way_and_nothing_imports_in_a_cycle(tmp_path):
    result = _lint(tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Analyzed" in result.stdout and "KEPT" in result.stdout and "BROKEN" not in result.stdout
