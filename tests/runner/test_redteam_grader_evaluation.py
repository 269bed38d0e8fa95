"""Red team: the grader evaluates an exported model in its own process, on arrays the sandboxed
submission chose. Whatever those arrays are, the outcome must be an EvaluationError (a failed
check), never a hang or an uncaught exception (which turns a failing episode into a harness
`error`: out of the pass rate and replayed by `--resume`).

- numpy-rf: a RandomForestClassifier whose `estimators_` hold crafted node arrays (a cycle, no
  leaf ever reached) makes `_forest_predict`'s `while True` spin forever.
- torch tasks: a model class (same name as the baseline's) whose `state_dict()` returns arrays
  of strings with the right shapes passes e2e.model, then `torch.from_numpy` raises TypeError.
"""

from __future__ import annotations

import signal

import numpy as np
import pytest

from perfgym.grading.evaluate import EvaluationError, predict_exported
from perfgym.tasks.registry import get_task


def _alarm(*_):
    raise TimeoutError("the grader's tree walk did not end")


def test_a_cyclic_tree_is_an_evaluation_error_not_a_hang():
    spec = get_task("numpy-rf")
    arrays = {
        "classes": np.arange(10),
        "t0:left": np.array([1, 0]),  # node 0 -> 1 -> 0 -> ...
        "t0:right": np.array([1, 0]),
        "t0:feature": np.array([0, 0]),
        "t0:threshold": np.array([0.0, 0.0]),
        "t0:value": np.ones((2, 10)),
    }
    meta = {"model": {"kind": "forest", "n_trees": 1}}
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(5)
    try:
        with pytest.raises(EvaluationError):
            predict_exported(spec, arrays, meta, np.zeros((3, 8)))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_non_numeric_weights_are_an_evaluation_error():
    spec = get_task("pytorch-nn")
    net = getattr(spec.reference(), spec.model_class)()
    arrays = {"w:" + k: np.full(tuple(v.shape), "x") for k, v in net.state_dict().items()}
    meta = {"model": {"kind": "torch", "class": spec.model_class}}
    with pytest.raises(EvaluationError):  # TypeError from torch.from_numpy today
        predict_exported(spec, arrays, meta, np.zeros((3, 8)))
