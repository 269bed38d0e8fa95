"""EpisodeToolbox: every tool of one episode, behind the `Toolbox` protocol.

`call` never raises: a wrong call (unknown tool, bad arguments, a path outside the workspace)
and even a tool's own crash come back as an `is_error` result the model can read and act on.

The calls of one toolbox run one at a time, even when a caller overlaps them: a file operation
that checks a path and then opens it must never run while sandboxed code in the same workspace
can swap what the path leads to. Different toolboxes (episodes) still run concurrently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from perfgym.agent.tools.base import Tool, ToolInputError
from perfgym.agent.tools.check import check_tool
from perfgym.agent.tools.context import EpisodeContext
from perfgym.agent.tools.files import file_tools
from perfgym.agent.tools.profiling import profile_tool
from perfgym.agent.tools.python_run import python_tools
from perfgym.agent.tools.runner import SandboxSettings
from perfgym.agent.tools.submit import submit_tool
from perfgym.agent.tools.workspace import Workspace
from perfgym.agent.types import ToolResult
from perfgym.sandbox import SandboxError
from perfgym.tasks.spec import TaskSpec

log = logging.getLogger(__name__)


class EpisodeToolbox:
    """The tools an agent gets for one episode, acting on its workspace through the sandbox.

    `workspace` must already hold baseline.py (see `prepare_workspace`); `artifacts` is the
    run's directory for profiler outputs. `check=False` leaves out the check tool; `sandbox`
    overrides the limits (default: like grading, the task's CPU budget off the timed CPU)."""

    def __init__(
        self,
        spec: TaskSpec,
        size: str,
        workspace: Path,
        artifacts: Path,
        check: bool = True,
        sandbox: SandboxSettings | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        spec.size(size)  # an unknown size fails here, not in the middle of an episode
        workspace = Path(workspace)
        if not workspace.is_dir():
            raise FileNotFoundError(f"the workspace {workspace} does not exist")
        self.context = EpisodeContext(
            spec=spec,
            size=size,
            workspace=Workspace(workspace),
            artifacts=Path(artifacts),
            sandbox=sandbox or SandboxSettings.for_budget(spec.cpu_budget),
        )
        tools = [
            *file_tools(self.context),
            *python_tools(self.context),
            profile_tool(self.context),
        ]
        if check:
            tools.append(check_tool(self.context, progress))
        tools.append(submit_tool(self.context))
        self.tools: dict[str, Tool] = {t.name: t for t in tools}
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    def schemas(self) -> list[dict[str, Any]]:
        """The tool definitions in the Anthropic format."""
        return [t.schema() for t in self.tools.values()]

    async def call(self, name: str, arguments: Any) -> ToolResult:
        """Run one tool, after any call still running; every failure is an `is_error` result,
        never an exception."""
        tool = self.tools.get(name) if isinstance(name, str) else None
        if tool is None:
            return ToolResult(
                f"Unknown tool {name!r}; the tools are {', '.join(self.tools)}.", is_error=True
            )
        lock = self._one_at_a_time()
        await lock.acquire()
        # The lock goes with the run, not with this caller: a caller cancelled while sandboxed
        # code still runs in a worker thread (a wall-clock limit) must not let the next call in.
        run = asyncio.ensure_future(self._run(tool, name, arguments))
        run.add_done_callback(lambda _: lock.release())
        return await asyncio.shield(run)

    def _one_at_a_time(self) -> asyncio.Lock:
        """The lock of this toolbox on the running event loop (a loop's lock is its own)."""
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    async def _run(self, tool: Tool, name: str, arguments: Any) -> ToolResult:
        try:
            return await tool.handler(tool.parse(arguments))
        except ToolInputError as exc:
            return ToolResult(str(exc), is_error=True)
        except SandboxError as exc:
            log.warning("sandbox failure in tool %s: %s", name, exc)
            return ToolResult(f"{name} could not run: the sandbox failed ({exc}).", True)
        except Exception as exc:
            log.exception("tool %s crashed", name)
            return ToolResult(f"{name} failed with an internal error: {exc!r}.", is_error=True)
