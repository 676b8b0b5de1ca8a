"""Packaging: every package the code imports (at module level or inside a function) is declared in
pyproject.toml, as a dependency or in an extra, and requires-python admits nothing the code cannot run on."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["agent", "tools", "graphs", "prompts"]
#: Imports whose distribution is not installed here (optional extras that cannot be installed on this machine).
NOT_INSTALLED = {"groundingdino": "groundingdino-py", "sam2": "sam2", "paddleocr": "paddleocr"}


def _all_imports() -> set[str]:
    names = set()
    for folder in SOURCES:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return names


def _imported_top_level_names() -> set[str]:
    return _all_imports() - set(sys.stdlib_module_names) - {"__future__", "lookcloser"}


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements.extend(extra)
    return {re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def test_every_imported_package_is_declared():
    distributions = metadata.packages_distributions()
    declared = _declared()
    missing = []
    for name in sorted(_imported_top_level_names()):
        candidates = distributions.get(name) or [NOT_INSTALLED.get(name, name)]
        if not any(c.lower().replace("_", "-") in declared for c in candidates):
            missing.append(f"{name} (from {', '.join(candidates)})")
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


#: Standard-library modules new in a Python version: the code importing one needs that version.
NEW_IN = {"tomllib": (3, 11)}


def test_requires_python_admits_only_versions_with_what_the_code_uses():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    floor = tuple(int(part) for part in re.match(r">=\s*(\d+)\.(\d+)", project["requires-python"]).groups())
    needed = [(module, version) for module, version in NEW_IN.items() if module in _all_imports()]
    assert needed, "the check is about tomllib; update NEW_IN when the code stops importing it"
    for module, version in needed:
        assert floor >= version, f"the code imports {module} (Python {version}), requires-python is {floor}"
