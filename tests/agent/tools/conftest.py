"""Fixtures for the tool tests: a fresh workspace with the baseline and a toolbox on it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from perfgym.agent.tools import EpisodeToolbox, SandboxSettings, prepare_workspace
from perfgym.agent.types import ToolResult
from perfgym.tasks.registry import get_task
from perfgym.tasks.spec import TaskSpec

TASK = "complex-pipeline"
SIZE = "small"


@pytest.fixture
def spec() -> TaskSpec:
    return get_task(TASK)


@pytest.fixture
def workspace(tmp_path: Path, spec: TaskSpec) -> Path:
    ws = tmp_path / "workspace"
    prepare_workspace(spec, ws)
    return ws


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    return tmp_path / "artifacts"


@pytest.fixture
def make_toolbox(spec: TaskSpec, workspace: Path, artifacts: Path) -> Callable[..., EpisodeToolbox]:
    def make(check: bool = False, sandbox: SandboxSettings | None = None) -> EpisodeToolbox:
        return EpisodeToolbox(spec, SIZE, workspace, artifacts, check=check, sandbox=sandbox)

    return make


@pytest.fixture
def toolbox(make_toolbox: Callable[..., EpisodeToolbox]) -> EpisodeToolbox:
    return make_toolbox()


@pytest.fixture
def call(toolbox: EpisodeToolbox) -> Callable[..., ToolResult]:
    """Calls a tool of `toolbox` synchronously: call("read_file", path="baseline.py")."""

    def run(name: str, arguments: Any = None, /, **kwargs: Any) -> ToolResult:
        args = kwargs if arguments is None else arguments
        return asyncio.run(toolbox.call(name, args))

    return run
