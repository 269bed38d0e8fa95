"""Shared test setup: one grader cache for the whole session (shared by xdist workers)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session", autouse=True)
def grader_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache dir shared by all workers, so each baseline is measured once per session."""
    shared = tmp_path_factory.getbasetemp().parent / "perfgym-cache"
    shared.mkdir(exist_ok=True)
    os.environ["PERFGYM_CACHE_DIR"] = str(shared)
    os.environ.setdefault("PERFGYM_SECRET", "test-secret")
    return shared
