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


def _exported_forest(n_trees: int = 3, seed: int = 0):
    """A small real forest, exported as the sandbox exports one, and some features."""
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(300, 8)), rng.integers(0, 10, 300)
    forest = RandomForestClassifier(n_estimators=n_trees, random_state=seed, n_jobs=1).fit(x, y)
    arrays = {"classes": np.asarray(forest.classes_)}
    for i, est in enumerate(forest.estimators_):
        t = est.tree_
        arrays[f"t{i}:left"] = t.children_left.copy()
        arrays[f"t{i}:right"] = t.children_right.copy()
        arrays[f"t{i}:feature"] = t.feature.copy()
        arrays[f"t{i}:threshold"] = t.threshold.copy()
        arrays[f"t{i}:value"] = t.value[:, 0, :].copy()
    meta = {"model": {"kind": "forest", "n_trees": n_trees}}
    return forest, arrays, meta, rng.normal(size=(50, 8))


def test_a_real_forest_still_predicts_as_scikit_learn_does():
    forest, arrays, meta, x = _exported_forest()
    assert np.array_equal(
        predict_exported(get_task("numpy-rf"), arrays, meta, x), forest.predict(x)
    )


def _split(arrays) -> int:
    return int(np.flatnonzero(arrays["t0:left"] != -1)[0])


@pytest.mark.parametrize(
    "corrupt",
    [
        pytest.param(lambda a: a["t0:left"].__setitem__(_split(a), _split(a)), id="self-loop"),
        pytest.param(lambda a: a["t0:right"].__setitem__(0, 10**6), id="child-out-of-range"),
        pytest.param(lambda a: a["t0:right"].__setitem__(0, -1), id="one-child"),
        pytest.param(lambda a: a["t0:feature"].__setitem__(0, 8), id="feature-out-of-range"),
        pytest.param(lambda a: a["t0:threshold"].__setitem__(0, np.nan), id="nan-threshold"),
        pytest.param(lambda a: a.__setitem__("t0:value", -a["t0:value"]), id="negative-value"),
        pytest.param(lambda a: a.__setitem__("t0:value", a["t0:value"][:, :3]), id="few-classes"),
        pytest.param(lambda a: a.__setitem__("t0:left", a["t0:left"][:-1]), id="short-array"),
        pytest.param(lambda a: a.__setitem__("t0:left", a["t0:left"] + 0.5), id="float-index"),
        pytest.param(lambda a: a.__setitem__("classes", a["classes"].astype(str)), id="str-class"),
        pytest.param(lambda a: a.__delitem__("t1:value"), id="missing-array"),
    ],
)
def test_a_malformed_forest_is_an_evaluation_error(corrupt):
    _, arrays, meta, x = _exported_forest()
    corrupt(arrays)
    with pytest.raises(EvaluationError):
        predict_exported(get_task("numpy-rf"), arrays, meta, x)


@pytest.mark.parametrize("n_trees", [0, -1, "3", True, None, 10**9])
def test_a_bad_tree_count_is_an_evaluation_error(n_trees):
    _, arrays, meta, x = _exported_forest()
    meta["model"]["n_trees"] = n_trees
    with pytest.raises(EvaluationError):
        predict_exported(get_task("numpy-rf"), arrays, meta, x)


@pytest.mark.parametrize("meta", [None, [], {"model": "forest"}, {"model": [1]}])
def test_a_malformed_model_description_is_an_evaluation_error(meta):
    _, arrays, _, x = _exported_forest()
    with pytest.raises(EvaluationError):
        predict_exported(get_task("numpy-rf"), arrays, meta, x)


def _torch_weights(spec):
    net = getattr(spec.reference(), spec.model_class)()
    return {"w:" + k: v.detach().numpy().copy() for k, v in net.state_dict().items()}


def test_weights_in_another_byte_order_or_float_width_still_load():
    spec = get_task("pytorch-nn")
    arrays = _torch_weights(spec)
    x = np.zeros((3, 8))
    want = predict_exported(spec, arrays, {"model": {"kind": "torch"}}, x)
    for k, v in arrays.items():
        arrays[k] = v.astype(v.dtype.newbyteorder(">")) if v.dtype.kind == "f" else v
    assert np.array_equal(predict_exported(spec, arrays, {"model": {"kind": "torch"}}, x), want)


@pytest.mark.parametrize("dtype", ["S1", "U1", "complex128", "datetime64[s]", "V4"])
def test_weights_of_any_non_numeric_dtype_are_an_evaluation_error(dtype):
    spec = get_task("pytorch-nn")
    arrays = {k: np.zeros(v.shape, dtype=dtype) for k, v in _torch_weights(spec).items()}
    with pytest.raises(EvaluationError, match="not numbers"):
        predict_exported(spec, arrays, {"model": {"kind": "torch"}}, np.zeros((3, 8)))


def test_the_grader_turns_an_evaluation_crash_into_a_failed_check(monkeypatch):
    """Whatever evaluating the returned arrays raises (TypeError, ValueError, ...), the
    submission fails e2e.accuracy and the grading goes on to its verdict."""
    from perfgym.grading import grader
    from perfgym.grading.execution import RunOutput
    from perfgym.grading.measure import Measurement, run_seeds
    from perfgym.grading.report import GradeReport

    def crash(*_):
        raise TypeError("can't convert np.ndarray of type numpy.str_")

    monkeypatch.setattr(grader, "predict_exported", crash)
    monkeypatch.setattr(grader, "_model_and_work", lambda *_: ([], []))
    monkeypatch.setattr(grader, "_components", lambda *_: (True, "ok"))
    monkeypatch.setattr(grader, "normalized_features", lambda *_: (None, np.zeros((3, 8))))
    spec = get_task("pytorch-nn")
    m = Measurement(runs={run: RunOutput(run, wall_s=1.0) for run in run_seeds(spec, "small")})
    report = GradeReport(task=spec.id, size="small", submission={})
    grader._check_runs(spec, "small", m, {"A": None, "B": None}, None, {}, report)
    grader._finish(spec, report)
    check = report.check("e2e.accuracy")
    assert check is not None and check.passed is False and "TypeError" in check.detail
    assert report.verdict == "fail"


@pytest.mark.parametrize("meta", [{"model": [1]}, {"model": {"kind": "torch"}, "calls": 3}, {}])
def test_results_that_the_harness_never_writes_fail_the_submission(meta):
    """Only the submission's own process could have written such metadata (it shares it with the
    sandbox entry); the grading fails it and reaches a verdict instead of crashing."""
    from perfgym.grading import grader
    from perfgym.grading.execution import RunOutput
    from perfgym.grading.measure import Measurement, run_seeds
    from perfgym.grading.report import GradeReport

    spec = get_task("pytorch-nn")
    m = Measurement(
        runs={run: RunOutput(run, wall_s=1.0, meta=dict(meta)) for run in run_seeds(spec, "small")}
    )
    report = GradeReport(task=spec.id, size="small", submission={})
    grader._check_results(spec, "small", m, {"A": None, "B": None}, None, {}, report)
    grader._finish(spec, report)
    assert report.verdict == "fail"
    assert any(c.passed is False for c in report.checks)
