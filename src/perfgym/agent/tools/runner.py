"""How the tools run code: always through perfgym.sandbox, off the event loop.

Episodes run concurrently on one event loop, so each blocking sandbox run goes to a worker
thread. The limits follow grading: the task's CPU budget in threads, pinned away from the CPU
that timed gradings use, a memory cap and a timeout.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from perfgym.grading.timing import untimed_cpus
from perfgym.sandbox import Limits, Mount, SandboxProcess, SandboxResult

DEFAULT_TIMEOUT_S = 120.0
MAX_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class SandboxSettings:
    """Limits for the code an episode's tools run, and how much of its output is kept."""

    threads: int = 1
    cpus: tuple[int, ...] | None = None
    """CPUs the runs are pinned to (None: every CPU the harness may use)."""
    memory_bytes: int = 8 * 2**30
    file_size_bytes: int = 256 * 2**20
    max_processes: int = 64
    capture_bytes: int = 2**20
    """What the sandbox keeps of each output stream (its head)."""
    shown_chars: int = 10_000
    """What the model is shown of each output stream (head and tail)."""
    max_timeout_s: float = MAX_TIMEOUT_S

    @classmethod
    def for_budget(cls, cpu_budget: int) -> SandboxSettings:
        """Settings like grading's: `cpu_budget` threads, on the CPUs untimed work uses."""
        return cls(threads=cpu_budget, cpus=untimed_cpus(cpu_budget))

    def limits(self, timeout_s: float) -> Limits:
        return Limits(
            timeout_s=timeout_s,
            memory_bytes=self.memory_bytes,
            file_size_bytes=self.file_size_bytes,
            max_processes=self.max_processes,
            output_bytes=self.capture_bytes,
            cpus=self.cpus,
            threads=self.threads,
        )

    def timeout(self, requested: float | None) -> float:
        """The requested timeout, defaulted and clamped to what the tools allow."""
        value = DEFAULT_TIMEOUT_S if requested is None else float(requested)
        return max(1.0, min(value, self.max_timeout_s))


def python() -> str:
    """The interpreter sandboxed code runs with (the harness's own, mounted read-only)."""
    return sys.executable


ArgvFor = Callable[[SandboxProcess], Sequence[str]]


def _run_blocking(
    argv: Sequence[str] | ArgvFor,
    workspace: Path,
    limits: Limits,
    mounts: Sequence[Mount],
) -> SandboxResult:
    proc = SandboxProcess([], workspace, limits, mounts)
    proc.argv = list(argv(proc) if callable(argv) else argv)
    return proc.start().wait()


async def run_in_sandbox(
    argv: Sequence[str] | ArgvFor,
    workspace: Path,
    limits: Limits,
    mounts: Sequence[Mount] = (),
) -> SandboxResult:
    """Run a command in the sandbox, cwd the workspace, in a worker thread.

    `argv` may be a function of the not-yet-started process, to name mounted paths as they
    are seen inside (`proc.inside(host_path)`)."""
    return await asyncio.to_thread(_run_blocking, argv, workspace, limits, mounts)
