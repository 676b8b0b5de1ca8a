"""Shared pytest fixtures (keep them general; module-specific helpers live in their test files)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:  # lets tests import helpers such as tiny_qwen
    sys.path.insert(0, str(TESTS_DIR))


@pytest.fixture(scope="session")
def tiny_qwen_path(tmp_path_factory) -> Path:
    """A tiny random-weight Qwen2.5-VL checkpoint directory (built once per test session)."""
    from tiny_qwen import build_tiny_qwen

    return build_tiny_qwen(tmp_path_factory.mktemp("tiny_qwen"))
