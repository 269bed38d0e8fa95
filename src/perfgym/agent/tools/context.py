"""What every tool of one episode shares: its task, workspace, artifacts and sandbox limits."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

from perfgym.agent.tools.runner import SandboxSettings
from perfgym.agent.tools.workspace import Workspace
from perfgym.tasks.spec import TaskSpec


@dataclass
class EpisodeContext:
    spec: TaskSpec
    size: str
    workspace: Workspace
    artifacts: Path
    """The run's directory for profiler outputs; never visible to sandboxed code."""
    sandbox: SandboxSettings
    _counter: itertools.count = field(default_factory=lambda: itertools.count(1), repr=False)

    def next_number(self) -> int:
        """A fresh number for artifact names (profile_1, profile_2, ...)."""
        return next(self._counter)
