"""The package's layout: agent/ holds only the Agent's own modules beside its subpackages, every package
is shipped, and the import paths of the flat modules that moved in 0.2 still work, with a warning."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"agent": "lookcloser", "tools": "lookcloser.tools", "graphs": "lookcloser.graphs", "prompts": "lookcloser.prompts"}


def _packages_on_disk() -> dict[str, Path]:
    """Import name -> its __init__.py (agent/'s folders of tools/graphs are separate packages, mapped by pyproject)."""
    found = {}
    for folder, name in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            if "__pycache__" not in init.parts:
                found[".".join((name, *init.parent.relative_to(ROOT / folder).parts))] = init
    return found


def test_agent_folder_holds_only_the_agents_own_modules_beside_its_subpackages():
    flat = sorted(path.name for path in (ROOT / "agent").glob("*.py"))
    assert flat == ["__init__.py", "_moved.py", "agent.py"]


def test_every_package_says_what_it_is_for():
    for init in _packages_on_disk().values():
        docstring = ast.get_docstring(ast.parse(init.read_text()))
        assert docstring and len(docstring) > 40, f"{init} has no docstring saying what the package is for"


def test_pyproject_ships_every_package_and_a_wheel_holds_every_module(tmp_path):
    """A package missing from pyproject's list works in the editable install and is missing from a wheel."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    assert listed == set(_packages_on_disk())
    source = tmp_path / "src"  # a copy: setuptools leaves a build/ folder beside the pyproject it builds
    for folder in FOLDERS:
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
                    str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("lookcloser-*.whl")
    shipped = {name for name in zipfile.ZipFile(wheel).namelist() if name.endswith(".py")}
    expected = set()
    for folder, name in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            if "__pycache__" not in path.parts:
                expected.add("/".join((*name.split("."), *path.relative_to(ROOT / folder).parts)))
    assert expected - shipped == set()


def test_old_paths_are_the_new_modules_with_a_deprecation_warning():
    """One fresh interpreter imports every old path, as a user's code from before 0.2 would."""
    code = """
import json, sys, warnings
from lookcloser._moved import MOVED
rows = []
for old, new in MOVED.items():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        __import__(old)
    rows.append([old, new, sys.modules[old] is sys.modules[new],
                 [(w.category.__name__, str(w.message), w.filename) for w in caught]])
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from lookcloser.runtime import Context, services  # a package of its own now: no warning
rows.append(["runtime", Context.__module__, services.__module__, [str(w.message) for w in caught]])
print(json.dumps(rows))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    *rows, runtime = json.loads(result.stdout)
    assert len(rows) == 23
    for old, new, same, caught in rows:
        assert same, f"{old} is not the module {new}"
        assert caught == [["DeprecationWarning", f"{old} moved to {new}; the old path goes away in lookcloser 0.3",
                           "<string>"]], (old, caught)
    assert runtime == ["runtime", "lookcloser.runtime.context", "lookcloser.runtime.context", []]


def test_nothing_in_the_repository_imports_an_old_path():
    from lookcloser._moved import MOVED

    uses = []
    for folder in ("agent", "tools", "graphs", "prompts", "tests", "examples", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            if "node_modules" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                    [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
                uses += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names
                         if any(n == old or n.startswith(old + ".") for old in MOVED)]
    assert uses == []


def test_the_public_names_stay_the_same():
    import lookcloser

    assert lookcloser.__all__ == ["Agent", "AgentConfig", "Answer", "Box", "Detection", "Finding", "ImageError",
                                  "InputError", "LookCloserError", "Mask", "ModelLoadError", "SettingsError", "Stats", "Target",
                                  "ToolNotFoundError", "VLMError", "VisualWorkingMemory", "load_image"]
    assert all(getattr(lookcloser, name) is not None for name in lookcloser.__all__)
