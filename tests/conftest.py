"""Fixtures shared by the test modules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def output_dir(tmp_path: Path) -> Path:
    """Where the charts go: ``$BIDCORE_TEST_OUTPUT``, or pytest's per-test ``tmp_path``."""
    configured = os.environ.get("BIDCORE_TEST_OUTPUT")
    if not configured:
        return tmp_path
    path = Path(configured)
    path.mkdir(parents=True, exist_ok=True)
    return path
