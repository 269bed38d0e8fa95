"""The task registry: task ids to specs."""

from __future__ import annotations

from perfgym.tasks.complex_pipeline.spec import SPEC as COMPLEX_PIPELINE
from perfgym.tasks.numpy_rf.spec import SPEC as NUMPY_RF
from perfgym.tasks.pytorch_nn.spec import SPEC as PYTORCH_NN
from perfgym.tasks.spec import TaskSpec

TASKS: dict[str, TaskSpec] = {t.id: t for t in (NUMPY_RF, PYTORCH_NN, COMPLEX_PIPELINE)}


class UnknownTaskError(KeyError):
    def __str__(self) -> str:
        return f"unknown task {self.args[0]!r}; known tasks: {', '.join(TASKS)}"


def get_task(task_id: str) -> TaskSpec:
    try:
        return TASKS[task_id]
    except KeyError:
        raise UnknownTaskError(task_id) from None
