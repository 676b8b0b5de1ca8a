"""The shipped examples run as a user runs them (subprocess, repository root)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_scripted_agent_example_reads_the_web_address(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "scripted_agent.py")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "answer: WWW.TVR.BY" in done.stdout
    assert "    tool.localizer.vstar [tool] ok" in done.stdout and "vstar.step [chain] ok" in done.stdout
