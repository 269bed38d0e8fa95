"""The tasks: one package per task (baseline, hidden reference, spec) and their registry."""

from perfgym.tasks.registry import TASKS, UnknownTaskError, get_task
from perfgym.tasks.spec import ProbeCall, Size, TaskSpec

__all__ = ["TASKS", "ProbeCall", "Size", "TaskSpec", "UnknownTaskError", "get_task"]
